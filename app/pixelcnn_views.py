"""The PixelCNN page's views: generation watched pixel by pixel (frames played by the browser), completion of
given top rows, the receptive field and blind spot measured with autograd, the masks and the two stacks, the
cached sampler timed against the naive one, and the test NLL. Model math lives in engine.models.pixelcnn and
engine.pixelcnn_analysis; this file only arranges and draws it."""
from __future__ import annotations

import base64
import io
import math
import random
import threading
from collections import OrderedDict

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from plotly.subplots import make_subplots

from app import digit_input, plots, widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names
from engine import api

NETS = {"pixelcnn": ("pixelcnn-mnist", "PixelCNN"), "gated": ("gated-pixelcnn-mnist", "Gated PixelCNN")}
SIDE = 28
GRID = 16  # the 4x4 grid of samples
STRIDES = [4, 7, 14, 28]  # pixels between frames
# Inferno, whose first stop "#000004" Streamlit's plotly theme would take for one of its placeholder colours and
# replace (it showed p = 0 as pink): the same colour written as rgb().
BELIEF_COLOURS = [[i / 9, c] for i, c in enumerate(["rgb(0,0,4)", *px.colors.sequential.Inferno[1:]])]
SPACING = 0.09  # between the watch figure's panels; its colour bar sits just right of the middle panel
COLORBAR_X = 0.36 * (1 - 2 * SPACING) + SPACING + 0.36 * (1 - 2 * SPACING) + 0.005
PAPER_NATS = 81.30  # PixelCNN, van den Oord et al. 2016, Table 4 (fixed binarization)
UNIFORM_NATS = SIDE * SIDE * math.log(2)  # all-zero logits: p = 1/2 everywhere
ORANGE, GREY, BLUE, RED = (0.87, 0.42, 0.13), (0.80, 0.83, 0.87), (0.17, 0.42, 0.69), (0.77, 0.19, 0.19)
BINARIZE_NOTE = ("Test NLLs are on the app's own seeded binarization of the MNIST test split; the papers use the "
                 "fixed binarized-MNIST file of Larochelle & Murray, which is not available here, so paper numbers "
                 "compare only roughly.")


# --- availability and the network choice -------------------------------------------------------------
def problem(net: str) -> str | None:
    """Why the bundled `net` cannot be used (None when it loads)."""
    name = NETS[net][0]
    if name not in bundled_names():
        return (f"The bundled checkpoint {name!r} is missing from assets/checkpoints; train it with "
                f"`python -m engine train {'gated-pixelcnn' if net == 'gated' else 'pixelcnn'} --preset bundled "
                f"--out assets/checkpoints/{name}` and `python -m engine eval assets/checkpoints/{name}`.")
    try:
        bundled_model(name)
    except api.CheckpointError as e:
        return f"The bundled checkpoint {name!r} cannot be loaded: {e}"
    return None


def available() -> list[str]:
    """The nets that load; an error for each that does not, and for the page when none does."""
    ok = []
    for net in NETS:
        message = problem(net)
        if message:
            st.error(message)
        else:
            ok.append(net)
    return ok


def choose_net(nets: list[str], key: str) -> str:
    """PixelCNN or gated (only those that load), shared by URL as ?net=..."""
    default = widgets.url_choice("net", nets, nets[0])
    net = st.segmented_control("Network", nets, format_func=lambda n: NETS[n][1], key=key, required=True,
                               default=default)
    widgets.share(net=net)
    return net


def _model(net: str):
    return bundled_model(NETS[net][0])


def _fingerprint(net: str) -> str:
    return bundled_fingerprint(NETS[net][0])


# --- pictures -----------------------------------------------------------------------------------------
def rgb_png(rgb: np.ndarray, scale: int) -> bytes:
    """(H, W, 3) floats in [0, 1] -> RGB PNG bytes upscaled by `scale` (nearest neighbour)."""
    pil = Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), mode="RGB")
    buf = io.BytesIO()
    pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def tile_rgb(images: np.ndarray, cols: int, pad: int = 2, pad_rgb=(1.0, 1.0, 1.0)) -> np.ndarray:
    """(N, H, W, 3) -> one (rows*(H+pad)+pad, cols*(W+pad)+pad, 3) picture."""
    return np.stack([plots.grid(images[..., k], cols=cols, pad=pad, pad_value=pad_rgb[k]) for k in range(3)], -1)


def canvas_rgb(binary: np.ndarray, drawn: np.ndarray, current: int | None = None) -> np.ndarray:
    """Binary images (N, H*W) as RGB (N, H, W, 3): drawn pixels white/black, pixels not drawn yet slate grey,
    pixel `current` (the one being sampled) orange. `drawn`: bool (H*W,) or (N, H*W)."""
    ink = np.repeat(binary.astype(np.float32)[..., None], 3, -1)  # (N, P, 3)
    drawn = np.broadcast_to(drawn, binary.shape)
    ink[~drawn] = (0.33, 0.38, 0.47)
    if current is not None and current < binary.shape[1]:
        ink[:, current] = ORANGE
    return ink.reshape(len(binary), SIDE, SIDE, 3)


def outline_tile(picture: np.ndarray, index: int, cols: int, colour=ORANGE, pad: int = 2) -> np.ndarray:
    """Colour the pad around tile `index` of a tiled picture (a frame around one sample)."""
    r, c = divmod(index, cols)
    top, left = r * (SIDE + pad), c * (SIDE + pad)
    out = picture.copy()
    box = out[top:top + SIDE + 2 * pad, left:left + SIDE + 2 * pad]
    inner = box[pad:-pad, pad:-pad].copy()
    box[:] = colour
    box[pad:-pad, pad:-pad] = inner
    return out


# --- 1. generation, watched ------------------------------------------------------------------------------
def generate(nets: list[str]) -> None:
    st.subheader("Generation, pixel by pixel")
    st.markdown("Sampling follows the chain rule in raster order: for each pixel, the network reads every pixel "
                "drawn so far, gives p(xᵢ = 1 | x<ᵢ), and a coin with that probability sets the pixel. "
                "Press ▶ to watch 16 digits appear; drag the slider to scrub. Left: the samples (slate = not drawn "
                "yet, orange = the pixel being drawn). Middle: the framed sample's **current beliefs** about every "
                "pixel. Right: for the pixel being drawn, each sample's probability that it is on.")
    c1, c2, c3, c4 = st.columns([3, 2, 2, 3], vertical_alignment="bottom")
    with c1:
        net = choose_net(nets, "pcnn_gen_net")
    with c2:
        st.session_state.setdefault("pcnn_seed", widgets.url_int("seed", 0, 99_999, 0))
        seed = int(st.number_input("Seed", 0, 99_999, key="pcnn_seed"))
    with c3:
        st.button("New samples", icon=":material/casino:", key="pcnn_new", on_click=_new_seed)
    with c4:
        every = int(widgets.url_choice("every", [str(s) for s in STRIDES], "7"))
        stride = st.select_slider("A frame every … pixels", STRIDES, value=every, key="pcnn_every")
    focus = st.columns([1, 1])[0].slider(
        "Beliefs shown for sample", 1, GRID, widgets.url_int("focus", 1, GRID, 1), key="pcnn_focus",
        help="Which of the 16 samples the middle panel follows (framed in orange on the left), counted row by row.")
    widgets.share(seed=seed, every=stride, focus=focus)
    slot = st.empty()  # the digits as they are drawn, then the figure that plays them back
    frames = _frames(_fingerprint(net), net, seed, stride, focus - 1, on_row=_live_preview(slot, NETS[net][1]))
    slot.plotly_chart(watch_figure(frames, focus - 1), key="pcnn_watch", config={"displayModeBar": False})
    last = frames["p_focus"]
    st.caption(f"{NETS[net][1]}, seed {seed} (share the link: the same seed draws the same digits). "
               f"{len(frames['pixel'])} frames, one every {stride} pixels, precomputed by the exact cached sampler "
               f"and played by your browser. Sample {focus}'s pixels were drawn with an average "
               f"p(on) of {np.nanmean(last):.2f} where it drew ink.")
    widgets.download_png(frames["final_png"], f"{net}-samples-seed{seed}.png", key="dl_pcnn_samples")


def _new_seed() -> None:
    st.session_state["pcnn_seed"] = random.randrange(100_000)


def _live_preview(slot, title: str):
    """A callback for the sampler that shows the 16 digits in `slot` as their rows are drawn (every other row),
    so the first picture appears within a row's time instead of after the whole grid and its beliefs."""
    def show(row: int, canvas: torch.Tensor) -> None:
        if row % 2 == 0 and row < SIDE - 1:
            return
        drawn = np.arange(SIDE * SIDE) < (row + 1) * SIDE
        picture = tile_rgb(canvas_rgb(canvas.numpy(), drawn), cols=4, pad_rgb=GREY)
        with slot.container():
            left, right = st.columns([0.36, 0.64])
            left.image(rgb_png(picture, scale=4), width="stretch")
            right.markdown(f"**{title}: drawing row {row + 1} of {SIDE}** with the exact cached sampler, all 16 "
                           "digits at once." + ("" if row < SIDE - 1 else " Now the beliefs at every frame…"))
    return show


_FRAMES: OrderedDict = OrderedDict()  # (fingerprint, net, seed, stride, focus) -> frames, shared by all sessions
_FRAMES_LOCK = threading.Lock()
FRAMES_KEPT = 24


def _frames(fingerprint: str, net: str, seed: int, stride: int, focus: int, on_row=None) -> dict:
    """The watch figure's frames, computed once per (model, seed, stride, focus) and kept for the 24 most recent
    (a hand-made cache rather than st.cache_resource, whose replay forbids drawing into `slot` from inside);
    `on_row` sees the rows as they are drawn when the frames are computed, not when they come from the cache."""
    key = (fingerprint, net, seed, stride, focus)
    with _FRAMES_LOCK:
        if key in _FRAMES:
            _FRAMES.move_to_end(key)
            return _FRAMES[key]
    frames = _compute_frames(net, seed, stride, focus, on_row)
    with _FRAMES_LOCK:
        _FRAMES[key] = frames
        while len(_FRAMES) > FRAMES_KEPT:
            _FRAMES.popitem(last=False)
    return frames


def _compute_frames(net: str, seed: int, stride: int, focus: int, on_row=None) -> dict:
    """Everything the watch figure needs, read-only: per frame the tiled grid as a PNG data URI, the focused
    sample's belief map (H, W) in [0, 1] and the 16 probabilities of the pixel being drawn."""
    model = _model(net)
    uniforms = torch.rand(GRID, model.n_pixels, generator=torch.Generator().manual_seed(seed))
    grid = api.generation_frames(model, GRID, stride=stride, uniforms=uniforms, with_beliefs=False, on_row=on_row)
    one = api.generation_frames(model, 1, stride=stride, uniforms=uniforms[focus:focus + 1])
    samples = grid["samples"].numpy()
    pixels = grid["pixel"]
    index = np.arange(model.n_pixels)
    uris = []
    for i in pixels:
        rgb = tile_rgb(canvas_rgb(samples, index < i, int(i)), cols=4, pad_rgb=GREY)
        uris.append(data_uri(rgb_png(outline_tile(rgb, focus, cols=4), scale=4)))
    drawn_p = grid["probabilities"].numpy()[focus]
    final = tile_rgb(canvas_rgb(samples, np.ones(model.n_pixels, bool)), cols=4, pad_rgb=GREY)
    return {"uris": uris, "beliefs": one["beliefs"][:, 0].astype(np.float32) / 255, "pixel": pixels,
            "p_pixel": grid["p_pixel"], "samples": samples,
            "p_focus": np.where(samples[focus] > 0, drawn_p, np.nan),
            "identical_focus": bool(np.array_equal(one["samples"].numpy()[0], samples[focus])),
            "final_png": rgb_png(final, scale=4)}


def watch_figure(frames: dict, focus: int) -> go.Figure:
    """One plotly figure with a frame per step: the grid (image), the focused sample's beliefs (heatmap with the
    current pixel marked) and the per-sample probability of the current pixel (bars); play, pause, slider."""
    fig = make_subplots(rows=1, cols=3, column_widths=[0.36, 0.36, 0.28], horizontal_spacing=SPACING,
                        subplot_titles=("16 samples", f"Sample {focus + 1}: p(xⱼ = 1 | pixels drawn so far)",
                                        "The pixel being drawn: p(on)"))
    steps = [_frame_traces(frames, t, focus) for t in range(len(frames["pixel"]))]
    last = len(steps) - 1
    for trace, (row, col) in zip(steps[last][0], [(1, 1), (1, 2), (1, 2), (1, 3)]):
        fig.add_trace(trace, row=row, col=col)
    fig.frames = [go.Frame(data=traces, traces=[0, 1, 2, 3], name=str(t)) for t, (traces, _) in enumerate(steps)]
    play = {"frame": {"duration": 90, "redraw": True}, "transition": {"duration": 0}, "fromcurrent": False,
            "mode": "immediate"}
    fig.update_layout(
        height=540, margin=dict(l=10, r=10, t=50, b=10), font=plots.FONT, showlegend=False,
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": -0.06, "xanchor": "left",
                      "yanchor": "top", "pad": {"t": 8, "r": 8},
                      "buttons": [{"label": "▶ Play", "method": "animate", "args": [None, play]},
                                  {"label": "❚❚ Pause", "method": "animate",
                                   "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]}]}],
        sliders=[{"active": last, "x": 0.2, "len": 0.8, "y": -0.02, "yanchor": "top", "pad": {"t": 10},
                  "currentvalue": {"prefix": "", "font": {"size": 18, "color": "#2d3748"}},
                  "font": {"color": "rgba(0,0,0,0)", "size": 2}, "ticklen": 0, "minorticklen": 0,
                  "steps": [{"label": note, "method": "animate",
                             "args": [[str(t)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate",
                                                 "transition": {"duration": 0}}]}
                            for t, (_, note) in enumerate(steps)]}])
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(autorange="reversed", scaleanchor="x2", row=1, col=2)
    fig.update_xaxes(range=[-0.5, SIDE - 0.5], constrain="domain", row=1, col=2)
    fig.update_yaxes(range=[0, 1.05], showticklabels=True, gridcolor="#e2e8f0", side="right", row=1, col=3)
    fig.update_xaxes(showticklabels=True, tickmode="array", tickvals=list(range(1, GRID + 1, 3)), row=1, col=3)
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    return fig


def _frame_traces(frames: dict, t: int, focus: int) -> tuple[list, str]:
    i = int(frames["pixel"][t])
    done = i >= SIDE * SIDE
    p = frames["p_pixel"][t]
    r, c = divmod(i, SIDE)
    bars_y = np.zeros(GRID) if done else np.round(p, 3)
    colours = ["#a0aec0" if done or frames["samples"][k, i] == 0 else "#dd6b20" for k in range(GRID)]
    traces = [
        go.Image(source=frames["uris"][t], hoverinfo="skip"),
        go.Heatmap(z=np.round(frames["beliefs"][t], 3), zmin=0, zmax=1, colorscale=BELIEF_COLOURS,
                   colorbar=dict(title="p", x=COLORBAR_X, xanchor="left", len=0.8, thickness=14),
                   hovertemplate="row %{y}, column %{x}: p(on) = %{z:.2f}<extra></extra>"),
        go.Scatter(x=[] if done else [c], y=[] if done else [r], mode="markers", hoverinfo="skip",
                   marker=dict(symbol="square-open", size=16, color="#38b2ac", line=dict(width=3))),
        go.Bar(x=list(range(1, GRID + 1)), y=bars_y, marker_color=colours, text=[] if done else
               [f"{v:.2f}" for v in bars_y], textposition="outside", textfont=dict(size=11),
               hovertemplate="sample %{x}: p(on) = %{y:.2f}<extra></extra>"),
    ]
    note = ("all 784 pixels drawn" if done else
            f"next: pixel {i} (row {r}, column {c}); sample {focus + 1} draws it with p(on) = {p[focus]:.2f} → "
            f"{'on' if frames['samples'][focus, i] else 'off'}")
    return traces, note


# --- 2. completion ---------------------------------------------------------------------------------------
def completion(nets: list[str]) -> None:
    st.subheader("Completion: keep the top rows, sample the rest")
    st.markdown("Clamp the first rows of a digit and run the same sampler from the first free pixel: every "
                "completion is a sample of p(rest | top rows). The given pixels are copied, never resampled.")
    left, right = st.columns([1, 2], gap="large")
    with left:
        net = choose_net(nets, "pcnn_comp_net")
        x = digit_input.digit("pcnn_comp", "Digit", 7)
    if x is None:
        return
    binary = (x.numpy() > 0.5).astype(np.float32)
    with right:
        _completion_grid(net, binary)


@st.fragment
def _completion_grid(net: str, binary: np.ndarray) -> None:
    c1, c2, c3 = st.columns(3)
    rows = c1.slider("Rows kept", 0, SIDE - 1, widgets.url_int("rows", 0, SIDE - 1, 14), key="pcnn_rows")
    count = c2.select_slider("Completions", [4, 8, 12], value=8, key="pcnn_count")
    seed = int(c3.number_input("Seed", 0, 99_999, widgets.url_int("cseed", 0, 99_999, 0), key="pcnn_comp_seed"))
    widgets.share(rows=rows, cseed=seed)
    with st.spinner(f"Completing {count} times…"):
        out = _complete(_fingerprint(net), net, binary.tobytes(), rows, count, seed)  # (count, 784)
    given = np.arange(SIDE * SIDE) < rows * SIDE
    changed = int((out[:, given] != binary[given]).sum())
    source = rgb_png(tile_rgb(np.concatenate([_tinted(binary[None], given, full=True),
                                              _tinted(binary[None] * given, given)]), cols=1, pad=3,
                              pad_rgb=(1, 1, 1)), scale=5)
    png = rgb_png(tile_rgb(_tinted(out, given), cols=4, pad=3, pad_rgb=(1, 1, 1)), scale=5)
    small, big = st.columns([1, 3], gap="medium")
    with small:
        widgets.image(source, caption="The digit (at 0.5), and what the model is given", width="stretch")
    with big:
        widgets.image(png, caption=f"{count} completions. Blue tint: the given rows, identical in every one.",
                      width="stretch")
    m1, m2 = st.columns(2)
    m1.metric("Given pixels changed", f"{changed} of {int(given.sum()) * count:,}",
              help="Compared pixel by pixel with the digit in every completion.")
    m2.metric("Completions that differ from the digit", f"{int((out != binary).any(1).sum())} of {count}")
    widgets.download_png(png, f"{net}-completion-rows{rows}-seed{seed}.png", key="dl_pcnn_completion")


def _tinted(images: np.ndarray, given: np.ndarray, full: bool = False) -> np.ndarray:
    """Binary images (N, 784) as RGB with the given region tinted blue; the rest white-on-black (full: the
    original digit, its lower part dimmed to show what the model does not see)."""
    rgb = np.repeat(images.astype(np.float32)[..., None], 3, -1)
    tint = np.array([0.25, 0.45, 0.85])
    rgb[:, given] = rgb[:, given] * 0.75 + tint * 0.25 * (1 - rgb[:, given]) + tint * 0.25 * rgb[:, given]
    if full:
        rgb[:, ~given] *= 0.55
    return rgb.reshape(len(images), SIDE, SIDE, 3)


@st.cache_data(show_spinner=False, max_entries=64)
def _complete(fingerprint: str, net: str, digit: bytes, rows: int, count: int, seed: int) -> np.ndarray:
    x = torch.from_numpy(np.frombuffer(digit, dtype=np.float32).copy())[None]
    return api.complete(_model(net), x, rows, per_digit=count, seed=seed)[0].numpy()


# --- 3. receptive field ----------------------------------------------------------------------------------
CATEGORY_RGB = {"later": (1.0, 1.0, 1.0), "earlier": (0.89, 0.91, 0.94), "field": BLUE, "blind": ORANGE,
                "pixel": RED}


def receptive(nets: list[str]) -> None:
    st.subheader("Which earlier pixels does a prediction depend on?")
    st.markdown("Measured on the real network with autograd: the gradient of pixel i's logit (or, at an earlier "
                "layer, of that layer's features at i) with respect to every input pixel, on random binary images. "
                "Non-zero gradient = inside the receptive field. **Click a pixel** on either map (or type it), and "
                "move the layer slider to watch the field grow. A PixelCNN's stacked masks never reach a triangle "
                "above-right of the pixel, its **blind spot**; the gated PixelCNN's vertical stack covers it.")
    st.markdown(":red[■] the pixel  :blue[■] in its receptive field  :orange[■] blind spot (earlier, inside the "
                "field's box, not reached)  :gray[■] other earlier pixels  □ later pixels")
    for key, name, default in (("pcnn_rf_row", "r", 14), ("pcnn_rf_col", "c", 14)):
        st.session_state.setdefault(key, widgets.url_int(name, 0, SIDE - 1, default))
    depth = max(_model(n).config.layers for n in nets)
    c1, c2, c3 = st.columns([1, 1, 3])
    row = int(c1.number_input("Row", 0, SIDE - 1, key="pcnn_rf_row"))
    col = int(c2.number_input("Column", 0, SIDE - 1, key="pcnn_rf_col"))
    layers = c3.slider("Layers", 1, depth, widgets.url_int("layer", 1, depth, depth), key="pcnn_rf_layers",
                       help="The field after the first L masked layers (gated: L gated blocks); the last is the "
                            "whole network, up to the output logit.")
    widgets.share(r=row, c=col, layer=layers)
    for net, column in zip(NETS, st.columns(2, gap="large")):
        with column:
            st.markdown(f"#### {NETS[net][1]}")
            if net not in nets:
                st.info(f"{NETS[net][1]} is not available (see the message above).")
                continue
            _field_panel(net, (row, col), min(layers, _model(net).config.layers))


def _field_panel(net: str, pixel: tuple[int, int], layers: int) -> None:
    field, blind = _field(_fingerprint(net), net, pixel, layers)
    key = f"pcnn_rf_pad_{net}"
    st.plotly_chart(field_figure(field, blind, pixel), key=key, on_select=lambda: _pick(key), selection_mode="points",
                    config={"displayModeBar": False})
    earlier = pixel[0] * SIDE + pixel[1]
    m1, m2 = st.columns([3, 2])
    m1.metric("Pixels in the field", f"{int(field.sum())} of {earlier}", help=f"Of the {earlier} pixels before "
              "this one in raster order, how many its prediction depends on.")
    m2.metric("Blind spot", f"{int(blind.sum())} pixels")
    model = _model(net)
    st.caption(f"After {layers} of {model.config.layers} {'gated blocks' if net == 'gated' else 'masked layers'} "
               f"({model.config.first_kernel}×{model.config.first_kernel} first, then {model.config.kernel}×"
               f"{model.config.kernel}), at pixel (row {pixel[0]}, column {pixel[1]}).")


@st.cache_data(show_spinner="Measuring the receptive field with autograd…", max_entries=256)
def _field(fingerprint: str, net: str, pixel: tuple[int, int], layers: int) -> tuple[np.ndarray, np.ndarray]:
    model = _model(net)
    full = None if layers >= model.config.layers else layers
    field = api.receptive_field(model, pixel, layers=full)
    return field.numpy(), api.blind_spot(field, pixel).numpy()


def field_categories(field: np.ndarray, blind: np.ndarray, pixel: tuple[int, int]) -> np.ndarray:
    """Per pixel (H, W) one of later / earlier / field / blind / pixel."""
    index = np.arange(SIDE * SIDE).reshape(SIDE, SIDE)
    i = pixel[0] * SIDE + pixel[1]
    out = np.where(index < i, "earlier", "later").astype(object)
    out[field] = "field"
    out[blind] = "blind"
    out[pixel] = "pixel"
    return out


def field_figure(field: np.ndarray, blind: np.ndarray, pixel: tuple[int, int]) -> go.Figure:
    """784 clickable squares coloured by category (plotly points, so a click selects a pixel)."""
    cats = field_categories(field, blind, pixel).reshape(-1)
    rows, cols = np.divmod(np.arange(SIDE * SIDE), SIDE)
    colours = ["rgb({:.0f},{:.0f},{:.0f})".format(*(255 * np.array(CATEGORY_RGB[k]))) for k in cats]
    fig = go.Figure(go.Scatter(
        x=cols, y=rows, mode="markers", customdata=cats,
        marker=dict(symbol="square", size=14, color=colours, line=dict(width=0.6, color="#a0aec0")),
        hovertemplate="row %{y}, column %{x}: %{customdata}<extra></extra>",
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1))))
    axis = dict(showgrid=False, zeroline=False, showticklabels=True, tickfont=dict(size=12), dtick=7)
    fig.update_layout(height=450, margin=dict(l=30, r=10, t=10, b=10), plot_bgcolor="white", showlegend=False,
                      clickmode="event+select", dragmode=False,
                      xaxis={**axis, "range": [-0.7, SIDE - 0.3], "side": "top", "constrain": "domain"},
                      yaxis={**axis, "range": [SIDE - 0.3, -0.7], "scaleanchor": "x", "constrain": "domain"})
    return fig


def _pick(key: str) -> None:
    """A clicked square becomes the pixel (both number inputs)."""
    selection = st.session_state[key].selection or {}
    picked = digit_input.cells(selection)
    if picked:
        st.session_state["pcnn_rf_row"], st.session_state["pcnn_rf_col"] = divmod(picked[-1], SIDE)


# --- 4. masks and the two stacks -------------------------------------------------------------------------
def masks(nets: list[str]) -> None:
    st.subheader("Masked convolutions, and the two stacks")
    st.markdown("A masked convolution multiplies its kernel by a fixed 0/1 mask so that the output at pixel i "
                "reads only pixels before i. **Type A** (first layer) hides the centre: the prediction of xᵢ must "
                "not see xᵢ. **Type B** (every later layer) keeps the centre, which by then holds features of "
                "pixels before i only. The kernels below are the masks held by the bundled networks.")
    for net in nets:
        model, cfg = _model(net), _model(net).config
        st.markdown(f"#### {NETS[net][1]}")
        left, right = st.columns([3, 2], gap="large")
        kernels = api.kernel_masks(model)[:2 if net == "pixelcnn" else 4]
        with left:
            for pair in (kernels[:2], kernels[2:]):
                for (label, mask), column in zip(pair, st.columns(2)):
                    with column:
                        widgets.image(kernel_png(mask), caption=f"{label}: {mask.shape[0]}×{mask.shape[1]}, "
                                      f"{int(mask.sum())} taps", width="content")
            if net == "pixelcnn":
                st.markdown(f"{cfg.layers - 1} type-B {cfg.kernel}×{cfg.kernel} layers follow the first, each added "
                            "to a residual stream (h ← h + B(relu(h))), then a 1×1 head gives one Bernoulli logit per "
                            "pixel. Stacking these masks grows the field up and to the left, but never reaches the "
                            "triangle above-right of the pixel: the blind spot (see Receptive field).")
            else:
                st.markdown("Two stacks per block. The **vertical stack** sees the rows above through a k×k mask; the "
                            "**horizontal stack** sees the current row to the left through a 1×k mask; the vertical "
                            "stack's output, **shifted down one row**, is added into the horizontal one by a 1×1 "
                            "link. Both go through a gate, tanh(·) ⊙ σ(·). Together they see every earlier pixel "
                            "within the field: no blind spot.")
                st.info("Note on the vertical mask drawn above: it includes the pixel's **own row** (all columns), "
                        "which would let row r see pixels to the right of i. It is correct only because its output "
                        "is shifted down one row before it reaches the horizontal stack: row r then receives what "
                        "the vertical stack computed for row r − 1, which saw rows ≤ r − 1 only.", icon=":material/info:")
        with right:
            dot = (PIXELCNN_DOT.format(k0=cfg.first_kernel, k=cfg.kernel, n=cfg.layers - 1, c=cfg.channels)
                   if net == "pixelcnn" else GATED_DOT.format(k0=cfg.first_kernel, k=cfg.kernel, n=cfg.layers,
                                                              c=cfg.channels))
            st.graphviz_chart(dot, width="content")


def kernel_png(mask: np.ndarray, cell: int = 22, frame: int = 7) -> bytes:
    """A 0/1 mask as a picture: blue taps, white hidden ones, grey grid lines, the centre outlined red; drawn
    centred on a white frame x frame canvas, so that every kernel is drawn at the same scale."""
    kh, kw = mask.shape
    rgb = np.where(mask[..., None] > 0, np.array(BLUE), np.ones(3))
    big = np.repeat(np.repeat(rgb, cell, 0), cell, 1)
    big[::cell] = big[:, ::cell] = 0.6
    big[-1] = big[:, -1] = 0.6
    cy, cx = kh // 2 * cell, kw // 2 * cell
    for t in range(2):
        big[cy + t, cx:cx + cell] = big[cy + cell - 1 - t, cx:cx + cell] = RED
        big[cy:cy + cell, cx + t] = big[cy:cy + cell, cx + cell - 1 - t] = RED
    side = max(frame, kh, kw) * cell
    canvas = np.ones((side, side, 3))
    top, left = (side - big.shape[0]) // 2, (side - big.shape[1]) // 2
    canvas[top:top + big.shape[0], left:left + big.shape[1]] = big
    return rgb_png(canvas, scale=1)


PIXELCNN_DOT = """digraph {{ rankdir=TB; node [shape=box, style="rounded,filled", fillcolor="#ebf4ff", fontsize=16];
x [label="x (28×28, binary)", fillcolor="#f7fafc"];
a [label="{k0}×{k0} masked conv, type A\\n1 → {c} channels"];
b [label="{n} × residual block\\nh + {k}×{k} masked conv B (relu h)"];
h [label="relu → 1×1 → relu → 1×1"];
p [label="σ → p(xᵢ = 1 | x<ᵢ)\\nfor all 784 pixels at once", fillcolor="#fefcbf"];
x -> a -> b -> h -> p }}"""

GATED_DOT = """digraph {{ rankdir=TB; nodesep=0.25; ranksep=0.3;
node [shape=box, style="rounded,filled", fillcolor="#ebf4ff", fontsize=15, width=2.1];
x [label="x (28×28, binary)", fillcolor="#f7fafc"];
v [label="vertical stack\n{k0}×{k0} conv, rows ≤ r", fillcolor="#e6fffa"];
hz [label="horizontal stack\n1×{k0} conv, columns < c"];
s [label="shift down one row\n→ 1×1 link", fillcolor="#e6fffa"];
plus [label="+", shape=circle, width=0.4];
g [label="gate tanh(·) ⊙ σ(·) → 1×1\n(+ residual from block 2)"];
o [label="{n} blocks in all ({k}×{k} and 1×{k} after\nthe first), {c} channels → 1×1 head\n→ p(xᵢ = 1 | x<ᵢ)",
   fillcolor="#fefcbf", width=3.2];
{{rank=same; v; hz}}
x -> v; x -> hz; v -> s -> plus; hz -> plus -> g -> o }}"""


# --- 5. fast sampling -----------------------------------------------------------------------------------
def speed(nets: list[str]) -> None:
    st.subheader("Fast sampling: the exact cached sampler against the naive one")
    st.markdown("The naive sampler runs the whole network on the whole image for every one of the 784 pixels. "
                "The cached one keeps every layer's activations and computes each layer **only at the new "
                "pixel** (the gated net's vertical stack once per row): the same arithmetic for that pixel, so "
                "the same uniforms u give the same samples (xᵢ = 1 when uᵢ < p(xᵢ = 1 | x<ᵢ)).")
    c1, c2, c3 = st.columns([2, 2, 2], vertical_alignment="bottom")
    with c1:
        net = choose_net(nets, "pcnn_speed_net")
    with c2:
        naive_pixels = st.select_slider("Naive sampler runs the first … pixels", [14, 28, 56, 112], value=14,
                                        key="pcnn_naive_pixels",
                                        help="Every naive step is the same full forward pass over the whole image, "
                                             "so its whole-image time is scaled from these pixels (all 784 would take "
                                             "minutes here).")
    with c3:
        go_ = st.button("Time both samplers on a 4×4 grid", type="primary", key="pcnn_time", icon=":material/timer:")
    if go_:
        with st.spinner("Timing: the cached sampler draws all 16 digits, then the naive one its pixels…"):
            result = api.compare_samplers(_model(net), GRID, seed=0, naive_pixels=naive_pixels)
            st.session_state["pcnn_speed"] = (net, result, _speed_pictures(result))
    held = st.session_state.get("pcnn_speed")
    if not held or held[0] != net:
        st.info("Press the button: both samplers run here, now, on this server, from the same uniforms (seed 0).")
        return
    _, r, png = held
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Cached: 16 whole digits", f"{r['cached_s']:.2f} s")
    m2.metric("Naive: 16 whole digits", f"{r['naive_s']:.1f} s",
              "scaled from the pixels it ran" if r["naive_scaled"] else "run in full", delta_color="off",
              delta_arrow="off")
    m3.metric("Speed-up", f"{r['ratio']:.0f}×")
    m4.metric("Samples", "identical" if r["identical"] else "DIFFER",
              f"over the {r['naive_measured_pixels']} pixels both drew", delta_color="off", delta_arrow="off")
    widgets.image(png, caption=f"Left: the cached sampler's 16 digits. Right: the naive sampler's, from the same "
                  f"uniforms, over the first {r['naive_measured_pixels']} pixels (slate: not run). Largest logit "
                  f"difference {r['max_logit_difference']:.1e}.", width="stretch")
    st.caption("One process on this server's CPU; other work on the machine slows both. `bench/ar_sampling.py` "
               "times the same comparison on one thread, and the engine's tests check that both samplers draw "
               "identical whole images from the same uniforms.")


def _speed_pictures(result: dict) -> bytes:
    """The cached sampler's 16 digits beside the naive sampler's (slate where it did not run)."""
    cached, naive = result["samples_cached"].numpy(), result["samples_naive"].numpy()
    drawn = np.arange(cached.shape[1]) < result["naive_measured_pixels"]
    left = tile_rgb(canvas_rgb(cached, np.ones(cached.shape[1], bool)), cols=4, pad_rgb=GREY)
    right = tile_rgb(canvas_rgb(naive, drawn), cols=4, pad_rgb=GREY)
    gap = np.ones((left.shape[0], 12, 3))
    return rgb_png(np.concatenate([left, gap, right], 1), scale=4)


# --- 6. test NLL -----------------------------------------------------------------------------------------
def nll(nets: list[str]) -> None:
    st.subheader("Test negative log-likelihood, exact")
    st.latex(r"-\log p(x)=-\sum_{i=1}^{784}\log p(x_i\mid x_{<i})\ \text{nats},\qquad "
             r"\text{bits/dim}=\frac{-\log p(x)}{784\,\ln 2}")
    rows = []
    for net in NETS:
        name, label = NETS[net]
        test = bundled_metrics(name).get("test_nll") if net in nets else None
        if not test:
            if net in nets:
                st.warning(f"{label} has no measured test NLL yet (`python -m engine eval assets/checkpoints/{name}`).")
            continue
        tr = bundled_metrics(name).get("training", {})
        rows.append({"model": f"{label} (ours)", "nats": round(test["nats"], 2), "± stderr": round(test["stderr"], 2),
                     "bits/dim": round(test["bits_per_dim"], 4), "test digits": test["images"],
                     "training": f"{tr.get('steps', '?')} steps, {tr.get('epochs', '?')} epochs, "
                                 f"{tr.get('seconds', 0) / 60:.0f} min on {tr.get('device', '?')}"})
    if not rows:
        return
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.plotly_chart(_nll_bars(rows), key="pcnn_nll_bars")
    with right:
        for row in rows:
            st.metric(f"{row['model']}: test NLL", f"{row['nats']:.2f} nats",
                      f"{row['bits/dim']:.4f} bits/dim", delta_color="off", delta_arrow="off")
        st.markdown(f"- Paper: **PixelCNN 81.30 nats** (van den Oord et al. 2016, Table 4; fixed binarization, "
                    f"GPU-scale training). The gated PixelCNN paper gives no MNIST number.\n"
                    f"- All-zero logits (p = ½ everywhere): 784 ln 2 = {UNIFORM_NATS:.1f} nats.\n- {BINARIZE_NOTE}")
    st.dataframe(rows, hide_index=True)
    widgets.download_csv(rows, "pixelcnn-test-nll.csv", key="dl_pcnn_nll")


def _nll_bars(rows: list[dict]) -> go.Figure:
    names = [r["model"] for r in rows] + ["PixelCNN (paper)", "p = ½ everywhere"]
    values = [r["nats"] for r in rows] + [PAPER_NATS, round(UNIFORM_NATS, 1)]
    colours = ["#2b6cb0"] * len(rows) + ["#a0aec0", "#e2e8f0"]
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", marker_color=colours, text=[f"{v:.1f}" for v in values],
                           textposition="outside", cliponaxis=False))
    fig.update_layout(height=80 + 70 * len(names), margin=dict(l=10, r=60, t=30, b=10), font=plots.FONT,
                      xaxis=dict(title="test NLL, nats per image (lower is better)", range=[0, 640],
                                 gridcolor="#e2e8f0"),
                      yaxis=dict(autorange="reversed", tickfont=dict(size=17)))
    return fig
