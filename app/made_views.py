"""The NADE and MADE page's views: the chain rule on one digit, MADE's masks, mask ensembles, sampling pixel
by pixel (frames played by the browser), training a MADE live, and the exact test NLLs. Model math lives in
engine.models.made / nade and engine.made_analysis; this file only arranges and draws it."""
from __future__ import annotations

import io
import math
import uuid
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from plotly.subplots import make_subplots

from app import digit_input, jobs, plots, raster, widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names, mnist_test
from engine import api

BUNDLED = {"made": "made-mnist", "nade": "nade-mnist", "ensemble": "made-ensemble-mnist"}
LABELS = {"made": "MADE (bundled)", "nade": "NADE (bundled)", "ensemble": "MADE, 8 masks (bundled)",
          "yours": "Your MADE"}
TRAIN_CMD = {"made": "`make train-made` (a few minutes on 2 CPU cores)",
             "nade": "`make train-nade` (about 20 min on 2 CPU cores)",
             "ensemble": "`make train-made` (a few minutes more)"}
PAPER = {"made": ("MADE, 1 hidden layer, 32-mask ensemble (Germain et al. 2015)", 88.04),
         "nade": ("NADE, 500 hidden units (Larochelle & Murray 2011)", 88.33)}
SHAPE, D, TARGET = (28, 28), 784, 92.0
JOB = "made-train"
PROB_SCALE = "Viridis"
BINARIZATION = ("the MNIST test split binarized once with seed 0 (the app's own; the papers used the fixed "
                "binarized-MNIST file of Larochelle & Murray, which is not available here, so compare with "
                "them only roughly)")


@dataclass(frozen=True)
class Source:
    key: str  # "made", "nade" or "yours"
    fingerprint: str

    @property
    def model(self):
        return user_job().result if self.key == "yours" else bundled_model(BUNDLED[self.key])

    @property
    def label(self) -> str:
        return LABELS[self.key]


def user_job() -> jobs.Job | None:
    """This session's finished training job with a model, if any."""
    job = jobs.get(JOB)
    return job if job is not None and not job.running and job.result is not None else None


def sources(*, quiet: bool = False) -> dict[str, Source]:
    """The models that load: bundled MADE and NADE, and the MADE trained on this page; a missing or corrupt
    bundled checkpoint gives a message (unless quiet)."""
    out = {}
    for key, name in BUNDLED.items():
        if name not in bundled_names("nade" if key == "nade" else "made"):
            if not quiet:
                (st.error if key == "made" else st.info)(
                    f"The bundled {LABELS[key].removesuffix(' (bundled)')} checkpoint {name!r} is missing from assets/checkpoints; "
                    f"{TRAIN_CMD[key]} trains it." + (" Until then, train a MADE in the Train view." if key == "made"
                                                       else ""))
            continue
        try:
            bundled_model(name)
        except api.CheckpointError as e:
            if not quiet:
                st.error(f"The bundled {LABELS[key].removesuffix(' (bundled)')} checkpoint {name!r} cannot be loaded and is left out: {e}")
            continue
        out[key] = Source(key, bundled_fingerprint(name))
    if user_job() is not None:
        out["yours"] = Source("yours", user_job().meta["id"])
    return out


def pick(available: dict[str, Source], key: str) -> Source | None:
    """A model chooser (shared by URL as ?model=...); None (with a message) when no model is available."""
    if not available:
        st.warning("No model to show: train a MADE in the Train view, or install the bundled checkpoints.")
        return None
    keys = list(available)
    choice = st.radio("Model", keys, format_func=LABELS.get, horizontal=True, key=key,
                      index=keys.index(widgets.url_choice("model", keys, keys[0])))
    widgets.share(model=choice)
    return available[choice]


def describe(model) -> str:
    cfg = model.config
    if model.model_type == "nade":
        return f"NADE {D}-{cfg.hidden}-{D}, {cfg.ordering} ordering"
    sizes = "-".join(map(str, (D, *cfg.hidden, D)))
    order = cfg.ordering + (f" (seed {cfg.order_seed})" if cfg.ordering == "random" else "")
    return (f"MADE {sizes}{' + direct' if cfg.direct else ''}, {order} ordering"
            + (f", {cfg.n_masks} masks" if cfg.n_masks > 1 else ""))


def _square(fig: go.Figure, height: int) -> go.Figure:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                     scaleanchor="x", constrain="domain")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10), font=plots.FONT,
                      plot_bgcolor="#cbd5e0")
    return fig


# --- 1. the chain rule ---------------------------------------------------------------------------------------
def chain() -> None:
    st.subheader("The chain rule, one pixel at a time")
    st.markdown("Any distribution over 784 pixels factorizes exactly as a product of conditionals, once an "
                "**ordering** is fixed. An autoregressive model learns each conditional p(xᵢ = 1 | x₍<ᵢ₎) and gets "
                "the exact log-likelihood of an image as a sum of 784 terms. Here is that sum for one digit.")
    st.latex(r"-\log p(x)=\sum_{i=1}^{784}-\log p\big(x_{o_i}\mid x_{o_1},\dots,x_{o_{i-1}}\big)")
    available = sources()
    c1, c2 = st.columns([1, 2], gap="large")
    with c1:
        source = pick(available, "made_chain_model")
        x = _binary_digit("made_chain")
    if source is None or x is None:
        return
    terms = api.made_chain_terms(source.model, x)
    with c2:
        st.plotly_chart(_chain_figure(x, terms), key="made_chain_maps")
    m1, m2, m3 = st.columns(3)
    m1.metric("−log p(x)", f"{terms['total']:.1f} nats")
    m2.metric("bits/dim", f"{terms['bits_per_dim']:.4f}")
    m3.metric("Costliest pixel", f"{float(terms['nats'].max()):.1f} nats")
    st.plotly_chart(_cumulative_figure(available, x), key="made_chain_curve")
    st.markdown("**Why the ordering matters.** The chain rule is exact in every ordering, but a model must learn "
                "different conditionals for each: in raster order the first rows are background and cost almost "
                "nothing, and the bill arrives at the stroke edges, where the rows above only hint at the ink. "
                "A model that is good at one ordering's conditionals is not at another's. Train a MADE with a "
                "random ordering in the Train view: it appears here beside the bundled model on the same digit.")


def _binary_digit(key: str) -> torch.Tensor | None:
    """A binary digit (784,): a test digit with the app's seeded test binarization (so its NLL is the one in
    the test NLL), or an upload or drawing thresholded at 1/2."""
    grey = digit_input.digit(key, "Digit", widgets.url_int("digit", 0, 9_999, 0))
    if grey is None:
        return None
    if st.session_state.get(f"{key}_src") == "test digit":
        index = int(st.session_state[f"{key}_idx"])
        widgets.share(digit=index)
        return mnist_test()[2][index]
    st.caption("Uploads and drawings are binarized at grey level 1/2.")
    return (grey > 0.5).float()


def _chain_figure(x: torch.Tensor, terms: dict) -> go.Figure:
    maps = [x.reshape(SHAPE), terms["p_on"].reshape(SHAPE), terms["nats"].reshape(SHAPE)]
    titles = ["the binary digit x", "p(xᵢ = 1 | x₍<ᵢ₎)", "cost −log p(xᵢ | x₍<ᵢ₎), nats"]
    fig = make_subplots(1, 3, subplot_titles=titles, horizontal_spacing=0.06)
    scales = [("gray", 0, 1, None), (PROB_SCALE, 0, 1, 0.645), ("Reds", 0, max(3.0, float(maps[2].max())), 1.0)]
    for i, (m, (scale, lo, hi, bar)) in enumerate(zip(maps, scales)):
        fig.add_trace(go.Heatmap(z=plots.to_numpy(m), zmin=lo, zmax=hi, colorscale=scale, showscale=bar is not None,
                                 colorbar=dict(x=bar, len=0.8, thickness=12) if bar else None,
                                 hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>"), 1, i + 1)
    return _square(fig, 360)


def _cumulative_figure(available: dict[str, Source], x: torch.Tensor) -> go.Figure:
    fig = go.Figure()
    for source in available.values():
        terms = api.made_chain_terms(source.model, x)
        fig.add_trace(go.Scatter(x=np.arange(1, D + 1), y=terms["cumulative"].numpy(), mode="lines", line=dict(width=3),
                                 name=f"{source.label}: {describe(source.model)} ({terms['total']:.1f} nats)"))
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=30, b=10), font=plots.FONT,
                      xaxis_title="pixels drawn, in the model's ordering", yaxis_title="running −log p (nats)",
                      legend=dict(orientation="h", y=1.2, font=dict(size=15)))
    return fig


# --- 2. masks ---------------------------------------------------------------------------------------------
SMALL_SIDE, SMALL_HIDDEN = (2, 4), (10, 10)
SMALL_D = SMALL_SIDE[0] * SMALL_SIDE[1]


def masks() -> None:
    st.subheader("MADE's masks: an autoencoder that cannot cheat")
    st.markdown("Every unit gets a **degree** m(k): input pixel d has its position in the ordering; a hidden unit "
                "a random number from the previous layer's smallest degree to D − 1. A connection into a hidden "
                "unit is kept when m(k) ≥ m(k′); into output d when m(d) > m(k). Multiplying the masks gives which "
                "inputs each output can reach: in the ordering, a strictly lower-triangular matrix, so output d "
                "is a function of the pixels before d only — p(x_d | x₍<d₎).")
    st.latex(r"M^{W^l}_{k,k'}=\mathbb 1\big[m^l(k)\ge m^{l-1}(k')\big]\qquad "
             r"M^{V}_{d,k}=\mathbb 1\big[m^0(d)>m^L(k)\big]")
    st.latex(r"h^l=\mathrm{ReLU}\big(b^l+(W^l\odot M^{W^l})\,h^{l-1}\big)\qquad "
             r"p(x_d=1\mid x_{<d})=\sigma\big(c_d+(V\odot M^V)_{d,\cdot}\,h^L\big)")
    ordering, order_seed, mask_seed = _mask_controls()
    st.markdown(f"**A small MADE, {SMALL_D}-{SMALL_HIDDEN[0]}-{SMALL_HIDDEN[1]}-{SMALL_D}** (the real one is "
                f"784-500-784: too wide to draw unit by unit; it follows below). Numbers are degrees.")
    small = api.made_connectivity_summary(SMALL_D, SMALL_HIDDEN, ordering=ordering, order_seed=order_seed,
                                          mask_seed=mask_seed)
    c1, c2 = st.columns([3, 2], gap="large")
    with c1:
        st.plotly_chart(_network_figure(small), key="made_network")
    with c2:
        st.plotly_chart(_dependency_figure(small), key="made_small_dependency")
    st.plotly_chart(_mask_matrices_figure(small), key="made_mask_matrices")
    _real_masks(ordering, order_seed, mask_seed)


def _mask_controls() -> tuple[str, int, int]:
    orderings = ["natural", "random"]
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    ordering = c1.radio("Ordering", orderings, horizontal=True, key="made_ordering",
                        index=orderings.index(widgets.url_choice("ordering", orderings, "natural")))
    order_seed = int(c2.number_input("Ordering seed", 0, 9_999, widgets.url_int("oseed", 0, 9_999, 0),
                                     key="made_order_seed", disabled=ordering == "natural"))
    if "made_mask_seed" not in st.session_state:
        st.session_state["made_mask_seed"] = widgets.url_int("mseed", 0, 9_999, 0)
    mask_seed = int(c3.number_input("Connectivity seed", 0, 9_999, key="made_mask_seed"))
    c4.button("Resample", key="made_resample", icon=":material/casino:", help="Draw new hidden degrees "
              "(connectivity seed + 1)", on_click=lambda: st.session_state
              .update(made_mask_seed=(st.session_state["made_mask_seed"] + 1) % 10_000))
    widgets.share(ordering=ordering, oseed=order_seed, mseed=mask_seed)
    return ordering, order_seed, mask_seed


def _network_figure(s: dict) -> go.Figure:
    """Inputs at the bottom, outputs at the top (as in Germain et al.'s Figure 1): kept connections as lines."""
    degrees = [d.numpy() for d in s["degrees"]] + [s["degrees"][0].numpy()]
    xs = [np.linspace(0, 1, len(d)) if len(d) > 1 else np.array([0.5]) for d in degrees]
    fig = go.Figure()
    for layer, mask in enumerate(s["masks"]):
        rows, cols = np.nonzero(mask.numpy())  # (out, in)
        ex, ey = [], []
        for r, c in zip(rows, cols):
            ex += [xs[layer][c], xs[layer + 1][r], None]
            ey += [layer, layer + 1, None]
        fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color="#718096", width=1.2), hoverinfo="skip",
                                 showlegend=False))
    names = ["input x (degree = position in the ordering)", "hidden layer 1", "hidden layer 2",
             "output p(x_d = 1 | x<d)"]
    top = len(degrees) - 1
    for layer, (d, x) in enumerate(zip(degrees, xs)):
        text = [f"{v}" for v in d]
        pixels = layer in (0, top)
        fig.add_trace(go.Scatter(
            x=x, y=np.full(len(d), layer), mode="markers+text", text=text, textfont=dict(color="#1a202c", size=15),
            marker=dict(size=30, color="#fbd38d" if pixels else "#bee3f8", line=dict(color="#1a202c", width=1),
                        symbol="square" if pixels else "circle"),
            name=names[layer], showlegend=False,
            hovertemplate=f"{names[layer]}<br>degree %{{text}}<extra></extra>"))
        fig.add_annotation(x=-0.04, y=layer, text=names[layer].split(" (")[0], showarrow=False, xanchor="right",
                           font=dict(size=14))
    pixel_labels = [f"x{d + 1}" for d in range(SMALL_D)]
    for layer in (0, top):
        for x, label in zip(xs[layer], pixel_labels):
            fig.add_annotation(x=x, y=layer + (-0.33 if layer == 0 else 0.33), text=label, showarrow=False,
                               font=dict(size=13))
    fig.update_xaxes(visible=False, range=[-0.42, 1.05])
    fig.update_yaxes(visible=False, range=[-0.6, top + 0.6])
    fig.update_layout(height=460, margin=dict(l=5, r=5, t=10, b=5), font=plots.FONT, plot_bgcolor="white")
    return fig


def _binary_heatmap(m, x_labels, y_labels, **kw) -> go.Heatmap:
    return go.Heatmap(z=plots.to_numpy(m).astype(float), x=x_labels, y=y_labels, zmin=0, zmax=1, showscale=False,
                      colorscale=[[0, "#ffffff"], [1, "#2b6cb0"]], xgap=1, ygap=1,
                      hovertemplate="%{y} ← %{x}: %{z}<extra></extra>", **kw)


def _dependency_figure(s: dict) -> go.Figure:
    order = s["order"].tolist()
    labels = [f"x{d + 1}" for d in order]
    fig = go.Figure(_binary_heatmap(s["in_order"], labels, labels))
    fig.update_layout(title=dict(text=f"Product of the masks, in the ordering<br><sup>output (row) ← input (column): "
                                      f"{s['connected']} of {s['allowed']} allowed pairs</sup>", font=dict(size=16)),
                      height=460, margin=dict(l=10, r=10, t=80, b=10), font=plots.FONT)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", type="category")
    fig.update_xaxes(type="category", side="bottom")
    return fig


def _mask_matrices_figure(s: dict) -> go.Figure:
    h1, h2 = SMALL_HIDDEN
    m = s["masks"]
    pixels = [f"x{d + 1}" for d in range(SMALL_D)]
    units = [[f"h1.{k + 1} ({int(v)})" for k, v in enumerate(s["degrees"][1])],
             [f"h2.{k + 1} ({int(v)})" for k, v in enumerate(s["degrees"][2])]]
    inputs = [f"x{d + 1} ({int(v)})" for d, v in enumerate(s["degrees"][0])]
    titles = [f"M¹ ({h1}×{SMALL_D}): hidden 1 ← input", f"M² ({h2}×{h1}): hidden 2 ← hidden 1",
              f"Mⱽ ({SMALL_D}×{h2}): output ← hidden 2", f"product ({SMALL_D}×{SMALL_D}), by pixel"]
    fig = make_subplots(1, 4, subplot_titles=titles, horizontal_spacing=0.07)
    panels = [(m[0], inputs, units[0]), (m[1], units[0], units[1]), (m[2], units[1], pixels),
              (s["dependency"], pixels, pixels)]
    for i, (mask, xl, yl) in enumerate(panels):
        fig.add_trace(_binary_heatmap(mask, xl, yl), 1, i + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=60, b=10), font=plots.FONT)
    fig.update_annotations(font_size=15)
    return fig


def _real_masks(ordering: str, order_seed: int, mask_seed: int) -> None:
    st.markdown("**The real size, 784-500-784**, with the same ordering and connectivity seed.")
    real = _real_connectivity(ordering, order_seed, mask_seed)
    own = ""
    if "made" in sources(quiet=True):
        cfg = bundled_model(BUNDLED["made"]).config
        matches = (cfg.hidden == (500,) and cfg.ordering == ordering and cfg.mask_seed == mask_seed
                   and (ordering == "natural" or cfg.order_seed == order_seed))
        own = ("These are exactly the bundled MADE's masks." if matches else
               f"The bundled MADE was trained with a {cfg.ordering} ordering and connectivity seed {cfg.mask_seed}; "
               "these settings show the masks another MADE of its size would have.")
        if cfg.direct:
            own += (" The bundled MADE also has Germain et al.'s direct input → output connection, whose mask is the "
                    "whole lower triangle, so through it every output sees every earlier input; the picture shows the "
                    "paths through the hidden layer, which the connectivity seed decides.")
    c1, c2 = st.columns([1, 1], gap="large")
    with c1:
        widgets.image(real["png"], width="stretch",
                      caption=f"Output (row) ← input (column), both in the ordering: {real['connected']:,} of the "
                      f"{real['allowed']:,} allowed pairs ({100 * real['connected'] / real['allowed']:.2f}%) are "
                      "connected; the empty upper triangle is what makes it autoregressive.")
        st.caption(own)
    with c2:
        _pixel_picker(real, ordering, order_seed)
    st.plotly_chart(_degree_histogram(real["hidden_degrees"]), key="made_degrees")


@st.cache_resource(show_spinner="Drawing the 784-500-784 masks…", max_entries=16)
def _real_connectivity(ordering: str, order_seed: int, mask_seed: int) -> dict:
    """Read-only: the dependency of a 784-500-784 MADE in sampling order (PNG), by pixel (bool), counts."""
    s = api.made_connectivity_summary(D, (500,), ordering=ordering, order_seed=order_seed, mask_seed=mask_seed)
    image = 1.0 - s["in_order"].float().numpy()  # dependent pairs dark
    return {"png": plots.png(image, scale=1), "dependency": s["dependency"], "order": s["order"],
            "allowed": s["allowed"], "connected": s["connected"], "hidden_degrees": s["degrees"][1].numpy()}


@st.fragment
def _pixel_picker(real: dict, ordering: str, order_seed: int) -> None:
    """Which inputs one output pixel sees, as a 28x28 picture; its sliders rerun only this fragment."""
    a, b = st.columns(2)
    row = a.slider("Output pixel: row", 0, 27, widgets.url_int("row", 0, 27, 14), key="made_row")
    col = b.slider("column", 0, 27, widgets.url_int("col", 0, 27, 14), key="made_col")
    widgets.share(row=row, col=col)
    pixel = row * 28 + col
    seen = api.made_dependency_map(real["dependency"], real["order"], pixel).numpy().reshape(SHAPE)
    colours = np.array([[226, 232, 240], [237, 137, 54], [43, 108, 176], [197, 48, 48]], dtype=np.uint8)
    widgets.image(_rgb_png(colours[seen], scale=12), width="stretch",
                  caption=f"What output ({row}, {col}) sees: blue, the {int((seen == 2).sum())} inputs it depends on; "
                  f"orange, {int((seen == 1).sum())} earlier inputs no hidden unit connects to it; light grey, later "
                  "inputs; red, the pixel itself.")


def _rgb_png(rgb: np.ndarray, *, scale: int) -> bytes:
    import io

    from PIL import Image
    pil = Image.fromarray(rgb, mode="RGB")
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def _degree_histogram(degrees: np.ndarray) -> go.Figure:
    fig = go.Figure(go.Histogram(x=degrees, xbins=dict(start=0.5, end=784.5, size=28), marker_color="#2b6cb0"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=40, b=10), font=plots.FONT, bargap=0.05,
                      title=dict(text="Degrees m(k) of the 500 hidden units (uniform on 1..783)", font=dict(size=16)),
                      xaxis_title="degree (how many pixels of the ordering a unit may see)", yaxis_title="units")
    return fig


# --- 3. mask ensembles ------------------------------------------------------------------------------------
def ensemble_sources() -> dict[str, Source]:
    """The MADEs trained with several masks (connectivity-agnostic training): only they have an ensemble."""
    return {k: s for k, s in sources(quiet=True).items()
            if s.model.model_type == "made" and s.model.config.n_masks > 1}


def ensemble() -> None:
    st.subheader("Mask ensembles: one network, many connectivities")
    st.markdown("Trained with a different mask at every step, one MADE holds K autoregressive models that share "
                "their weights. The ensemble is their **mixture**, the average of the joint probabilities, so its "
                "NLL is exact and never worse than the average member's.")
    st.latex(r"p_{\text{ens}}(x)=\frac1K\sum_{k=1}^{K}p_k(x),\qquad "
             r"-\log p_{\text{ens}}(x)=-\operatorname*{logmeanexp}_k\,\log p_k(x)")
    source = pick(ensemble_sources(), "made_ensemble_model")
    if source is None:
        return
    curve = _ensemble_curve(source)
    c1, c2 = st.columns([3, 2], gap="large")
    with c1:
        st.plotly_chart(_ensemble_figure(curve), key="made_ensemble_curve")
    with c2:
        best = curve["nats"][-1]
        st.metric(f"Mixture of all {len(curve['masks'])} masks", f"{best:.2f} nats",
                  f"{best - curve['nats'][0]:+.2f} against mask 1 alone", delta_color="inverse", delta_arrow="off")
        st.caption(f"{describe(source.model)}; exact NLL on {BINARIZATION}. {PAPER['made'][0]}: "
                   f"{PAPER['made'][1]} nats with 32 masks.")
        widgets.download_json(curve, "made-mask-ensemble.json", key="dl_made_ensemble")
    _averaged_logits_note()


def _ensemble_curve(source: Source) -> dict:
    if source.key != "yours":
        curve = bundled_metrics(BUNDLED[source.key]).get("test_nll", {}).get("mask_ensemble")
        if curve:
            return curve
    return _measured_curve(source.fingerprint, source.model)


@st.cache_data(show_spinner="Scoring the test set under every mask…", max_entries=4)
def _measured_curve(fingerprint: str, _model) -> dict:
    result = api.evaluate_autoregressive(_model)["test_nll"]
    return result["mask_ensemble"]


def _ensemble_figure(curve: dict) -> go.Figure:
    fig = go.Figure(go.Scatter(x=curve["masks"], y=curve["nats"], mode="lines+markers", line=dict(width=3),
                               marker=dict(size=10), name="mixture of masks 1..K (exact test NLL)"))
    fig.add_hline(y=PAPER["made"][1], line_dash="dash", line_color="#718096",
                  annotation_text=f"paper, 32 masks: {PAPER['made'][1]}", annotation_position="top right")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), font=plots.FONT, showlegend=False,
                      xaxis=dict(title="masks in the mixture, K", dtick=1), yaxis_title="test NLL (nats per image)")
    return fig


def _averaged_logits_note() -> None:
    demo = api.made_averaged_logits_demo()
    st.markdown("**Why not average the logits?** Averaging each pixel's logit over the masks gives a different "
                "model, not the ensemble, and in general not a distribution at all. Summed over all 1,024 images of "
                "a small 10-pixel MADE with random weights (4 members, enumerated exactly):")
    rows = [{"members": "4 masks, one ordering (as here)", "mixture": demo["shared"]["mixture"],
             "averaged logits": demo["shared"]["averaged_logits"]},
            {"members": "4 masks, 4 different orderings", "mixture": demo["different"]["mixture"],
             "averaged logits": demo["different"]["averaged_logits"]}]
    st.dataframe(rows, hide_index=True, column_config={
        "mixture": st.column_config.NumberColumn("Σₓ mixture", format="%.6f"),
        "averaged logits": st.column_config.NumberColumn("Σₓ averaged logits", format="%.6f")})
    st.caption("With one shared ordering (this page's MADEs vary only their hidden connectivity) averaged logits "
               "still sum to 1, but they are another model, not the mixture; once the orderings differ, a pixel's "
               "averaged logit can depend on pixels after it and the total is not 1. So this page reports only "
               "the mixture as an NLL.")


# --- 4. sampling pixel by pixel --------------------------------------------------------------------------
EVERY = [7, 14, 28, 56]


def sampling() -> None:
    st.subheader("Sampling, one pixel at a time")
    st.markdown("Draw the first pixel of the ordering from p(x₁), then the next from p(x₂ | x₁), and so on: 784 "
                "steps, each one network evaluation (MADE caches the first layer, so a step costs one column). "
                "Press ▶ and the frames play in your browser; drag the slider to scrub.")
    available = sources()
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
    with c1:
        source = pick(available, "made_sample_model")
    seed = int(c2.number_input("Seed", 0, 99_999, widgets.url_int("seed", 0, 99_999, 0), key="made_seed"))
    n = int(c3.selectbox("Digits", [1, 2, 4], key="made_n",
                         index=[1, 2, 4].index(int(widgets.url_choice("n", ["1", "2", "4"], "1")))))
    every = int(c4.selectbox("Pixels per frame", EVERY, key="made_every",
                             index=EVERY.index(int(widgets.url_choice("every", list(map(str, EVERY)), "14")))))
    if source is None:
        return
    widgets.share(seed=seed, n=n, every=every)
    frames = _frames(source.fingerprint, source.model, n, seed, every)
    st.plotly_chart(_frames_figure(frames), key=f"made_frames_{source.key}_{seed}_{n}_{every}")
    st.caption("Left: the image so far (grey: not drawn yet). Right: the model's p(xⱼ = 1 | what is drawn) for every "
               "pixel not drawn yet; for the next pixel (red square) that is its exact conditional, for the later "
               "ones it is what the network says with the undrawn pixels held at 0: a read-out of its belief, not "
               f"a marginal. {describe(source.model)}, seed {seed}.")
    widgets.download_png(plots.grid_png(frames["samples"].reshape(-1, *SHAPE), cols=n, scale=6),
                         f"made-samples-seed{seed}.png", key="dl_made_samples")


@st.cache_data(show_spinner="Sampling pixel by pixel…", max_entries=32)
def _frames(fingerprint: str, _model, n: int, seed: int, every: int) -> dict:
    frames = _model.sampling_frames(n, generator=torch.Generator().manual_seed(seed), every=every)
    return {k: v.numpy() for k, v in frames.items()}


def _tile(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) -> one row of tiles with NaN gaps."""
    return plots.grid(images, cols=len(images), pad=2, pad_value=np.nan)[2:-2, 2:-2]


GREYS = np.array([[round(255 * v)] * 3 for v in np.linspace(0, 1, 256)], dtype=np.uint8)  # black .. white


def _picture(values: np.ndarray, table: np.ndarray) -> str:
    """(H, W) values in [0, 1] (NaN: not a pixel, drawn grey) as a PNG data URI through a colour `table`
    (256, 3); frames of an animation as pictures, which the browser swaps reliably (heatmap frames did not redraw)."""
    index = np.clip(np.nan_to_num(values) * 255, 0, 255).round().astype(int)
    rgb = table[index]
    rgb[np.isnan(values)] = (160, 174, 192)
    out = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8), mode="RGB").save(out, format="PNG")
    return plots.data_uri(out.getvalue())


def _frames_figure(f: dict) -> go.Figure:
    n = f["images"].shape[1]
    canvases = [_tile(np.where(np.isnan(im), 0.5, im)) for im in f["images"]]  # not drawn yet: grey
    beliefs = [_tile(p) for p in f["probs"]]

    def marker(t: int) -> tuple[list, list]:
        pixel = int(f["pixel"][t])
        if pixel < 0:
            return [], []
        r, c = divmod(pixel, 28)
        return [c + k * 30 for k in range(n)], [r] * n

    def traces(t: int) -> list:
        mx, my = marker(t)
        box = dict(symbol="square-open", size=16 if n == 1 else 11, color="#e53e3e", line=dict(width=3))
        return [go.Image(source=_picture(canvases[t], GREYS), hoverinfo="skip"),
                go.Scatter(x=mx, y=my, mode="markers", marker=box, hoverinfo="skip", showlegend=False, cliponaxis=False),
                go.Image(source=_picture(beliefs[t], raster.colour_table(PROB_SCALE)), hoverinfo="skip",
                         xaxis="x2", yaxis="y2"),
                go.Scatter(x=mx, y=my, mode="markers", marker=box, hoverinfo="skip", showlegend=False,
                           cliponaxis=False, xaxis="x2", yaxis="y2")]

    fig = make_subplots(1, 2, horizontal_spacing=0.05,
                        subplot_titles=["the image so far", "p(xⱼ = 1 | pixels drawn so far)"])
    for i, trace in enumerate(traces(0)):
        fig.add_trace(trace, 1, 1 if i < 2 else 2)
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,  # colour bar
                             marker=dict(color=[0], colorscale=PROB_SCALE, cmin=0, cmax=1, showscale=True,
                                         colorbar=dict(len=0.8, thickness=14))), 1, 2)
    labels = [str(int(s)) for s in f["step"]]
    fig.frames = [go.Frame(data=traces(t), name=labels[t], traces=[0, 1, 2, 3]) for t in range(len(labels))]
    play = dict(label="▶ Play", method="animate",
                args=[None, dict(frame=dict(duration=150, redraw=True), transition=dict(duration=0), fromcurrent=True)])
    pause = dict(label="❚❚ Pause", method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])
    fig.update_layout(
        updatemenus=[dict(type="buttons", buttons=[play, pause], direction="left", x=0, y=-0.02, xanchor="left",
                          yanchor="top", pad=dict(t=10, r=10), font=dict(size=16))],
        sliders=[dict(active=0, x=0.2, len=0.8, y=-0.02, yanchor="top", currentvalue=dict(prefix="pixels drawn: "),
                      steps=[dict(label=lab, method="animate", args=[[lab], dict(mode="immediate", frame=dict(
                          duration=0, redraw=True), transition=dict(duration=0))]) for lab in labels])])
    height = 520 if n == 1 else 420 if n == 2 else 340
    fig = _square(fig, height)
    width = canvases[0].shape[1]
    fig.update_xaxes(range=[-0.5, width - 0.5], autorange=False)
    fig.update_yaxes(range=[27.5, -0.5], autorange=False)
    fig.update_annotations(yshift=8)
    fig.update_layout(margin=dict(l=10, r=10, t=60, b=90), plot_bgcolor="#a0aec0")
    return fig


# --- 5. training live --------------------------------------------------------------------------------------
def train() -> None:
    st.subheader("Train a MADE")
    st.markdown("Adam on the exact NLL of dynamically binarized training digits (a fresh binarization every "
                "epoch), output biases started at the pixel means. The curve is the exact NLL of 1,000 "
                "validation digits; the samples are drawn from the same uniforms every time, so you watch the "
                "same 16 digits sharpen. The defaults are the bundled model's recipe: the learning rate decays along "
                "a cosine to 0 at the last step, and a direct input → output connection (a masked logistic "
                "regression beside the hidden layer) speeds learning up a lot. Training runs in the "
                "background: the other views stay usable, and Cancel keeps the last complete step.")
    with st.form("made_train_form", border=True):
        c1, c2, c3 = st.columns(3)
        hidden = c1.select_slider("Hidden units", [100, 250, 500, 1000], 500, key="made_train_hidden")
        ordering = c2.radio("Ordering", ["natural", "random"], horizontal=True, key="made_train_ordering")
        order_seed = c3.number_input("Ordering seed (random)", 0, 9_999, 0, key="made_train_order_seed")
        n_masks = c1.select_slider("Masks cycled in training", [1, 2, 4, 8], 1, key="made_train_masks",
                                   help="More than one: connectivity-agnostic training; the mask ensemble view "
                                        "then appears for your model.")
        epochs = c2.slider("Epochs (50,000 digits each)", 1, 20, 10, key="made_train_epochs")
        lr = c3.select_slider("Learning rate (start)", [1e-3, 3e-3, 5e-3, 1e-2], 5e-3, key="made_train_lr")
        seed = c1.number_input("Seed", 0, 9_999, 0, key="made_train_seed")
        direct = c2.checkbox("Direct input → output connection", True, key="made_train_direct")
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    running = jobs.get(JOB)
    if submitted and not (running and running.running):
        config = {"hidden": (int(hidden),), "ordering": ordering, "order_seed": int(order_seed) if ordering == "random"
                  else 0, "n_masks": int(n_masks), "seed": int(seed), "direct": bool(direct)}
        settings = {"epochs": int(epochs), "batch_size": 100, "lr": float(lr), "total_steps": 500 * int(epochs)}
        jobs.start(JOB, f"Training a MADE 784-{hidden}-784 ({ordering} ordering)", _training_work(config, settings))
    elif submitted:
        st.warning("A training run is already in progress; cancel it first.")
    jobs.panel(JOB, _draw_training)
    if user_job() is not None:
        st.info("Your MADE is now a choice (“Your MADE”) in the chain rule, sampling and test NLL views"
                + (" and in the mask ensemble view." if user_job().result.config.n_masks > 1 else "."))


def _training_work(config: dict, settings: dict):
    def work(job: jobs.Job):
        model = api.new_model_for_training("made", config).to(api.pick())
        trainer = api.make_trainer(model, settings, seed=config["seed"], cancel=job.cancel, log_every=50)
        for update in trainer.run():
            yield update
        job.meta = {"id": f"yours-{uuid.uuid4().hex}", "config": config, "train": settings, "steps": trainer.step}
        job.result = model.cpu().eval().requires_grad_(False)
    return work


def _draw_training(job: jobs.Job) -> None:
    history, preview, _, _ = job.snapshot()
    c1, c2 = st.columns([3, 2], gap="large")
    with c1:
        st.plotly_chart(_training_figure(history), key=f"made-train-{len(history)}")
    with c2:
        if preview is not None:
            widgets.image(plots.grid_png(preview, cols=4, scale=4), caption="Samples from fixed uniforms",
                          width="stretch")
    if history:
        last = history[-1]
        st.caption(f"Step {last.get('step', 0):,}, epoch {last.get('epoch', 0)}, {last.get('examples_per_s', 0):,.0f} "
                   f"digits/s, {last.get('elapsed_s', 0):.0f} s. Validation NLL (exact, nats per digit): "
                   f"{last.get('valid_nll', float('nan')):.2f}.")
        if not job.running:
            widgets.download_csv(history, "made-training.csv", key="dl_made_train")


def _training_figure(history: list[dict]) -> go.Figure:
    fig = go.Figure()
    for key, name in (("loss", "training batches (mean over 50 steps)"), ("valid_nll", "1,000 validation digits")):
        rows = [h for h in history if key in h]
        fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r[key] for r in rows], mode="lines+markers",
                                 name=name))
    fig.add_hline(y=TARGET, line_dash="dot", line_color="#2f855a", annotation_text=f"target {TARGET:.0f}")
    fig.add_hline(y=PAPER["made"][1], line_dash="dash", line_color="#718096", annotation_text="paper 88.04",
                  annotation_position="bottom right")
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), font=plots.FONT, xaxis_title="step",
                      yaxis=dict(title="NLL (nats per digit)", range=[80, 160]), legend=dict(orientation="h", y=1.18))
    return fig


# --- 6. the numbers -------------------------------------------------------------------------------------------
def nll() -> None:
    st.subheader("Exact test NLL")
    st.markdown("Autoregressive models have what latent-variable models lack: the exact likelihood, summed "
                "pixel by pixel, with no bound and no sampling estimate. All numbers are nats per digit (bits/dim "
                f"= nats / (784 ln 2)) on {BINARIZATION}.")
    available = sources()
    rows = []
    for key, source in available.items():
        result = _test_result(source)
        if result is None:
            st.info(f"The {source.label} has no measured test NLL yet (`python -m engine eval "
                    f"assets/checkpoints/{BUNDLED.get(key, '')}`).")
            continue
        test = result["test_nll"]
        curve = test.get("mask_ensemble") or {"masks": [1]}
        several = len(curve["masks"]) > 1
        rows.append({"short": source.label + (": mask 1 alone" if several else ""),
                     "model": f"{source.label}: {describe(source.model)}" + (", mask 1 alone" if several else ""),
                     "nats": test["nats"], "±": test["stderr"], "bits/dim": test["bits_per_dim"], "kind": "ours"})
        if several:
            k, nats = curve["masks"][-1], curve["nats"][-1]
            rows.append({"short": f"{source.label}: mixture of {k}", "nats": nats, "±": None,
                         "model": f"{source.label}: {describe(source.model)}, the mixture of its {k} masks",
                         "bits/dim": nats / (D * math.log(2)), "kind": "ours"})
    baseline = next((r["baseline_independent_bernoulli"] for r in map(_test_result, available.values()) if r), None)
    if baseline is not None:
        rows.append({"short": "Independent pixels", "model": "Independent pixels (each its training mean)",
                     "nats": baseline, "±": None,
                     "bits/dim": baseline / (D * math.log(2)), "kind": "baseline"})
    for key, (label, nats) in PAPER.items():
        rows.append({"short": f"{key.upper()}, paper", "model": f"Paper: {label}", "nats": nats, "±": None, "bits/dim": nats / (D * math.log(2)),
                     "kind": "paper (fixed binarization)"})
    st.plotly_chart(_nll_figure(rows), key="made_nll_bars")
    st.dataframe(rows, hide_index=True, column_order=["model", "nats", "±", "bits/dim", "kind"], column_config={
        "nats": st.column_config.NumberColumn("nats", format="%.2f"),
        "±": st.column_config.NumberColumn("± (s.e.)", format="%.2f"),
        "bits/dim": st.column_config.NumberColumn("bits/dim", format="%.4f")})
    st.caption("± is the standard error over the 10,000 test digits. Paper numbers use the fixed binarized-MNIST "
               "file and far longer training; they are for scale, not a like-for-like comparison.")
    widgets.download_csv(rows, "made-nade-test-nll.csv", key="dl_made_nll")
    _training_lines(available)


def _test_result(source: Source) -> dict | None:
    if source.key == "yours":
        return _measured_test(source.fingerprint, source.model)
    metrics = bundled_metrics(BUNDLED[source.key])
    return metrics if "test_nll" in metrics else None


@st.cache_data(show_spinner="Scoring the 10,000 test digits…", max_entries=4)
def _measured_test(fingerprint: str, _model) -> dict:
    return api.evaluate_autoregressive(_model, masks=1)


def _nll_figure(rows: list[dict]) -> go.Figure:
    colours = {"ours": "#2b6cb0", "baseline": "#a0aec0", "paper (fixed binarization)": "#dd6b20"}
    ordered = sorted(rows, key=lambda r: -r["nats"])
    fig = go.Figure(go.Bar(y=[r["short"] for r in ordered], x=[r["nats"] for r in ordered],
                           orientation="h", marker_color=[colours[r["kind"]] for r in ordered],
                           text=[f"{r['nats']:.2f}" for r in ordered], textposition="outside", cliponaxis=False,
                           hovertext=[r["model"] for r in ordered], hoverinfo="text+x"))
    high = max(r["nats"] for r in rows)
    fig.update_layout(height=120 + 60 * len(rows), margin=dict(l=10, r=60, t=30, b=10), font=plots.FONT,
                      xaxis=dict(title="test NLL, nats per digit (lower is better)", range=[80, high + 12]),
                      yaxis=dict(automargin=True))
    return fig


def _training_lines(available: dict[str, Source]) -> None:
    for key in BUNDLED:
        if key not in available:
            continue
        training = bundled_metrics(BUNDLED[key]).get("training", {})
        model_type = available[key].model.model_type
        if training:
            st.caption(f"The bundled {model_type.upper()}: {describe(available[key].model)}, "
                       f"{training.get('steps', 0):,} steps of batch {training.get('train', {}).get('batch_size')} "
                       f"({training.get('epochs')} epochs) in {training.get('seconds', 0) / 60:.1f} min on "
                       f"{training.get('device', 'cpu')}, by `python -m engine train {model_type} --preset "
                       f"{training.get('preset')}`.")
