"""The WaveNet page's views: mu-law companding on a real clip, the dilated causal stack and its receptive field
(measured with autograd), teacher-forced prediction p(q_t | q_<t) on a test clip, and digit-conditioned
generation by the naive and the fast (queue) sampler. The math lives in engine.models.wavenet and
engine.wavenet_analysis; this file arranges and draws it."""
from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from plotly.subplots import make_subplots

from app import jobs, plots, widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names
from engine import api

MODEL = "wavenet-fsdd"
VOCODER, JUDGE = "wavenet-vocoder-fsdd", "fsdd-classifier"
fsdd, analysis = api.fsdd, api.wavenet_analysis
RATE = fsdd.RATE
TAKES = [0, 1, 2, 3, 4]  # the test split's takes
WINDOW = 400  # samples in the prediction heatmap (50 ms)
FAST_SECONDS, FAST_DEFAULT = [0.25, 0.5, 1.0], 0.5  # lengths offered to the fast sampler
NAIVE_SECONDS, NAIVE_DEFAULT = [0.02, 0.05, 0.1, 0.25], 0.1  # and to the naive one (about 100x slower per sample)
MAX_DRAWN = 256  # widest receptive field drawn node by node
BLUE, ORANGE, GREY = "#2b6cb0", "#dd6b20", "#a0aec0"
MISSING = ("The bundled WaveNet checkpoint {name!r} is missing from assets/checkpoints; `make train-wavenet` trains "
           "it (about 30 min on 2 CPU cores). The mu-law and stack views work without it.")


# --- what is there --------------------------------------------------------------------------------------
def data_available() -> bool:
    """Whether the FSDD recordings are there; if not, an st.error says where they are expected."""
    try:
        _test_clips()
        return True
    except api.DatasetUnavailable as e:
        st.error(f"The Free Spoken Digit Dataset is not available, so this view cannot run. {e}")
        return False


def model():
    """The bundled WaveNet, or None with an st.error saying why (missing or unreadable checkpoint)."""
    if MODEL not in bundled_names("wavenet"):
        st.error(MISSING.format(name=MODEL))
        return None
    try:
        return bundled_model(MODEL)
    except api.CheckpointError as e:
        st.error(f"The bundled WaveNet cannot be loaded: {e}")
        return None


@st.cache_resource(show_spinner="Reading the spoken digits…")
def _test_clips() -> dict:
    """The test split's clips by (digit, speaker, take); raises api.DatasetUnavailable when absent."""
    return {(c.digit, c.speaker, c.take): c for c in fsdd.clips("test")}


def _audio(wave, caption: str) -> None:
    st.caption(caption)
    st.audio(fsdd.wav_bytes(np.asarray(wave)), format="audio/wav")


def pick_clip(prefix: str):
    """Digit, speaker and take of a test clip (shared by URL as digit, speaker, take) -> the Clip."""
    c1, c2, c3 = st.columns(3)
    digit = c1.selectbox("Digit", range(10), index=widgets.url_int("digit", 0, 9, 7), key=f"{prefix}_digit")
    speakers = list(fsdd.SPEAKERS)
    speaker = c2.selectbox("Speaker", speakers, key=f"{prefix}_speaker",
                           index=speakers.index(widgets.url_choice("speaker", speakers, "jackson")))
    take = c3.selectbox("Recording (test takes 0-4)", TAKES, index=widgets.url_int("take", 0, 4, 0),
                        key=f"{prefix}_take")
    widgets.share(digit=digit, speaker=speaker, take=take)
    return _test_clips()[(digit, speaker, take)]


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10), font=plots.FONT, **kw)
    return fig


# --- 1. mu-law --------------------------------------------------------------------------------------------
def mulaw() -> None:
    st.subheader("Mu-law: 256 levels where the ear needs them")
    st.markdown("WaveNet predicts each sample as one of 256 classes. Speech spends most of its time near zero, so "
                "before quantizing, mu-law companding stretches small amplitudes and squeezes large ones; the "
                "clip is scaled to peak 1 first.")
    st.latex(r"f(x)=\operatorname{sign}(x)\,\frac{\ln(1+\mu|x|)}{\ln(1+\mu)},\quad \mu=255,\qquad "
             r"q=\left\lfloor \tfrac{f(x)+1}{2}\,\mu+\tfrac12\right\rfloor\in\{0,\dots,255\}")
    if not data_available():
        return
    clip = pick_clip("wn_mu")
    result = analysis.companding(clip.audio)
    st.plotly_chart(_companding_figure(result), key="wn_mu_fig")
    a1, a2, a3 = st.columns([1, 1, 1.3])
    with a1:
        _audio(clip.audio, f"The recording {clip.name}.wav as stored ({clip.seconds:.2f} s)")
    with a2:
        _audio(result["decoded"], "Mu-law, 256 levels, decoded (scaled to peak 1)")
    with a3:
        m1, m2 = st.columns(2)
        m1.metric("Levels used (of 256)", f"{result['mu_law_levels_used']}",
                  f"uniform: {result['uniform_levels_used']}", delta_color="off", delta_arrow="off")
        m2.metric("SNR, quiet half", f"{result['mu_law_quiet_snr_db']:.0f} dB",
                  f"uniform: {result['uniform_quiet_snr_db']:.0f} dB", delta_color="off", delta_arrow="off")
    st.caption(f"Signal-to-quantization-noise ratio over the samples below the median amplitude: mu-law keeps "
               f"{result['mu_law_quiet_snr_db']:.1f} dB where 256 equal bins give {result['uniform_quiet_snr_db']:.1f}"
               f" dB (whole clip: {result['mu_law_snr_db']:.1f} against {result['uniform_snr_db']:.1f} dB). Both "
               "use 8 bits per sample; mu-law spends its levels on the quiet parts.")
    widgets.download_csv([{"t": i, "x": float(x), "q": int(q)} for i, (x, q) in
                          enumerate(zip(result["normalized"], result["levels"]))], f"{clip.name}-mulaw.csv",
                         key="dl_wn_mu")


def _companding_figure(r: dict) -> go.Figure:
    t = np.arange(len(r["levels"])) / RATE
    fig = make_subplots(rows=2, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.08, vertical_spacing=0.2,
                        subplot_titles=["Waveform, scaled to peak 1", "Amplitudes, 256 equal bins",
                                        "Mu-law levels q_t", "The 256 mu-law levels"])
    fig.add_trace(go.Scattergl(x=t, y=r["normalized"], mode="lines", line=dict(color=BLUE, width=1)), 1, 1)
    fig.add_trace(go.Histogram(x=r["normalized"], xbins=dict(start=-1, end=1, size=2 / 256), marker_color=BLUE), 1, 2)
    fig.add_trace(go.Scattergl(x=t, y=r["levels"], mode="lines", line=dict(color=ORANGE, width=1)), 2, 1)
    fig.add_trace(go.Histogram(x=r["levels"], xbins=dict(start=-0.5, end=255.5, size=1), marker_color=ORANGE), 2, 2)
    fig.update_xaxes(title_text="seconds", row=2, col=1)
    fig.update_xaxes(title_text="amplitude", row=1, col=2)
    fig.update_xaxes(title_text="level", row=2, col=2)
    fig.update_yaxes(range=[-1.05, 1.05], row=1, col=1)
    fig.update_yaxes(range=[-3, 258], row=2, col=1)
    fig.update_yaxes(title_text="samples", row=1, col=2)
    fig.update_yaxes(title_text="samples", row=2, col=2)
    fig.update_annotations(font_size=18)
    return _layout(fig, 560, showlegend=False, bargap=0)


# --- 2. the dilated causal stack ------------------------------------------------------------------------
def stack() -> None:
    st.subheader("The dilated causal stack and its receptive field")
    st.markdown("Each layer is a causal convolution that reads its input **d** steps apart (its dilation); doubling "
                "d from layer to layer doubles the reach with each layer instead of adding one. The highlighted "
                "nodes are the ones the prediction at the right edge depends on, **measured with autograd** on a "
                "small WaveNet built with your settings.")
    st.latex(r"R \;=\; 1+\sum_{\ell=1}^{L}(k-1)\,d_\ell\ \text{ samples},\qquad "
             r"p(q_t\mid q_{<t}) \text{ reads } q_{t-R},\dots,q_{t-1}")
    _stack_controls()


@st.fragment
def _stack_controls() -> None:
    c1, c2, c3, c4 = st.columns([1, 1, 1, 2])
    stacks = c1.slider("Stacks", 1, 4, widgets.url_int("stacks", 1, 4, 1), key="wn_stacks")
    layers = c2.slider("Layers per stack", 1, 7, widgets.url_int("layers", 1, 7, 4), key="wn_layers")
    kernel = c3.select_slider("Kernel size k", [2, 3], widgets.url_int("k", 2, 3, 2), key="wn_kernel")
    default = ", ".join(str(2 ** i) for i in range(layers))
    typed = c4.text_input("Dilations of one stack (empty: 1, 2, 4, … doubling)", st.query_params.get("dil", ""),
                          key="wn_dil", placeholder=default)
    one_stack = _parse_dilations(typed, layers)
    widgets.share(stacks=stacks, layers=layers, k=kernel, dil=typed.replace(" ", ""))
    dilations = one_stack * stacks
    r = analysis.receptive_field(dilations, kernel)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Layers", len(dilations))
    m2.metric("Receptive field R", f"{r:,} samples")
    m3.metric("At 8 kHz", f"{analysis.milliseconds(r):.1f} ms")
    if r > MAX_DRAWN:
        m4.metric("Measured by autograd", "not drawn")
        st.info(f"R = {r:,} samples is too wide to draw node by node (the drawing stops at {MAX_DRAWN}); fewer "
                "layers or smaller dilations draw it.")
    else:
        deps = _dependencies(tuple(dilations), kernel)
        holes = deps["measured"] < deps["span"]
        m4.metric("Measured by autograd", f"{deps['span']:,} samples",
                  f"only {deps['measured']} of them read: holes" if holes else "every one of them read",
                  delta_arrow="off", delta_color="inverse" if holes else "normal",
                  help="How far back the oldest input the prediction depends on lies, from the gradient of the "
                  "prediction with respect to every input; and how many inputs in that span it depends on.")
        st.plotly_chart(_stack_figure(deps), key="wn_stack_fig")
        if holes:
            st.caption("These dilations leave holes: some past samples in the span reach the prediction by no path. "
                       "Doubling (1, 2, 4, …) never does: each layer's reach fills exactly the gaps of the next.")
    st.caption(f"The bundled model: 2 stacks of dilations 1, 2, …, 512 with k = 2 (as in the paper), "
               f"R = {analysis.receptive_field((tuple(2 ** i for i in range(10))) * 2):,} samples = 256 ms; "
               "the spoken digits last 0.14 to 2.28 s (0.44 s on average), so it hears about a syllable.")


def _parse_dilations(typed: str, layers: int) -> tuple[int, ...]:
    """Comma-separated positive dilations (at most 10, each at most 512), or the doubling pattern with a warning."""
    doubling = tuple(2 ** i for i in range(layers))
    if not typed.strip():
        return doubling
    try:
        values = tuple(int(v) for v in typed.replace(" ", "").split(",") if v)
    except ValueError:
        values = ()
    if not values or len(values) > 10 or any(not 1 <= v <= 512 for v in values):
        st.warning(f"Dilations {typed!r}: type up to 10 whole numbers from 1 to 512, separated by commas "
                   f"(e.g. 1, 3, 9). Showing the doubling pattern {', '.join(map(str, doubling))}.")
        return doubling
    return values


@st.cache_data(show_spinner=False, max_entries=64)
def _dependencies(dilations: tuple[int, ...], kernel: int) -> dict:
    return analysis.stack_dependencies(dilations, kernel_size=kernel)


def _stack_figure(deps: dict) -> go.Figure:
    rows, dilations, k = deps["rows"], deps["dilations"], deps["kernel_size"]
    n_rows, width = rows.shape
    fig = go.Figure()
    few = n_rows * width <= 1200
    for on, color in ((False, "#e2e8f0"), (True, BLUE)):  # edges: every one faint (small stacks), used ones blue
        xs, ys = [], []
        for layer, d in enumerate(dilations, start=1):
            for s in range(width):
                if not (few or rows[layer, s]) or (on and not rows[layer, s]):
                    continue
                for j in range(k):
                    if s - j * d >= 0 and (not on or rows[layer - 1, s - j * d]):
                        xs += [s - j * d, s, None]
                        ys += [layer - 1, layer, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=2 if on else 1),
                                 hoverinfo="skip"))
    yy, xx = np.nonzero(np.ones_like(rows))
    used = rows[yy, xx]
    size = max(5, min(16, 900 // width))
    fig.add_trace(go.Scatter(x=xx[~used], y=yy[~used], mode="markers", hoverinfo="skip",
                             marker=dict(size=size, color="white", line=dict(color=GREY, width=1.5))))
    fig.add_trace(go.Scatter(x=xx[used], y=yy[used], mode="markers", marker=dict(size=size, color=BLUE),
                             hovertemplate="layer %{y}, position %{x}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[width - 1], y=[n_rows - 1], mode="markers", hoverinfo="skip",
                             marker=dict(size=size + 6, color=ORANGE, symbol="diamond")))
    labels = ["input"] + [f"dilation {d}" for d in dilations[:-1]] + [f"output (d = {dilations[-1]})"]
    fig.update_yaxes(tickvals=list(range(n_rows)), ticktext=labels, range=[-0.5, n_rows - 0.5], showgrid=False,
                     zeroline=False)
    fig.update_xaxes(title_text=f"time step (the last {width}); the prediction of the next sample is the diamond",
                     showgrid=False, zeroline=False)
    return _layout(fig, max(300, 70 * n_rows + 90), showlegend=False, plot_bgcolor="white")


# --- 3. teacher-forced prediction ---------------------------------------------------------------------
def predict() -> None:
    st.subheader("Teacher forcing: p(q_t | q_<t) at every step of a test clip")
    st.markdown("Feed the true clip in and read out, at every time step, the 256-way distribution over the next "
                "level, all in one parallel pass. Dark = improbable, bright = probable; the white line is the "
                "level that actually came. The cost of the clip is the average −log₂ of the bright spot under it.")
    if not data_available() or (net := model()) is None:
        return
    clip = pick_clip("wn_pred")
    pred = _predictions(bundled_fingerprint(MODEL), clip.digit, clip.speaker, clip.take)
    q = fsdd.mu_law_encode(fsdd.peak_normalize(clip.audio)).numpy()
    loudest = int(np.argmax(np.abs(clip.audio)))  # open the window on the loudest stretch
    _prediction_window(pred, q, clip.name, max(0, (loudest - WINDOW // 2) * 1000 // RATE // 5 * 5))
    _bits_table(pred, clip, net)


@st.cache_resource(show_spinner="Running the clip through WaveNet…", max_entries=8)
def _predictions(fingerprint: str, digit: int, speaker: str, take: int) -> dict:
    """Read-only: the clip's conditionals (T, 256), surprisal and bits, cached once per clip."""
    clip = _test_clips()[(digit, speaker, take)]
    q = fsdd.mu_law_encode(fsdd.peak_normalize(clip.audio))
    with torch.inference_mode():
        return analysis.clip_predictions(bundled_model(MODEL), q, digit)


@st.fragment
def _prediction_window(pred: dict, q: np.ndarray, name: str, default_ms: int) -> None:
    """The window slider, its heatmap and the whole clip's surprisal with the window marked, rerun on their own."""
    n = len(q)
    last = max(0, (n - WINDOW) * 1000 // RATE)
    start_ms = st.slider("Window start (ms)", 0, int(last),
                         min(widgets.url_int("at", 0, 10_000, default_ms), int(last)),
                         step=5, key="wn_window", help=f"The heatmap shows {WINDOW} samples ({1000 * WINDOW // RATE} "
                         "ms) from here; the whole clip is in the overview below.")
    widgets.share(at=start_ms)
    a = start_ms * RATE // 1000
    b = min(n, a + WINDOW)
    st.plotly_chart(_heatmap(pred["probs"][a:b], q[a:b], a), key="wn_heat")
    bits = pred["surprisal"][a:b].mean()
    st.caption(f"{name}: samples {a:,} to {b - 1:,}; this window costs {bits:.2f} bits per sample. Where the "
               "waveform is smooth the bright band is narrow and follows the line; at sharp turns it spreads.")
    _surprisal_overview(pred, name, (a * 1000 / RATE, b * 1000 / RATE))


def _heatmap(probs: np.ndarray, q: np.ndarray, offset: int) -> go.Figure:
    t = (offset + np.arange(len(q))) * 1000 / RATE
    z = np.log10(np.maximum(probs.T, 1e-6))  # (256, W)
    fig = go.Figure(go.Heatmap(x=t, y=np.arange(256), z=z, zmin=-6, zmax=0, colorscale="Viridis",
                               colorbar=dict(title="log₁₀ p", tickvals=[-6, -4, -2, 0]),
                               hovertemplate="%{x:.2f} ms, level %{y}: log₁₀ p = %{z:.2f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=t, y=q, mode="lines", line=dict(color="white", width=2), name="true level",
                             hovertemplate="%{x:.2f} ms: true level %{y}<extra></extra>"))
    fig.update_xaxes(title_text="time (ms)")
    fig.update_yaxes(title_text="mu-law level", range=[0, 255])
    return _layout(fig, 520, showlegend=False)


def _surprisal_overview(pred: dict, name: str, window: tuple[float, float]) -> None:
    s = pred["surprisal"]
    block = RATE // 100  # 10 ms
    means = np.array([s[i:i + block].mean() for i in range(0, len(s), block)])
    t = np.arange(len(means)) * 10 + 5
    fig = go.Figure(go.Scatter(x=t, y=means, mode="lines", line=dict(color=BLUE, width=2), name="WaveNet",
                               hovertemplate="%{x} ms: %{y:.2f} bits/sample<extra></extra>"))
    fig.add_hline(y=pred["baselines"]["bigram"], line=dict(color=ORANGE, dash="dash"),
                  annotation_text="previous-sample baseline on this clip", annotation_position="top right")
    fig.add_vrect(x0=window[0], x1=window[1], fillcolor=ORANGE, opacity=0.15, line_width=0)
    fig.update_xaxes(title_text="time (ms)")
    fig.update_yaxes(title_text="bits per sample", range=[0, 8.5])
    st.markdown(f"**Over the whole clip**: −log₂ p(q_t | q_<t) averaged over 10 ms blocks ({name}); the shaded "
                "band is the window above.")
    st.plotly_chart(_layout(fig, 280, showlegend=False), key="wn_surprisal")


def _bits_table(pred: dict, clip, net) -> None:
    test = bundled_metrics(MODEL).get("test_bits_per_sample", {})
    base = fsdd.baselines()
    c1, c2 = st.columns([3, 2], gap="large")
    with c1:
        rows = [("WaveNet (teacher-forced)", pred["bits"], test.get("bits_per_sample")),
                ("Previous sample (bigram counts)", pred["baselines"]["bigram"], base["bigram"]),
                ("Unigram (level counts)", pred["baselines"]["unigram"], base["unigram"])]
        table = "| Model | This clip | Test split |\n| --- | ---: | ---: |\n" + "\n".join(
            f"| {m} | {a:.2f} | {'—' if b is None else f'{b:.2f}'} |" for m, a, b in rows)
        st.markdown("**Bits per sample** (lower is better; 8 = knowing nothing)\n\n" + table)
        if not test:
            st.warning("The bundled WaveNet has no measured test bits/sample yet (`python -m engine eval "
                       "assets/checkpoints/wavenet-fsdd` measures it).")
    with c2:
        _audio(clip.audio, f"{clip.name}.wav (test split)")
        st.caption(f"Test split: {base['clips']} clips, {base['samples']:,} samples, every sample counted, the "
                   "first one after silence. The count models are fitted on the 2,700 training clips (add-one "
                   f"smoothing). Receptive field R = {net.receptive_field():,} samples.")
    widgets.download_json({"clip": clip.name, "bits_per_sample": pred["bits"], "baselines_this_clip":
                           pred["baselines"], "test_split": {"wavenet": test.get("bits_per_sample"),
                                                             "unigram": base["unigram"], "bigram": base["bigram"]}},
                          f"wavenet-bits-{clip.name}.json", key="dl_wn_bits")


# --- 4. generation --------------------------------------------------------------------------------------
def generate() -> None:
    st.subheader("Generation, one sample at a time: naive against fast")
    st.markdown("Sampling is sequential: draw q_t from p(q_t | q_<t, digit), feed it back, repeat 8,000 times a "
                "second. The **naive** sampler runs the network over the last R inputs for every new sample. The "
                "**fast** one (Paine et al. 2016) keeps a queue of each layer's past inputs, so a new sample "
                "costs one step per layer. Both draw from the same uniforms, so they give the same waveform.")
    if not data_available() or (net := model()) is None:
        return
    with st.form("wn_gen_form"):
        c1, c2, c3, c4 = st.columns(4)
        digit = c1.selectbox("Digit", range(10), index=widgets.url_int("digit", 0, 9, 7), key="wn_gen_digit")
        seed = c2.number_input("Seed", 0, 99_999, widgets.url_int("seed", 0, 99_999, 0), key="wn_gen_seed")
        fast_s = c3.select_slider("Fast sampler: seconds", FAST_SECONDS, FAST_DEFAULT, key="wn_gen_fast")
        naive_s = c4.select_slider("Naive sampler: seconds", NAIVE_SECONDS, NAIVE_DEFAULT, key="wn_gen_naive")
        go_ = st.form_submit_button("Generate", type="primary", icon=":material/graphic_eq:")
    widgets.share(digit=digit, seed=int(seed))
    running = jobs.get("wavenet-gen")
    if go_ and not (running and running.running):
        jobs.start("wavenet-gen", f"Generating a '{digit}' ({fast_s} s fast, {naive_s} s naive)",
                   _generation_work(net, int(digit), int(seed), int(fast_s * RATE), int(naive_s * RATE)))
    elif go_:
        st.warning("A generation is already running; wait for it or cancel it.")
    if jobs.panel("wavenet-gen", _draw_generation) is None:
        st.info("Press **Generate**. The fast sampler takes a few seconds for half a second of audio; the naive one "
                "is about a hundred times slower per sample once its window is full, so it only makes a short "
                "prefix (0.1 s by default) to compare.")
    st.info("**What you will hear.** This WaveNet is conditioned only on the digit (no text, no speaker, no "
            "spectrogram) and was trained on a CPU budget. Expect babble, not a word: sounds with some of speech's "
            "texture that rarely say the digit. That is the honest result at this size; WaveNet's intelligible "
            f"speech needed local conditioning on linguistic features and far more training. {judged(MODEL)}",
            icon=":material/hearing:")


def judged(name: str) -> str:
    """The measured sentence: how many of the checkpoint's clips the bundled classifier recognised (from its
    metrics, written by `python -m engine eval`), or what is not measured."""
    j = bundled_metrics(name).get("judge") if name in bundled_names("wavenet") else None
    if not j:
        return f"(How many of its clips a digit classifier recognises is not measured for {name}.)"
    if j["what"].startswith("vocoded"):
        return (f"Measured: the classifier that is {100 * j['classifier_test_accuracy']:.1f}% right on real test clips "
                f"recognised **{j['recognised']} of {j['clips']} vocoded test clips** (2 per digit, each rendered "
                f"from its own mel-spectrogram by the fast sampler, seed {j['seed']}); the same {j['clips']} real "
                f"clips: {j['real_recognised']} of {j['clips']}.")
    heard = max(range(10), key=j["predicted"].count)  # the label babble lands on most
    return (f"Measured: the classifier that is {100 * j['classifier_test_accuracy']:.1f}% right on real test clips "
            f"recognised **{j['recognised']} of {j['clips']} generated clips** ({j['per_digit']} per digit, "
            f"{j['seconds_each']} s each, fast sampler, seed {j['seed']}; chance is 1 in 10), and it heard "
            f"'{heard}' in {j['predicted'].count(heard)} of the {j['clips']}: much of the babble sounds alike to it.")


def judge():
    """The bundled spoken-digit classifier, or None (the views then leave its verdict out)."""
    if JUDGE not in bundled_names("fsdd-classifier"):
        return None
    try:
        return bundled_model(JUDGE)
    except api.CheckpointError:
        return None


def verdict(levels) -> str:
    """What the classifier hears in a clip of levels: "'7' (p = 0.93)", or "" without the classifier."""
    clf = judge()
    if clf is None:
        return ""
    p = clf.probabilities([torch.as_tensor(levels)])[0]
    return f"the classifier hears **'{int(p.argmax())}'** (p = {float(p.max()):.2f})"


def _generation_work(net, digit: int, seed: int, fast_samples: int, naive_samples: int):
    """The job: the fast sampler over the whole length, then the naive one over its prefix, same uniforms. The
    bundled model is only read (inference mode); cancelling stops between the two samplers."""
    def work(job: jobs.Job):
        u = analysis.uniforms(seed, fast_samples)
        job.meta = {"digit": digit, "seed": seed, "receptive_field": net.receptive_field()}
        yield {"progress": 0.02}
        with torch.inference_mode():
            fast, fast_time = analysis.generate_timed(net, digit, u)
            job.meta.update(fast=fast, fast_s=fast_time)
            yield {"progress": 0.5}
            if job.cancel.is_set():
                yield {"cancelled": True}
                return
            naive, naive_time = analysis.generate_timed(net, digit, u[:, :naive_samples], naive=True)
        job.meta.update(naive=naive, naive_s=naive_time, identical=bool(torch.equal(naive, fast[:naive_samples])))
        yield {"progress": 1.0}
    return work


def _draw_generation(job: jobs.Job) -> None:
    meta = dict(job.meta)
    if "fast" not in meta:
        st.caption("The fast sampler is running; the naive one follows.")
        return
    digit, fast = meta["digit"], fsdd.mu_law_decode(meta["fast"]).numpy()
    real = _test_clips()[(digit, "jackson", 0)]
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(f"**Generated '{digit}'** (fast sampler, seed {meta['seed']}, {len(fast) / RATE:.2f} s)")
        st.plotly_chart(_wave_and_spectrogram(fast), key="wn_gen_fake")
        _audio(fast, f"Generated in {meta['fast_s']:.1f} s ({1000 * meta['fast_s'] / len(fast):.2f} ms per sample)")
        if heard := verdict(meta["fast"]):
            st.markdown(f"Asked which digit this is, {heard}.")
    with right:
        st.markdown(f"**A real '{digit}'** ({real.name}.wav, test split, scaled to peak 1)")
        st.plotly_chart(_wave_and_spectrogram(fsdd.peak_normalize(real.audio)), key="wn_gen_real")
        _audio(fsdd.peak_normalize(real.audio), f"{real.name}.wav, {real.seconds:.2f} s")
        if heard := verdict(fsdd.mu_law_encode(fsdd.peak_normalize(real.audio))):
            st.markdown(f"Asked which digit this is, {heard}.")
    if "naive" in meta:
        _naive_against_fast(meta, fast)


def _naive_against_fast(meta: dict, fast: np.ndarray) -> None:
    naive = fsdd.mu_law_decode(meta["naive"]).numpy()
    n, r = len(naive), meta["receptive_field"]
    per_naive, per_fast = 1000 * meta["naive_s"] / n, 1000 * meta["fast_s"] / len(fast)
    st.markdown(f"**The naive sampler on the first {n:,} samples ({1000 * n / RATE:.0f} ms), same uniforms**")
    c1, c2 = st.columns([3, 2], gap="large")
    with c1:
        fig = go.Figure([go.Scatter(x=np.arange(n) * 1000 / RATE, y=fast[:n], name="fast", mode="lines",
                                    line=dict(color=BLUE, width=5)),
                         go.Scatter(x=np.arange(n) * 1000 / RATE, y=naive, name="naive", mode="lines",
                                    line=dict(color=ORANGE, width=2, dash="dot"))])
        fig.update_xaxes(title_text="time (ms)")
        st.plotly_chart(_layout(fig, 300, legend=dict(orientation="h", y=1.15)), key="wn_gen_naive_fig")
        _audio(naive, f"Naive sampler's clip ({n:,} samples)")
    with c2:
        m1, m2 = st.columns(2)
        m1.metric("Naive", f"{meta['naive_s']:.1f} s", f"{per_naive:.1f} ms per sample", delta_color="off",
                  delta_arrow="off")
        m2.metric("Fast", f"{meta['fast_s']:.1f} s", f"{per_fast:.2f} ms per sample", delta_color="off",
                  delta_arrow="off")
        st.metric("Same waveform", "identical" if meta["identical"] else "DIFFERENT",
                  f"over all {n:,} samples the naive sampler drew", delta_color="off", delta_arrow="off")
        st.caption(f"Per sample the naive sampler was {per_naive / per_fast:.0f}× slower here. Its window grows "
                   f"until it holds R = {r:,} samples ({analysis.milliseconds(r):.0f} ms) and each pass then costs "
                   "the most, so a short prefix understates it; `bench/ar_sampling.py` times one second for the ten "
                   "digits. Wall times on this server, shared with other sessions.")


def _wave_and_spectrogram(wave: np.ndarray) -> go.Figure:
    spec = analysis.spectrogram(wave)
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.12, row_heights=[0.4, 0.6])
    fig.add_trace(go.Scattergl(x=np.arange(len(wave)) / RATE, y=wave, mode="lines", line=dict(color=BLUE, width=1)),
                  1, 1)
    fig.add_trace(go.Heatmap(x=spec["times"], y=spec["freqs"], z=spec["db"], zmin=-80, zmax=0, colorscale="Magma",
                             colorbar=dict(title="dB", len=0.6, y=0.3)), 2, 1)
    fig.update_yaxes(range=[-1.05, 1.05], title_text="amplitude", row=1, col=1)
    fig.update_yaxes(title_text="Hz", row=2, col=1)
    fig.update_xaxes(title_text="seconds", row=2, col=1)
    return _layout(fig, 460, showlegend=False)


# --- 5. vocoder ------------------------------------------------------------------------------------------
def vocoder() -> None:
    st.subheader("Vocoder: WaveNet renders a real clip's mel-spectrogram")
    st.markdown("Give WaveNet more to go on than the digit: the **log-mel spectrogram of a real test clip** (40 bands, "
                "one frame every 8 ms), upsampled to the sample rate and added inside every gate by a 1x1 "
                "convolution (*local conditioning*, the paper's section 2.5). The audio path stays causal; the "
                "spectrogram is given whole. The spectrogram says which sounds come when; the waveform, sample by "
                "sample, is still WaveNet's to invent (with the fast sampler).")
    st.latex(r"z=\tanh\!\big(W_{f}\ast x+V_{f}\ast y\big)\odot\sigma\!\big(W_{g}\ast x+V_{g}\ast y\big),\qquad "
             r"y=\operatorname{upsample}\big(\tanh(\mathrm{conv}_{3}(\text{log-mel}))\big)")
    if not data_available():
        return
    if VOCODER not in bundled_names("wavenet"):
        st.error(f"The bundled vocoder {VOCODER!r} is missing from assets/checkpoints; `make train-wavenet-vocoder` "
                 "trains it.")
        return
    try:
        net = bundled_model(VOCODER)
    except api.CheckpointError as e:
        st.error(f"The bundled vocoder cannot be loaded: {e}")
        return
    clip = pick_clip("wn_voc")
    with st.form("wn_voc_form"):
        c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
        seed = c1.number_input("Seed", 0, 99_999, widgets.url_int("seed", 0, 99_999, 0), key="wn_voc_seed")
        c2.caption(f"The whole clip is rendered: {clip.seconds:.2f} s = {len(clip.audio):,} samples, one after another "
                   "(seconds to a minute, depending on the clip and on how busy the server is).")
        go_ = st.form_submit_button("Render from the spectrogram", type="primary", icon=":material/graphic_eq:")
    widgets.share(seed=int(seed))
    running = jobs.get("wavenet-voc")
    if go_ and not (running and running.running):
        jobs.start("wavenet-voc", f"Rendering {clip.name} from its mel-spectrogram", _vocoder_work(net, clip, int(seed)))
    elif go_:
        st.warning("A rendering is already running; wait for it or cancel it.")
    if jobs.panel("wavenet-voc", _draw_vocoded) is None:
        st.info("Pick a test clip and press **Render from the spectrogram**.")
    st.info(judged(VOCODER), icon=":material/hearing:")


def _vocoder_work(net, clip, seed: int):
    """The job: the clip's levels rendered from its own log-mel by the fast sampler (one sequence), timed."""
    def work(job: jobs.Job):
        q = fsdd.mu_law_encode(fsdd.peak_normalize(clip.audio))
        job.meta = {"name": clip.name, "digit": clip.digit, "seed": seed, "real": q}
        yield {"progress": 0.05}
        with torch.inference_mode():
            (vocoded,), elapsed = analysis.vocode(net, [q], seed=seed)
        job.meta.update(vocoded=vocoded, seconds=elapsed)
        yield {"progress": 1.0}
    return work


def _draw_vocoded(job: jobs.Job) -> None:
    meta = dict(job.meta)
    if "vocoded" not in meta:
        st.caption("The fast sampler is rendering the clip, one sample at a time.")
        return
    real, fake = fsdd.mu_law_decode(meta["real"]).numpy(), fsdd.mu_law_decode(meta["vocoded"]).numpy()
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(f"**The real clip** ({meta['name']}.wav, test split, mu-law, scaled to peak 1)")
        st.plotly_chart(_wave_and_spectrogram(real), key="wn_voc_real")
        _audio(real, f"{meta['name']}.wav, {len(real) / RATE:.2f} s")
        if heard := verdict(meta["real"]):
            st.markdown(f"Asked which digit this is, {heard}.")
    with right:
        st.markdown(f"**Rendered by the vocoder from its mel-spectrogram** (seed {meta['seed']})")
        st.plotly_chart(_wave_and_spectrogram(fake), key="wn_voc_fake")
        _audio(fake, f"Rendered in {meta['seconds']:.1f} s ({1000 * meta['seconds'] / len(fake):.2f} ms per sample, "
                     "fast sampler)")
        if heard := verdict(meta["vocoded"]):
            st.markdown(f"Asked which digit this is, {heard}.")
    st.caption("Same spectrogram, a different waveform: the vocoder draws every sample from its softmax, so the "
               "phase and the fine detail are its own; a new seed gives another rendering of the same clip.")


# --- gallery ----------------------------------------------------------------------------------------------
GALLERY_CLIP = (7, "jackson", 0)


GALLERY_SAMPLES, GALLERY_SCALE = 200, 4  # 25 ms, each sample 4 pixels wide


@st.cache_data(show_spinner="Predicting a test clip…", max_entries=4)
def gallery_png(name: str, fingerprint: str) -> bytes:
    """The bundled WaveNet's belief p(q_t | q_<t) over 25 ms of a spoken 'seven' (test split), dark = probable,
    the true levels as a red line: an RGB PNG for the Home gallery."""
    clip = _test_clips()[GALLERY_CLIP]
    q = fsdd.mu_law_encode(fsdd.peak_normalize(clip.audio))
    with torch.inference_mode():
        probs = analysis.clip_predictions(bundled_model(name), q, clip.digit, baselines=False)["probs"]
    n = GALLERY_SAMPLES
    a = max(0, min(int(np.argmax(np.abs(clip.audio))) - n // 2, len(q) - n))
    p = probs[a:a + n].T[::-1]  # (256, n), high levels on top
    shade = 1 - np.clip((np.log10(np.maximum(p, 1e-6)) + 6) / 6, 0, 1)  # 1 = white (improbable)
    rgb = np.repeat(np.repeat(shade[..., None], 3, axis=2), GALLERY_SCALE, axis=1)  # (256, n * scale, 3)
    rows = 255 - q[a:a + n].numpy()
    for t in range(n):  # the true level held over its sample, joined to the next one by a vertical stroke
        x = slice(t * GALLERY_SCALE, (t + 1) * GALLERY_SCALE)
        rgb[max(rows[t] - 1, 0):rows[t] + 2, x] = (0.86, 0.15, 0.15)
        if t + 1 < n:
            low, high = sorted((rows[t], rows[t + 1]))
            rgb[low:high + 1, (t + 1) * GALLERY_SCALE - 1:(t + 1) * GALLERY_SCALE + 1] = (0.86, 0.15, 0.15)
    image = Image.fromarray((rgb * 255).astype(np.uint8)).resize((n * GALLERY_SCALE, 256 * 2), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
