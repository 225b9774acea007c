"""The Helmholtz machine page's views: wake and sleep on one diagram, wake-sleep vs reweighted wake-sleep vs the
same-width VAE, explaining away solved exactly, and the noise of score-function vs reparameterization gradients.
Model math lives in engine.models.helmholtz and engine.helmholtz_analysis; this file arranges and draws it."""
from __future__ import annotations

import functools
import io

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image, ImageDraw, ImageFont
from plotly.subplots import make_subplots

from app import digit_input, plots, widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names, mnist_test
from engine import api

WS, RWS, VAE = "helmholtz-ws-mnist", "helmholtz-rws-mnist", "helmholtz-vae-mnist"
MODELS = {WS: "Wake-sleep (SBN-200)", RWS: "Reweighted wake-sleep, K = 5 (SBN-200)",
          VAE: "VAE, 200 Gaussian latents (ELBO, reparameterized)"}
COLOURS = {WS: "#dd6b20", RWS: "#2b6cb0", VAE: "#2f855a"}
UP, DOWN, IDLE = (197, 48, 48), (43, 108, 176), (210, 210, 210)  # recognition (up), generative (down), inactive
FONT_FILE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def missing() -> list[str]:
    """The bundled checkpoints this page uses that are absent or unreadable (each with an st.error)."""
    absent = []
    for name in MODELS:
        if name not in bundled_names("helmholtz"):
            st.error(f"The bundled checkpoint {name!r} is missing from assets/checkpoints; `make train-helmholtz` "
                     "trains it (about 20 minutes for all three on one CPU core).")
            absent.append(name)
            continue
        try:
            bundled_model(name)
        except api.CheckpointError as e:
            st.error(f"The bundled checkpoint {name!r} cannot be loaded: {e}")
            absent.append(name)
    return absent


def _test(name: str) -> dict:
    return bundled_metrics(name).get("test", {})


# --- drawing the diagram -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _font(size: int):
    try:
        return ImageFont.truetype(FONT_FILE, size)
    except OSError:
        return ImageFont.load_default(size)


def _cells(values, rows: int, cols: int, cell: int, *, signed: bool = False) -> Image.Image:
    """A layer as a block of square cells: grey levels (1 = black ink) or signed (red +, blue -); None = blank."""
    if values is None:
        return Image.new("RGB", (cols * cell, rows * cell), (238, 238, 238))
    v = np.asarray(values, dtype=np.float64).reshape(rows, cols)
    if signed:
        t = np.clip(v / (np.abs(v).max() or 1.0), -1, 1)[..., None]
        red, blue = np.array([178, 24, 43]), np.array([33, 102, 172])
        rgb = np.where(t >= 0, 255 + t * (red - 255), 255 - t * (blue - 255))
    else:
        rgb = np.repeat((255 * (1 - v))[..., None], 3, -1)
    img = Image.fromarray(rgb.round().astype(np.uint8), "RGB")
    return img.resize((cols * cell, rows * cell), Image.NEAREST)


def _arrow(pen: ImageDraw.ImageDraw, x: int, y0: int, y1: int, colour, width: int) -> None:
    """A vertical arrow from y0 to y1 (head at y1)."""
    pen.line([(x, y0), (x, y1)], fill=colour, width=width)
    head = 10 + 2 * width
    sign = 1 if y1 > y0 else -1
    pen.polygon([(x - head, y1 - sign * head * 1.3), (x + head, y1 - sign * head * 1.3), (x, y1)], fill=colour)


def diagram_png(frame: dict) -> bytes:
    """One frame of the wake/sleep animation as a PNG: the hidden layer on top, the pixels below, the recognition
    connections (up, left) and the generative ones (down, right), the active pass drawn bold, the phase's
    error signal at the side."""
    img = Image.new("RGB", (980, 680), "white")
    pen = ImageDraw.Draw(img)
    wake = frame["phase"] == "wake"
    pen.text((490, 656), frame["label"], font=_font(24), anchor="mm", fill="black")
    pen.rounded_rectangle((10, 10, 160, 58), 10, fill=(254, 235, 200) if wake else (44, 55, 92))
    pen.text((85, 34), "WAKE" if wake else "SLEEP", font=_font(27), anchor="mm", fill="black" if wake else "white")
    hidden = _cells(frame["hidden"], 10, 20, 16)  # 200 units, 320 x 160
    visible = _cells(frame["visible"], 28, 28, 9)  # 784 pixels, 252 x 252
    img.paste(hidden, (200, 60))
    img.paste(visible, (234, 330))
    pen.rectangle((199, 59, 520, 220), outline="black")
    pen.rectangle((233, 329, 486, 582), outline="black")
    pen.text((360, 52), "hidden code h (200 binary units)", font=_font(21), anchor="md", fill="black")
    pen.text((360, 606), "pixels x (28 × 28)", font=_font(21), anchor="mm", fill="black")
    active = frame["active"]
    up_colour, down_colour = (UP if active == "up" else IDLE), (DOWN if active == "down" else IDLE)
    _arrow(pen, 262, 320, 230, up_colour, 9 if active == "up" else 4)
    pen.multiline_text((232, 276), "recognition (up)\nq(h|x), weights R", font=_font(21), anchor="rm",
                       fill=up_colour, align="right")
    _arrow(pen, 458, 230, 320, down_colour, 9 if active == "down" else 4)
    pen.multiline_text((488, 276), "generative (down)\np(x|h), weights W", font=_font(21), anchor="lm",
                       fill=down_colour)
    if frame["signal"] is not None:
        on_visible = frame["signal_on"] == "visible"
        panel = _cells(frame["signal"], 28, 28, 9, signed=True) if on_visible else \
            _cells(frame["signal"], 10, 20, 13, signed=True, )
        x0, y0 = (712, 330) if on_visible else (712, 90)
        img.paste(panel, (x0, y0))
        pen.rectangle((x0 - 1, y0 - 1, x0 + panel.width, y0 + panel.height), outline="black")
        title = "error x − p(x|h)\n(red: turn on, blue: off)" if on_visible else "error h − q(h|x)\n(red: up, blue: down)"
        pen.multiline_text((x0 + panel.width // 2, y0 - 8), title, font=_font(20), anchor="md", fill="black",
                           align="center")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False)
    return out.getvalue()


def phases_figure(frames: list[dict], pngs: list[bytes]) -> go.Figure:
    """The eight frames as one browser-played figure: an image per frame, Play, and a slider labelled by step."""
    labels = [f"{f['phase']} {1 + i % 4}" for i, f in enumerate(frames)]  # the frame's full story is in its picture
    sources = [plots.data_uri(p) for p in pngs]
    fig = go.Figure(go.Image(source=sources[0], hoverinfo="skip"))
    fig.frames = [go.Frame(data=[go.Image(source=s)], name=str(i)) for i, s in enumerate(sources)]
    play = dict(label="▶ Play", method="animate",
                args=[None, dict(frame=dict(duration=1400, redraw=True), transition=dict(duration=0), fromcurrent=True)])
    pause = dict(label="❚❚ Pause", method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])
    fig.update_layout(
        height=720, margin=dict(l=0, r=0, t=10, b=10), font=plots.FONT,
        updatemenus=[dict(type="buttons", buttons=[play, pause], direction="left", x=0, y=-0.02, xanchor="left",
                          yanchor="top", pad=dict(t=10, r=10), font=dict(size=15))],
        sliders=[dict(active=0, x=0.26, len=0.7, y=-0.02, yanchor="top",
                      currentvalue=dict(prefix="step: ", font=dict(size=18)),
                      steps=[dict(label=lab, method="animate", args=[[str(i)], dict(
                          mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))])
                             for i, lab in enumerate(labels)])])
    width, height = Image.open(io.BytesIO(pngs[0])).size  # fixed ranges: every frame shows the whole picture
    fig.update_xaxes(visible=False, range=[-0.5, width - 0.5], autorange=False, constrain="domain")
    fig.update_yaxes(visible=False, range=[height - 0.5, -0.5], autorange=False, scaleanchor="x", constrain="domain")
    return fig


@st.cache_data(max_entries=32, show_spinner=False)
def _phases(fingerprint: str, digit: tuple, seed: int) -> tuple[list[dict], list[bytes], dict]:
    model = bundled_model(WS)
    x = api.mnist.binarize(torch.tensor(digit)[None], generator=torch.Generator().manual_seed(seed))[0]
    result = api.helmholtz_analysis.wake_sleep_frames(model, x, seed=seed)
    frames = result["frames"]
    return frames, [diagram_png(f) for f in frames], {"wake": result["wake"], "sleep": result["sleep"],
                                                       "step_size": result["step_size"]}


def phases() -> None:
    st.subheader("Wake and sleep: two passes, two updates, one net each")
    st.markdown("**Wake**: a real digit goes **up** the recognition net, a code h is sampled, and the generative "
                "net learns to make that digit from that code (ascend log p(x, h)). **Sleep**: the generative net "
                "**dreams** a code and a digit top-down, and the recognition net learns to recover the dreamed code "
                "from the dreamed digit (ascend log q(h|x)). Neither phase follows the gradient of one objective. "
                "The model is the bundled wake-sleep SBN-200.")
    c1, c2, c3 = st.columns([2, 1, 1], gap="large")
    with c1:
        grey = digit_input.digit("hm_digit", "Wake-phase digit", widgets.url_int("digit", 0, 9_999, 0))
    with c2:
        seed = int(st.number_input("Seed (binarization, code, dream)", 0, 9_999, widgets.url_int("seed", 0, 9_999, 0),
                                   key="hm_seed"))
    if grey is None:
        return
    if st.session_state.get("hm_digit_src", "test digit") == "test digit":
        widgets.share(digit=int(st.session_state.get("hm_digit_idx", 0)))
    widgets.share(seed=seed)
    frames, pngs, numbers = _phases(bundled_fingerprint(WS), tuple(np.asarray(grey, dtype=np.float32).tolist()), seed)
    with c3:
        widgets.download_zip({f"helmholtz-frame{i + 1}.png": p for i, p in enumerate(pngs)},
                             f"helmholtz-wake-sleep-seed{seed}.zip", key="dl_hm_phases", label="Download frames (ZIP)")
    st.plotly_chart(phases_figure(frames, pngs), key="hm_phases", config={"displayModeBar": False})
    st.caption("Press Play, or drag the slider: the eight frames play in the browser. Left arrow, red when active: the "
               "recognition connections (up). Right arrow, blue when active: the generative connections (down). Grey "
               "levels on the code are probabilities, black and white squares sampled binary units.")
    wake, sleep, eps = numbers["wake"], numbers["sleep"], numbers["step_size"]
    m1, m2, m3 = st.columns(3)
    m1.metric("Wake step: log p(x, h) after", f"{wake['log_p_xh_after']:.1f}",
              f"{wake['log_p_xh_after'] - wake['log_p_xh_before']:+.1f} from {wake['log_p_xh_before']:.1f}",
              help=f"One plain gradient step (ε = {eps}) on this digit and code, generative weights only; nats.")
    m2.metric("Sleep step: log q(h|x) after", f"{sleep['log_q_after']:.1f}",
              f"{sleep['log_q_after'] - sleep['log_q_before']:+.1f} from {sleep['log_q_before']:.1f}",
              help=f"One plain gradient step (ε = {eps}) on this dream, recognition weights only; nats.")
    m3.metric("Code units on (wake, dream)", f"{wake['code_units_on']}, {sleep['code_units_on']}")


# --- WS vs RWS vs VAE ----------------------------------------------------------------------------------
def curves_figure(names: list[str]) -> go.Figure:
    fig = make_subplots(1, 2, horizontal_spacing=0.1, subplot_titles=[
        "validation ELBO (nats, higher is better)", "validation NLL, IS k = 100 (nats, lower is better)"])
    for name in names:
        c = bundled_metrics(name).get("training", {}).get("curves", {})
        for col, key in ((1, "valid_elbo"), (2, "valid_nll_is")):
            if key in c:
                fig.add_trace(go.Scatter(x=c["step"], y=c[key], mode="lines", name=MODELS[name], legendgroup=name,
                                         showlegend=col == 1, line=dict(color=COLOURS[name], width=3)), 1, col)
    fig.update_xaxes(title_text="training step (100 digits each)")
    fig.update_layout(height=430, margin=dict(l=10, r=10, t=50, b=10), font=plots.FONT,
                      legend=dict(orientation="h", y=-0.25, x=0))
    fig.update_annotations(font_size=17)
    return fig


@st.cache_data(max_entries=16, show_spinner=False)
def _samples_png(fingerprint: str, name: str, seed: int) -> bytes:
    images = bundled_model(name).sample(36, generator=torch.Generator().manual_seed(seed))
    return plots.grid_png(images.reshape(-1, 28, 28), cols=6, scale=3)


def compare() -> None:
    st.subheader("Wake-sleep, reweighted wake-sleep and the VAE, same width")
    st.markdown("Three models with one stochastic layer of 200 units and linear nets either way, trained on the "
                "same digits (wake-sleep for 6,000 steps; the other two, faster learners, for 3,000): the sigmoid belief "
                "net by **wake-sleep**, the same net by "
                "**reweighted wake-sleep** (K = 5 codes from q per digit, weighted by p(x, h)/q(h|x)), and 200 "
                "Gaussian latents by the **ELBO with reparameterized gradients** (a VAE).")
    st.plotly_chart(curves_figure(list(MODELS)), key="hm_curves")
    st.caption("Curves logged during training every 100 steps on the first 200 validation digits (seeded "
               "binarization): the ELBO (mean of 10 one-sample estimates) and the importance-sampled NLL with k = 100.")
    rows = []
    for name, label in MODELS.items():
        t, tr = _test(name), bundled_metrics(name).get("training", {})
        rows.append({"model": label, "test NLL, IS k=1000 (nats)": f"{t['nll_is']:.2f} ± {t['nll_is_stderr']:.2f}"
                     if t else "not evaluated", "test ELBO (nats)": f"{t['elbo']:.2f}" if t else "",
                     "steps": tr.get("steps", ""), "training time (s)": tr.get("seconds", "")})
    st.dataframe(rows, hide_index=True, width="stretch")
    images = {_test(name).get("images") for name in MODELS} - {None}
    st.caption(f"Test numbers on the first {', '.join(f'{n:,}' for n in sorted(images)) or '?'} test digits, binarized "
               "once with seed 0 (the papers used the fixed Larochelle binarization, not available here). The IS "
               "estimate uses 1000 codes from q per digit; it is a stochastic lower bound of log p(x), so these NLLs "
               "lean high. ± is one standard error over digits. Steps: RWS and the VAE were trained for half the steps "
               "of wake-sleep (a shared, busy CPU).")
    widgets.download_csv(rows, "helmholtz-comparison.csv", key="dl_hm_table")
    seed = int(st.columns(4)[0].number_input("Sample seed", 0, 9_999, widgets.url_int("seed", 0, 9_999, 0),
                                             key="hm_sample_seed"))
    widgets.share(seed=seed)
    for col, name in zip(st.columns(3), MODELS):
        with col:
            png = _samples_png(bundled_fingerprint(name), name, seed)
            widgets.image(png, caption=f"{MODELS[name]}: p(x|h), h ~ p(h)", width="stretch")
            widgets.download_png(png, f"{name}-samples-seed{seed}.png", key=f"dl_hm_{name}")


# --- explaining away -----------------------------------------------------------------------------------
EA_DEFAULTS = {"prior": 10, "w1": 12, "w2": 12, "bias": -6}  # prior in percent


def explaining_away_figure(result: dict) -> go.Figure:
    states = ["0, 0", "0, 1", "1, 0", "1, 1"]
    sleep, elbo = result["fits"]["sleep"], result["fits"]["elbo"]
    panels = [("exact posterior p(c | e = 1)", result["posterior"], "#4a5568"),
              ("sleep's fit: min KL(p ‖ q)", sleep["distribution"], "#dd6b20"),
              ("ELBO's fit: min KL(q ‖ p)", elbo["distribution"], "#2b6cb0")]
    fig = make_subplots(1, 3, shared_yaxes=True, horizontal_spacing=0.04, subplot_titles=[p[0] for p in panels])
    for i, (_, probs, colour) in enumerate(panels, start=1):
        fig.add_trace(go.Bar(x=states, y=probs, marker_color=colour, text=[f"{p:.2f}" for p in probs],
                             textposition="outside", showlegend=False, hovertemplate="%{x}: %{y:.3f}<extra></extra>"),
                      1, i)
    fig.update_yaxes(range=[0, 1.15], title_text="probability", row=1, col=1)
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=50, b=10), font=plots.FONT, bargap=0.25)
    fig.update_annotations(font_size=17)
    fig.update_xaxes(type="category", tickfont=dict(size=18), title_text="causes (c₁, c₂)", title_font=dict(size=15))
    return fig


@st.fragment
def explaining_away() -> None:
    st.subheader("Explaining away, exactly")
    st.markdown("Two rare, independent causes (a burglar, an earthquake) and one effect (the alarm) that either "
                "cause switches on. Once the alarm rings, learning that one cause happened makes the other "
                "unlikely: the causes become **anti-correlated** in the posterior, which no factorial q(c₁)q(c₂) can "
                "express. The sleep phase fits q to the posterior's marginals (min KL(p‖q): it averages the "
                "explanations and puts mass on impossible ones); the ELBO's best factorial q (min KL(q‖p)) commits "
                "to one explanation. All three are computed exactly over the four states.")
    st.latex(r"p(c_i{=}1)=\pi\qquad p(e{=}1\mid c_1,c_2)=\sigma(b+w_1c_1+w_2c_2)\qquad\text{observed: }e=1")
    c1, c2 = st.columns([1, 2.3], gap="large")
    with c1:
        prior = st.slider("Prior π of each cause (%)", 1, 50, widgets.url_int("prior", 1, 50, EA_DEFAULTS["prior"]),
                          key="hm_prior")
        w1 = st.slider("Weight w₁ (cause 1 → effect)", 0, 20, widgets.url_int("w1", 0, 20, EA_DEFAULTS["w1"]), key="hm_w1")
        w2 = st.slider("Weight w₂ (cause 2 → effect)", 0, 20, widgets.url_int("w2", 0, 20, EA_DEFAULTS["w2"]), key="hm_w2")
        bias = st.slider("Effect bias b", -10, 0, widgets.url_int("bias", -10, 0, EA_DEFAULTS["bias"]), key="hm_bias")
    widgets.share(prior=prior, w1=w1, w2=w2, bias=bias)
    result = _explaining_away(prior, w1, w2, bias)
    sleep, elbo = result["fits"]["sleep"], result["fits"]["elbo"]
    with c2:
        st.plotly_chart(explaining_away_figure(result), key="hm_ea")
        m = [*st.columns(2), *st.columns(2)]
        m[0].metric("Sleep fit q(c₁=1), q(c₂=1)", f"{sleep['q'][0]:.2f}, {sleep['q'][1]:.2f}")
        m[1].metric("ELBO fit q(c₁=1), q(c₂=1)", f"{elbo['q'][0]:.2f}, {elbo['q'][1]:.2f}")
        m[2].metric("KL(p‖q): sleep / ELBO fit", f"{sleep['kl_p_q']:.2f} / {elbo['kl_p_q']:.2f}",
                    help="Inclusive KL, nats; the sleep fit has the smaller one by construction.")
        m[3].metric("KL(q‖p): sleep / ELBO fit", f"{sleep['kl_q_p']:.2f} / {elbo['kl_q_p']:.2f}",
                    help="Exclusive KL = log p(e) − ELBO, nats; the ELBO fit has the smaller one.")
        st.caption(f"log p(e = 1) = {result['log_evidence']:.3f} nats. The ELBO fit is the best point of a grid over "
                   "(q₁, q₂), refined by mean-field updates; with equal weights two fits tie and it shows one.")
        widgets.download_json({"posterior": result["posterior"].tolist(), "sleep_q": sleep["q"].tolist(),
                               "elbo_q": elbo["q"].tolist(), "settings": dict(prior=prior / 100, w1=w1, w2=w2, bias=bias)},
                              "explaining-away.json", key="dl_hm_ea")


@st.cache_data(max_entries=256, show_spinner=False)
def _explaining_away(prior: int, w1: int, w2: int, bias: int) -> dict:
    return api.helmholtz_analysis.explaining_away((prior / 100, prior / 100), (float(w1), float(w2)), float(bias))


# --- gradient noise ----------------------------------------------------------------------------------
SNR_IMAGES, SNR_DRAWS = 20, 400


@st.cache_data(max_entries=4, show_spinner="Measuring gradient noise…")
def _snr(fp_vae: str, fp_rws: str) -> dict:
    x = mnist_test()[2][:SNR_IMAGES]
    out = {}
    for name in (VAE, RWS):
        r = api.helmholtz_analysis.gradient_snr(bundled_model(name), x, draws=SNR_DRAWS, seed=0)
        out[name] = {k: v for k, v in r.items() if isinstance(v, dict)}
        for v in out[name].values():
            v.pop("mean")
    return out


def noise() -> None:
    st.subheader("Why the VAE's gradient is quieter: score function vs reparameterization")
    st.markdown("The recognition net's gradient of the ELBO can be estimated from one code z ~ q(z|x) in two ways. "
                "The **score function** (REINFORCE) works for any q, binary codes included: (log w − b) ∇ log q(z|x), "
                "with a baseline b or without. The **reparameterization** z = μ + σε passes the gradient through "
                "the sample and needs a continuous z. Bars: the signal-to-noise ratio of one-sample estimates "
                "(higher is better; log scale).")
    result = _snr(bundled_fingerprint(VAE), bundled_fingerprint(RWS))
    labels = {"reparam": "reparameterization", "score_baseline": "score function + baseline",
              "score": "score function"}
    fig = go.Figure()
    for name, group in ((VAE, "VAE (Gaussian codes)"), (RWS, "SBN, RWS-trained (binary codes)")):
        keys = [k for k in labels if k in result[name]]
        fig.add_trace(go.Bar(x=[labels[k] for k in keys], y=[result[name][k]["median_snr"] for k in keys],
                             name=group, marker_color=COLOURS[name], text=[f"{result[name][k]['median_snr']:.3f}"
                                                                           for k in keys], textposition="outside"))
    fig.update_layout(barmode="group", height=430, font=plots.FONT, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(type="log", title="median SNR (log scale)", tickvals=[0.001, 0.01, 0.1, 1],
                                 ticktext=["0.001", "0.01", "0.1", "1"]),
                      legend=dict(orientation="h", y=1.12))
    fig.add_annotation(x="reparameterization", y=-2.3, yref="y", xshift=60, text="none for<br>binary codes",
                       showarrow=False, font=dict(size=15, color="#2b6cb0"))
    st.plotly_chart(fig, key="hm_snr")
    st.caption(f"Measured on the bundled VAE and RWS models, the first {SNR_IMAGES} test digits (seeded "
               f"binarization), {SNR_DRAWS} independent one-sample estimates per digit, of the gradient in the recognition "
               "net's outputs (μ and log σ², or the logits; a weight's gradient is these times a pixel). The three "
               "estimate the same gradient, so its size ‖E g‖ is measured once from the quietest one (the "
               "reparameterization for the VAE, the baselined score function for the SBN); each bar is ‖E g‖ over the "
               "estimator's own noise √E‖g − E g‖², median over digits. The baseline b is the mean log w of 10 other, "
               "independent draws for the same digit, so the estimate stays unbiased. The SBN has no reparameterization: "
               "that gap is why wake-sleep and RWS train q by other means than the score function.")
    rows = [{"model": name, "estimator": k, **{m: round(v, 6) for m, v in d.items()}}
            for name, r in result.items() for k, d in r.items()]
    widgets.download_csv(rows, "helmholtz-gradient-snr.csv", key="dl_hm_snr")
