"""The Glow page's views: samples and temperature, exact encode/decode, interpolation in z, the flow layer
by layer, and the bits/dim as four terms. Model math lives in engine.models.glow and engine.glow_analysis;
this file only arranges and draws it. Slider-driven pictures are precomputed once per digit or seed and
cached, so a slider only picks a picture."""
from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from plotly.subplots import make_subplots

from app import digit_input, plots, widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names, mnist_test
from engine import api

MODEL = "glow-mnist"
SHAPE = (28, 28)
TEMPERATURES = [round(0.1 * i, 1) for i in range(13)]  # 0.0 .. 1.2
GRID_ROWS, GRID_COLS = 5, 8
HISTOGRAM_DIGITS = 256  # test digits whose states make each layer's histogram


def available() -> bool:
    """Whether the bundled Glow is there and loads; if not, a message says why."""
    if MODEL not in bundled_names("glow"):
        st.error(f"The bundled Glow checkpoint {MODEL!r} is missing from assets/checkpoints; "
                 "`make train-glow` trains it (about 70 min on 2 CPU cores).")
        return False
    try:
        bundled_model(MODEL)
    except api.CheckpointError as e:
        st.error(f"The bundled Glow cannot be loaded: {e}")
        return False
    return True


def _picture(images, cols: int, scale: int = 3) -> bytes:
    return plots.grid_png(np.asarray(images).reshape(-1, *SHAPE), cols=cols, scale=scale)


def _test_bpd() -> dict:
    return bundled_metrics(MODEL).get("test_bits_per_dim", {})


# --- samples and temperature ------------------------------------------------------------------------
def samples() -> None:
    st.subheader("Samples, and the temperature knob")
    st.markdown("Draw latents ε ~ N(0, T²I) at every level and run the flow forward: x = f(ε). At T = 1 these "
                "are honest samples of the model; Glow's authors lower T to trade variety for cleaner images. "
                "Every temperature below decodes **the same** latents, only scaled.")
    c1, c2 = st.columns([3, 1])
    with c2:
        seed = int(st.number_input("Seed", 0, 99_999, widgets.url_int("seed", 0, 99_999, 0), key="glow_seed"))
        start = widgets.url_int("t10", 0, len(TEMPERATURES) - 1, 7)
    widgets.share(seed=seed)
    draws = _temperature_draws(bundled_fingerprint(MODEL), seed)
    with c1:  # every temperature is in the figure: its slider and Play run in the browser, no server round trip
        st.plotly_chart(_temperature_animation(bundled_fingerprint(MODEL), seed, start), key="glow_temperature_anim")
        st.caption(f"{GRID_ROWS * GRID_COLS} samples, seed {seed}: drag the temperature slider under the grid, or "
                   "press Play. A link's t10=… (ten times T) picks the temperature shown first. "
                   + _overflow_note(draws["overflowed"]))
    with c2:
        widgets.download_zip({f"glow-samples-T{t:.1f}-seed{seed}.png": png for t, png in draws["pngs"].items()},
                             f"glow-samples-seed{seed}.zip", key="dl_glow_samples",
                             label="Download all (ZIP)", help="The sample grid at every temperature, one PNG each")
    st.markdown("**One latent, every temperature** (the first four samples, T from 0 to 1.2 left to right): at "
                "T = 0 every level's latent is zero, and the flow decodes that one image.")
    widgets.image(draws["strip"], width="stretch")
    widgets.download_png(draws["strip"], f"glow-temperature-strip-seed{seed}.png", key="dl_glow_strip")


def _overflow_note(overflowed: dict[float, int]) -> str:
    """A sentence on the samples whose decoding overflowed (shown black), or "" when none did."""
    counts = [f"{n} at T = {t:.1f}" for t, n in overflowed.items() if n]
    if not counts:
        return ""
    return (f"Some latents lie so far out that decoding them overflowed ({', '.join(counts)}: an inverse coupling "
            "divides by a scale near 0); they are shown black.")


@st.cache_resource(show_spinner="Decoding the samples at every temperature…", max_entries=16)
def _temperature_draws(fingerprint: str, seed: int) -> dict:
    """One seeded draw of latents decoded at every temperature: "grids" (T, N, 784) in [0, 1], "pngs" (one grid
    picture per temperature), "overflowed" (samples per temperature), "strip" (4 samples x all temperatures,
    PNG); read-only, cached once per server and seed."""
    model = bundled_model(MODEL)
    grids, overflowed = api.glow_temperature_grids(model, GRID_ROWS * GRID_COLS, TEMPERATURES, seed)  # (T, N, 784)
    return {"grids": grids, "pngs": {t: _picture(grids[i], cols=GRID_COLS) for i, t in enumerate(TEMPERATURES)},
            "overflowed": {t: int(overflowed[i]) for i, t in enumerate(TEMPERATURES)},
            "strip": _picture(grids[:, :4].transpose(1, 0, 2), cols=len(TEMPERATURES), scale=3)}


@st.cache_data(max_entries=32, show_spinner=False)
def _temperature_animation(fingerprint: str, seed: int, start: int) -> go.Figure:
    """The sample grid at every temperature as one browser-played figure, shown at TEMPERATURES[start] first."""
    grids = _temperature_draws(fingerprint, seed)["grids"]
    frames = grids.reshape(len(TEMPERATURES), -1, *SHAPE)
    return plots.animation(frames, labels=[f"{t:.1f}" for t in TEMPERATURES], cols=GRID_COLS, height=560,
                           name="temperature T", start=start)


# --- encode and decode ------------------------------------------------------------------------------
def encode() -> None:
    st.subheader("Inference is exact: encode a digit, decode it back")
    st.markdown("A flow has no encoder network and no reconstruction loss: z = f⁻¹(x) runs the same layers "
                "backwards, and f(z) gives the digit back up to float rounding. The 8-bit image comes back "
                "identical.")
    c1, c2 = st.columns([1, 2], gap="large")
    with c1:
        x = digit_input.digit("glow_enc", "Digit", 0)
    if x is None:
        return
    model = bundled_model(MODEL)
    result = api.glow_round_trip(model, x[None])
    recon = result["reconstruction"][0]
    with c2:
        png = _picture(np.stack([x.numpy(), recon]), cols=2, scale=6)
        widgets.image(png, caption="The digit (8-bit) and f(f⁻¹(x))", width="stretch")
        widgets.download_png(png, "glow-round-trip.png", key="dl_glow_round_trip")
        m1, m2, m3 = st.columns(3)
        m1.metric("Largest pixel error", f"{result['max_error']:.1e}", help="max |y − f(f⁻¹(y))| in float32, "
                  "y = (k + ½)/256 the digit's bin centres, on a scale where the pixel range is 1.")
        m2.metric("8-bit image back", "identical" if result["identical_8bit"] else "differs")
        terms = {k: float(v[0]) for k, v in result["bits_per_dim"].items()}
        m3.metric("This digit, bits/dim", f"{terms['total']:.2f}",
                  help="Its 8-bit bound with the fixed dequantization seed; the four terms are in the Bits/dim view.")
        st.caption(f"The float32 round trip moves a pixel by at most {result['max_error']:.1e}: far below one "
                   "grey level (1/256 ≈ 3.9e-3), so every pixel lands back in its own 8-bit bin.")
    _latent_pictures(result["latents"])
    _redraw_fine(model, x)


def _latent_pictures(latents: list[np.ndarray]) -> None:
    st.markdown("**The latents, per level** (blue < 0 < red, saturated at ±3). The first level factors out half "
                "the channels at 14×14; the top level holds the rest at 7×7. Under the model each is standard "
                "normal; here the digit sits at its bin centres, without the dequantization noise u, and its "
                "latents are calmer than N(0, 1): a good share of their spread encodes that noise.")
    cols = st.columns(len(latents))
    for i, (col, z) in enumerate(zip(cols, latents)):
        maps = z[0]  # (C, H, W)
        tiled = plots.grid(maps, cols=2 if len(maps) <= 4 else 4, pad=1, pad_value=np.nan)
        with col:
            widgets.image(plots.signed_png(tiled, limit=3.0, scale=10 if maps.shape[-1] < 10 else 12),
                          caption=f"level {i + 1}: {maps.shape[0]} channels × {maps.shape[1]}×{maps.shape[2]}")


def _redraw_fine(model, x: torch.Tensor) -> None:
    st.markdown("**What the top level holds.** Keep this digit's top (7×7) latent and draw the finer level's "
                "latent afresh: what stays the same is what the coarse latent encodes.")
    c1, c2 = st.columns([1, 3])
    with c1:
        temperature = st.select_slider("Temperature of the redrawn level", TEMPERATURES[1:11], value=0.7,
                                       key="glow_fine_t", format_func=lambda t: f"{t:.1f}")
    images = api.glow_redraw_fine(model, x, GRID_COLS, temperature, seed=0)
    with c2:
        png = _picture(images, cols=GRID_COLS)
        widgets.image(png, width="stretch")
        widgets.download_png(png, "glow-redraw-fine.png", key="dl_glow_fine")


# --- interpolation ----------------------------------------------------------------------------------
def interpolate() -> None:
    st.subheader("Walking in z between two digits")
    st.markdown("Encode both digits exactly, walk from one latent to the other (all levels together) and "
                "decode every step. Spherical paths keep the latent at a typical length; linear ones pass "
                "closer to z = 0.")
    c1, c2, c3 = st.columns(3)
    with c1:
        a = digit_input.digit("glow_from", "From", 3)
    with c2:
        b = digit_input.digit("glow_to", "To", 2)
    with c3:
        steps = st.slider("Steps", 5, 16, 10, key="glow_interp_steps")
    if a is None or b is None:
        return
    model = bundled_model(MODEL)
    strips = {kind: api.glow_interpolation(model, a, b, steps, kind=kind) for kind in ("spherical", "linear")}
    for kind, images in strips.items():
        st.markdown(f"**{kind.capitalize()}**")
        png = _picture(images, cols=steps)
        widgets.image(png, width="stretch")
        widgets.download_png(png, f"glow-interpolation-{kind}.png", key=f"dl_glow_interp_{kind}")
    frames = np.stack([strips["spherical"], strips["linear"]], 1).reshape(steps, 2, *SHAPE)
    st.plotly_chart(plots.animation(frames, labels=[f"{t:.2f}" for t in np.linspace(0, 1, steps)],
                                    height=420, cols=2), key="glow_interp_anim")
    st.caption("The animation plays in your browser: spherical left, linear right. Both ends are the "
               "encoded digits themselves, exactly.")


# --- layer by layer -----------------------------------------------------------------------------------
def inside() -> None:
    st.subheader("Inside the flow, layer by layer")
    st.markdown("Follow one digit through every layer in the density direction, x → z, dequantized as in the "
                f"bits/dim (y = (k + u)/256, fixed seed). The histogram pools the state values of "
                f"{HISTOGRAM_DIGITS} test digits: it starts as the logit of pixel intensities (two lumps: "
                "background and ink) and ends at the standard normal, the prior the flow was trained towards.")
    images, labels, _ = mnist_test()
    c1, _ = st.columns([1, 3])
    index = int(c1.number_input("Test digit", 0, len(images) - 1, widgets.url_int("digit", 0, len(images) - 1, 0),
                                key="glow_inside_digit"))
    n_states = len(_layer_figures(bundled_fingerprint(MODEL), index))
    start = widgets.url_int("layer", 0, n_states - 1, n_states - 1)
    widgets.share(digit=index)
    st.plotly_chart(_layer_animation(bundled_fingerprint(MODEL), index, start), key="glow_layers_anim")
    st.caption(f"Test digit {index} (a {int(labels[index])}). Drag the layer slider under the figure, or press Play: "
               "every layer is in the figure, so it plays in your browser. Left, on top: the state's channels "
               "(blue < 0 < red, saturated at ±3); below, for a coupling, its log-scale log s (left) and shift t "
               "(right) for the channels it changes (z_b = (x_b + t) · s, each saturated at the limit in the title). "
               "Right: the "
               f"pooled values of {HISTOGRAM_DIGITS} test digits against N(0, 1). A link's layer=… picks the layer "
               "shown first.")


PANEL, GAP = (480, 300), 16  # a layer picture's top box (the state) in pixels, and the gap between its boxes


@st.cache_data(max_entries=16, show_spinner="Drawing every layer…")
def _layer_animation(fingerprint: str, index: int, start: int) -> go.Figure:
    """Every layer's state for one test digit as one browser-played figure: the maps as one picture (left) and
    the pooled histogram against N(0, 1) (right), shown at layer `start` first."""
    frames = [_layer_frame(state) for state in _layer_figures(fingerprint, index)]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.1)
    for trace, col in zip(frames[start][0], (1, 2, 2)):
        fig.add_trace(trace, 1, col)
    fig.frames = [go.Frame(data=traces, name=str(k), layout=go.Layout(title_text=title))
                  for k, (traces, title) in enumerate(frames)]
    jump = dict(frame=dict(duration=0, redraw=True), transition=dict(duration=0), mode="immediate")
    play = {**jump, "frame": dict(duration=400, redraw=True), "fromcurrent": True}
    fig.update_layout(
        title=dict(text=frames[start][1], font=dict(size=20)), height=860, font=plots.FONT, bargap=0,
        margin=dict(l=10, r=10, t=90, b=120), legend=dict(orientation="h", x=0.6, y=1.02),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.06, xanchor="left", yanchor="top",
                          font=dict(size=16), buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                                       dict(label="❚❚", method="animate", args=[[None], jump])])],
        sliders=[dict(active=start, x=0.16, len=0.84, y=-0.06, yanchor="top", pad=dict(t=0, b=0),
                      currentvalue=dict(prefix="layer ", font=dict(size=16)), font=dict(size=9),
                      steps=[dict(label=str(k), method="animate", args=[[str(k)], jump])
                             for k in range(len(frames))])])
    fig.update_xaxes(visible=False, row=1, col=1).update_yaxes(visible=False, row=1, col=1)
    fig.update_xaxes(title_text="value", row=1, col=2)
    fig.update_yaxes(title_text="fraction per bin", row=1, col=2)
    return fig


def _layer_frame(state: dict) -> tuple[list, str]:
    """One layer's traces (its picture, histogram bars, the N(0, 1) curve) and its title."""
    counts, edges = state["histogram"]
    centres = (edges[1:] + edges[:-1]) / 2
    maps = [state["png"]] + [png for png, _ in state.get("coupling", [])]
    picture = go.Image(source=plots.data_uri(_stacked(maps)), hoverinfo="skip")
    bars = go.Bar(x=centres, y=counts, width=np.diff(edges), name="state values", marker_color="#2b6cb0")
    curve = go.Scatter(x=centres, y=state["gaussian"], mode="lines", name="N(0, 1)",
                       line=dict(color="#dd6b20", width=3))
    c, h, w = state["shape"]
    limits = ""
    if "coupling" in state:
        (_, s_limit), (_, t_limit) = state["coupling"]
        limits = f" · log s ±{s_limit:.2g}, t ±{t_limit:.2g}"
    title = (f"{state['label']} · state {c}×{h}×{w} · log-det so far {state['logdet_bpd']:+.2f} bits/dim<br>"
             f"<span style='font-size:15px'>values: mean {state['mean']:+.2f}, std {state['std']:.2f}, "
             f"{100 * state['outside']:.1f}% outside ±4{limits}</span>")
    return [picture, bars, curve], title


def _stacked(pngs: list[bytes]) -> bytes:
    """The state's picture on top and, for a coupling, its log s and t maps side by side below, each fitted
    (nearest-neighbour, centred) into its box on one white canvas of fixed size, so the axes never jump."""
    width, height = PANEL
    boxes = [(0, 0, width, height), (0, height + GAP, width // 2 - GAP // 2, height - GAP),
             (width // 2 + GAP // 2, height + GAP, width // 2 - GAP // 2, height - GAP)]  # (left, top, w, h)
    canvas = Image.new("RGB", (width, 2 * height), "white")
    for data, (left, top, box_w, box_h) in zip(pngs, boxes):
        image = Image.open(io.BytesIO(data)).convert("RGB")
        scale = min(box_w / image.width, box_h / image.height)
        image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))), Image.NEAREST)
        canvas.paste(image, (left + (box_w - image.width) // 2, top + (box_h - image.height) // 2))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


@st.cache_resource(show_spinner="Tracing the digit through every layer…", max_entries=8)
def _layer_figures(fingerprint: str, index: int) -> list[dict]:
    """Per layer: label, shape, running log-det, the first digit's state as a PNG, the coupling maps as PNGs
    with their colour limits (couplings only), and the pooled histogram; read-only, cached once per digit."""
    images, _, _ = mnist_test()
    pool = torch.cat([images[index:index + 1], images[:HISTOGRAM_DIGITS]])
    out = []
    dequantization = torch.Generator().manual_seed(api.GLOW_DEQUANTIZATION_SEED)  # as in the test bits/dim
    for layer in api.glow_layer_states(bundled_model(MODEL), pool, generator=dequantization):
        entry = {k: layer[k] for k in ("label", "shape", "logdet_bpd", "outside", "std", "mean", "histogram",
                                       "gaussian")}
        entry["png"] = _channels_png(layer["state"])
        if "coupling" in layer:
            entry["coupling"] = [(_channels_png(m, limit=_limit(m)), _limit(m)) for m in layer["coupling"]]
        out.append(entry)
    return out


def _channels_png(maps: np.ndarray, limit: float = 3.0) -> bytes:
    """(C, H, W) signed maps tiled 2 to a row (4 when C > 4) with grey gaps, saturated at +-limit, scaled to fit a column."""
    tiled = plots.grid(maps, cols=2 if len(maps) <= 4 else 4, pad=1, pad_value=np.nan)
    return plots.signed_png(tiled, limit=limit, scale=max(2, min(12, 480 // tiled.shape[1])))


def _limit(maps: np.ndarray) -> float:
    """A colour limit for maps of any scale: their largest magnitude (1 if all zero)."""
    return float(np.abs(maps).max()) or 1.0


# --- bits per dimension -------------------------------------------------------------------------------
TERM_LABELS = {"prior": "prior", "flow_logdet": "flow log-det", "logit_logdet": "logit log-det",
               "quantization": "8-bit bins"}
TERM_HELP = ("**prior**: −log N(ε) with the splits' learned priors · **flow log-det**: actnorm, 1×1 convolutions and "
             "couplings · **logit log-det**: the logit transform · **8-bit bins**: log₂ 256 = 8 for the bin width "
             "1/256 of each pixel. All in bits/dim, signed so that they add up to the total.")
PUBLISHED = [("Real NVP (Dinh et al. 2017)", 1.06, "as reported in later papers' tables"),
             ("Glow (Kingma & Dhariwal 2018)", 1.05, "as reported in later papers' tables; the Glow paper "
              "reports no MNIST number"),
             ("FFJORD (Grathwohl et al. 2019)", 0.99, "continuous-time flow")]


def bits() -> None:
    st.subheader("Bits per dimension, as four terms that add up")
    st.latex(r"-\frac{\log_2 P(x)}{D} \;\le\; \underbrace{-\frac{\log p_Z(\varepsilon)}{D\ln 2}}_{\text{prior}}"
             r"\;\underbrace{-\frac{\log|\det \partial\varepsilon/\partial v|}{D\ln 2}}_{\text{flow}}"
             r"\;\underbrace{-\frac{\log|\det \partial v/\partial y|}{D\ln 2}}_{\text{logit}}\;+\;8")
    st.latex(r"y=\frac{k+u}{256},\quad u\sim U[0,1),\qquad v=\operatorname{logit}\big(\alpha+(1-2\alpha)\,y\big),"
             r"\qquad \varepsilon=f^{-1}(v),\qquad D=784")
    test = _test_bpd()
    if not test:
        st.warning("The bundled Glow has no measured test bits/dim yet (`python -m engine eval "
                   "assets/checkpoints/glow-mnist` measures it).")
        return
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.plotly_chart(_waterfall(test), key="glow_waterfall")
        st.caption(TERM_HELP)
    with right:
        st.metric("Test bits/dim", f"{test['total']:.3f}", f"± {test['stderr']:.3f} (standard error)",
                  delta_color="off", delta_arrow="off")
        st.markdown(f"- {test['images']:,} MNIST test digits, 8-bit grey levels; one dequantization draw u per "
                    f"image with seed {test['dequantization_seed']}.\n"
                    f"- {test['nats_per_image']:.1f} nats per image.\n"
                    "- A bound on the 8-bit likelihood (Theis et al. 2016): the exact density of the "
                    "dequantized digit, minus the bin width.\n"
                    "- A uniform density scores exactly 8 bits/dim; a negative term is where the model gains.")
        st.markdown("**Published, for scale** (far larger models, trained on GPUs):\n" + "\n".join(
            f"- {name}: **{value:.2f}** ({note})" for name, value, note in PUBLISHED))
    widgets.download_json(test, "glow-test-bits-per-dim.json", key="dl_glow_bits")
    _training_line()


def _waterfall(test: dict) -> go.Figure:
    """The four mean terms as steps from 0 to the total (bits/dim), left to right."""
    keys = list(TERM_LABELS)
    fig = go.Figure(go.Waterfall(
        x=[TERM_LABELS[k] for k in keys] + ["total"], y=[test[k] for k in keys] + [test["total"]],
        measure=["relative"] * len(keys) + ["total"], cliponaxis=False, textposition="outside",
        text=[f"{test[k]:+.2f}" for k in keys] + [f"{test['total']:.3f}"], textfont=dict(size=20),
        increasing={"marker": {"color": "#c53030"}}, decreasing={"marker": {"color": "#2b6cb0"}},
        totals={"marker": {"color": "#2d3748"}}, connector={"line": {"color": "#a0aec0"}}))
    low = min(0.0, *np.cumsum([test[k] for k in keys]))
    fig.update_layout(height=440, margin=dict(l=10, r=10, t=30, b=10), font=plots.FONT, showlegend=False,
                      yaxis=dict(title="bits per dimension", range=[low - 1.2, 9.2], zeroline=True,
                                 zerolinecolor="#4a5568"))
    return fig


def _training_line() -> None:
    metrics = bundled_metrics(MODEL)
    training = metrics.get("training", {})
    config = bundled_model(MODEL).config
    params = sum(p.numel() for p in bundled_model(MODEL).parameters())
    if training:
        st.caption(f"The bundled model: {config.levels} levels × {config.steps} steps, coupling nets of "
                   f"{config.hidden} channels, {params:,} parameters; trained by `make train-glow` for "
                   f"{training.get('epochs', '?')} epochs ({training.get('steps', '?'):,} steps) in "
                   f"{training.get('seconds', 0) / 60:.0f} min on {training.get('device', 'cpu')}.")
