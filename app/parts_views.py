"""The part-based features page's views: layer-1 parts, layer-2 groups of parts, one face through the
stack, and live training with the controls that make parts appear and disappear.

All model math is in engine.models.parts (through engine.api); training runs as a background job.
"""
from __future__ import annotations

import time

import numpy as np
import streamlit as st
import torch

from app import jobs, plots, widgets
from app.model_source import Source, source_picker, use_model
from engine import api

BUNDLED = "parts-faces"
USER_LABEL = "your trained model"
SHAPE = (25, 25)
FRAME, DEAD = (0.82, 0.82, 0.82), (0.85, 0.15, 0.15)


def model_picker() -> Source | None:
    """Sidebar choice between the bundled stack and the one trained on this page (None: no model)."""
    return source_picker("parts", title="Model shown", user_label=USER_LABEL,
                         describe=lambda m: f"{m.config.n_visible} {m.config.visible} visible units → "
                                            f"{m.config.n_hidden} parts → {m.config.n_top} groups")


def require_faces() -> None:
    """A plain message, and the page stops, when the Olivetti faces are absent or unreadable."""
    try:
        all_faces()
    except api.DatasetUnavailable as e:
        st.error(f"The Olivetti faces are not available, so this page cannot run. {e}")
        st.stop()


@st.cache_resource(show_spinner="Loading the Olivetti faces…")
def all_faces() -> torch.Tensor:
    """The 400 faces, person by person (face i shows person i // 10): (400, 625) in [0, 1]."""
    return api.faces.all_images()


@st.cache_data(max_entries=8, show_spinner=False)
def measured(key: str, _model) -> dict:
    """Locality of every part and the dead units, on all 400 faces."""
    return _model.measure(all_faces())


def tiles_png(images: np.ndarray, *, frames: list | None = None, cols: int, scale: int = 3) -> bytes:
    """Grey tiles (N, H, W) in [0, 1] with a 2-pixel coloured frame each (default light grey) as an RGB PNG."""
    n, h, w = images.shape
    rows = int(np.ceil(n / cols))
    out = np.ones((rows * (h + 4) + 2, cols * (w + 4) + 2, 3), dtype=np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y, x = 1 + r * (h + 4), 1 + c * (w + 4)
        out[y:y + h + 4, x:x + w + 4] = frames[i] if frames else FRAME
        out[y + 2:y + 2 + h, x + 2:x + 2 + w] = im[..., None]
    return _rgb_png(out, scale)


def _rgb_png(rgb: np.ndarray, scale: int) -> bytes:
    import io

    from PIL import Image
    pil = Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), mode="RGB")
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def _metrics_row(m: dict, n_hidden: int) -> None:
    c1, c2, c3 = st.columns(3)
    loc, dead = m["locality_median"], m["dead_fraction"]
    c1.metric("Locality of the parts (median)", f"{loc:.2f}", "target ≥ 0.7: " + ("met" if loc >= 0.7 else "not met"),
              delta_color="normal" if loc >= 0.7 else "inverse", delta_arrow="off",
              help="Share of each filter's mass Σ|w| in its top 10% of pixels (63 of 625): 1 = all on one "
                   "spot, 0.1 = spread evenly over the face.")
    c2.metric("Dead parts", f"{dead:.0%}", f"{len(m['dead_units'])} of {n_hidden}; target < 20%: "
              + ("met" if dead < 0.2 else "not met"), delta_color="normal" if dead < 0.2 else "inverse",
              delta_arrow="off", help="A unit is dead when its p(h = 1 | v) changes by less than 0.5 across all "
                                      "400 faces: it is off (or on) whatever the face. Framed in red.")
    c3.metric("Mean activation of the parts", f"{m['mean_activation']:.3f}",
              help="Average p(h = 1 | v) over the 400 faces; the sparsity target pulls it down.")


# --- layer 1: parts ------------------------------------------------------------------------------
@st.fragment
def parts(source: Source) -> None:
    st.subheader("Layer 1: object parts")
    st.markdown("Each tile is one hidden unit's weights over the 25×25 pixels, drawn as ink: white is zero weight, "
                "black the unit's largest. With non-negative weights a unit can only *add* darkness, so each "
                "keeps to one part: an eye, a brow, a nostril, a mouth, the shadow of a jaw or a hairline.")
    model = source.model
    m = measured(source.key, model)
    orders = {"groups": "most used by layer 2 first", "local": "most local first", "index": "unit index"}
    order = st.radio("Order", list(orders), format_func=orders.get, horizontal=True, key="parts_order",
                     index=list(orders).index(widgets.url_choice("order", list(orders), "groups")),
                     help="Most used: by Σ_k max(W2_jk, 0), the weight layer 2 puts on the part.")
    widgets.share(order=order)
    score = {"groups": model.W2.clamp_min(0).sum(1).numpy(), "local": np.array(m["locality"]),
             "index": -np.arange(model.config.n_hidden)}[order]
    units = np.argsort(-score, kind="stable")
    dead = set(m["dead_units"])
    images = model.part_images(torch.as_tensor(units)).numpy()
    png = tiles_png(images, frames=[DEAD if u in dead else FRAME for u in units], cols=12, scale=3)
    _metrics_row(m, model.config.n_hidden)
    widgets.image(png, width="content")
    st.caption(f"{len(units)} layer-1 units, {orders[order]}; dead units framed in red.")
    widgets.download_png(png, "parts-layer1.png", key="dl_parts")
    hist = np.histogram(m["locality"], bins=np.linspace(0.1, 1.0, 19))
    fig = plots.bars([f"{a:.2f}" for a in hist[1][:-1]], hist[0], title="Locality of each part (count of units)",
                     height=260, range_=(0, max(hist[0]) * 1.25 + 1))
    fig.update_traces(text=[str(c) if c else "" for c in hist[0]])
    fig.update_xaxes(title="share of the filter's mass in its top 10% of pixels (bin start)")
    st.plotly_chart(fig, key="parts_hist")


# --- layer 2: groups of parts ------------------------------------------------------------------
@st.cache_data(max_entries=8, show_spinner=False)
def _group_usage(key: str, _model) -> np.ndarray:
    """Layer-2 units, most used first (mean p(h2 = 1) over the 400 faces, mean-field up-pass)."""
    with torch.no_grad():
        p = _model.p_top(_model.p_h(_model.visible(all_faces())))
    return p.mean(0).argsort(descending=True).numpy()


@st.fragment
def groups(source: Source) -> None:
    st.subheader("Layer 2: groups of parts")
    st.markdown("Layer 2 is an RBM trained on layer 1's part activations, so each of its units switches on for "
                "a *combination* of parts. Big picture: the unit drawn as the positive-weighted sum of all "
                "layer-1 filters, Σ_j max(W2_jk, 0) W_:j. Beside it: its strongest parts, as on the slide.")
    model = source.model
    c1, c2 = st.columns(2)
    n_parts = c1.slider("Parts per group", 3, 8, widgets.url_int("parts", 3, 8, 5), key="parts_nparts")
    count = c2.slider("Groups shown", 3, model.config.n_top, min(12, model.config.n_top),
                      key="parts_ngroups", step=3)
    widgets.share(parts=n_parts)
    usage = _group_usage(source.key, model)[:count]
    cols = st.columns(3)
    strips = []
    for i, k in enumerate(usage):
        g = model.group(int(k), n_parts)
        with cols[i % 3].container(border=True):
            widgets.image(plots.png(g["picture"], scale=5), caption=f"group {k}")
            strip = model.part_images(g["units"]).numpy()
            strips.append(np.concatenate([g["picture"][None].numpy(), strip]))
            widgets.image(tiles_png(strip, cols=n_parts, scale=2), width="stretch")
            st.caption("parts " + ", ".join(f"{u} ({w:.2f})" for u, w in zip(g["units"].tolist(),
                                                                             g["weights"].tolist())))
    png = tiles_png(np.concatenate(strips), cols=n_parts + 1, scale=3)
    widgets.download_png(png, "parts-layer2-groups.png", key="dl_groups",
                         label="Download PNG (one row per group: the group, then its parts)")


# --- one face through the stack ------------------------------------------------------------------
@st.fragment
def face(source: Source) -> None:
    st.subheader("One face, part by part")
    st.markdown("A face switches on a few parts; the reconstruction E[v | h] = b + W p(h | v) puts their ink "
                "back on the average face. The layer-2 group most active for the face is shown last.")
    model, faces = source.model, all_faces()
    c1, c2 = st.columns(2)
    index = c1.number_input(f"Face (0 to {len(faces) - 1}; face i shows person i ÷ 10)", 0, len(faces) - 1,
                            widgets.url_int("face", 0, len(faces) - 1, 325), key="parts_face")
    k = c2.slider("Parts shown", 3, 12, widgets.url_int("k", 3, 12, 8), key="parts_k")
    widgets.share(face=index, k=k)
    x = faces[int(index)]
    out = model.explain(x)
    top = out["parts"].topk(k)
    best = int(out["groups"].argmax())
    split = next(s for s, who in api.faces.PERSONS.items() if int(index) // 10 in who)
    left, right = st.columns([1, 2])
    with left:
        widgets.image(plots.grid_png(np.stack([x.reshape(SHAPE).numpy(), out["reconstruction"].reshape(SHAPE).numpy()]),
                                     cols=2, scale=6), caption=f"Face {index} (person {int(index) // 10}, {split} "
                                                               "split) and its reconstruction from the parts")
        widgets.image(plots.png(model.group(best, 1)["picture"], scale=6),
                      caption=f"Most active group: {best}, p(h2 = 1) = {float(out['groups'][best]):.2f}")
    with right:
        png = tiles_png(model.part_images(top.indices).numpy(), cols=min(k, 6), scale=4)
        widgets.image(png, width="stretch")
        st.caption("Its most active parts: " + ", ".join(f"unit {u} (p = {p:.2f})" for u, p in
                                                          zip(top.indices.tolist(), top.values.tolist())))
        on = int((out["parts"] > 0.5).sum())
        st.caption(f"{on} of {model.config.n_hidden} parts have p(h = 1 | v) > 0.5 for this face.")


# --- training on the page ------------------------------------------------------------------------
SPARSITY = ["off", "0.02", "0.05", "0.1", "0.2"]
L1 = ["0", "0.001", "0.01", "0.05"]
HIDDEN = ["49", "100", "144"]
EPOCHS = ["10", "20", "40", "80", "120", "200"]
VISIBLE = {"gaussian": "Gaussian (linear) on standardized darkness", "binary": "binary (pixel dark or not)"}
WEIGHTS = {"nonneg": "non-negative", "signed": "any sign"}


def _choice(label: str, options: dict | list, url_key: str, default: str, widget_key: str, col, **kw) -> str:
    """A radio or select slider whose value comes from the URL first and goes back into it."""
    ids = list(options)
    start = widgets.url_choice(url_key, ids, default)
    if isinstance(options, dict):
        value = col.radio(label, ids, index=ids.index(start), format_func=options.get, key=widget_key, **kw)
    else:
        value = col.select_slider(label, ids, value=start, key=widget_key, **kw)
    widgets.share(**{url_key: value})
    return value


def settings_from_controls() -> tuple[dict, dict, int]:
    """The training controls (URL-backed): (config, train settings, seed)."""
    c1, c2, c3 = st.columns(3)
    vis = _choice("Visible units", VISIBLE, "vis", "gaussian", "parts_vis", c1,
                  help="Gaussian: linear units with unit variance on the standardized darkness of each pixel. "
                       "Binary: each pixel is dark with probability 1 − intensity.")
    sign = _choice("Weights", WEIGHTS, "w", "nonneg", "parts_w", c2,
                   help="Non-negative: every update is followed by W ← max(W, 0).")
    sparsity = _choice("Sparsity target (mean activation)", SPARSITY, "sparsity", "0.05", "parts_sparsity", c3,
                       help="Each hidden unit's bias is pushed by (target − its running mean activation).")
    l1 = _choice("L1 penalty on W", L1, "l1", "0", "parts_l1", c1, help="Subtracts λ·sign(W) from the weight gradient.")
    hidden = _choice("Parts (layer-1 units)", HIDDEN, "hidden", "100", "parts_hidden", c2)
    epochs = _choice("Epochs (280 faces each; the last 40% train layer 2)", EPOCHS, "epochs", "80", "parts_epochs", c3)
    seed = c1.number_input("Seed", 0, 10_000, widgets.url_int("seed", 0, 10_000, 0), key="parts_seed")
    widgets.share(seed=seed)
    config = {"n_hidden": int(hidden), "n_top": 24, "visible": vis}
    train = {"epochs": int(epochs), "batch_size": 20, "lr": 0.005, "lr_top": 0.05, "nonnegative": sign == "nonneg",
             "sparsity": 0.0 if sparsity == "off" else float(sparsity), "l1": float(l1)}
    return config, train, int(seed)


def train(source: Source | None) -> None:
    st.subheader("Make parts appear and disappear")
    st.markdown("Three choices make parts: **linear (Gaussian) visible units** on standardized intensities, "
                "**non-negative weights** and a **sparsity target**. Switch one off and train again: binary "
                "visible units or signed weights give whole-face templates, and an L1 penalty on the weights "
                "(instead of the sparsity target) leaves many units dead. Training runs in the background; 80 epochs take about 10 s on a free core.")
    config, settings, seed = settings_from_controls()
    running = jobs.get("parts-train")
    if st.button("Train", type="primary", icon=":material/play_arrow:", key="parts_train_go"):
        if running and running.running:
            st.warning("A training run is already in progress; cancel it first.")
        else:
            title = (f"Training a 625-{config['n_hidden']}-24 stack ({VISIBLE[config['visible']].split(' (')[0]} "
                     f"visible units, {'non-negative' if settings['nonnegative'] else 'signed'} weights)")
            jobs.start("parts-train", title, _training_work(config, settings, seed))
    job = jobs.panel("parts-train", _draw_training)
    if job is not None and not job.running and job.result is not None:
        _show_result(job)


def _training_work(config: dict, settings: dict, seed: int):
    def work(job: jobs.Job):
        model = api.new_model_for_training("parts", config)
        trainer = api.make_trainer(model, settings, seed=seed, cancel=job.cancel, log_every=14)
        for update in trainer.run():
            yield update
        job.result = model.eval().requires_grad_(False)
        job.meta = {"config": config, "train": settings, "seed": seed, "steps": trainer.step}
    return work


def _draw_training(job: jobs.Job) -> None:
    history, preview, _, _ = job.snapshot()
    c1, c2 = st.columns([3, 2])
    with c1:
        st.plotly_chart(plots.curves(history, ["locality_median", "mean_activation"], height=260,
                                     y_title="median locality, mean p(h=1|v)"), key=f"pc-{len(history)}")
        st.caption("Measured once per epoch on the 40 validation faces (persons 28-31).")
    with c2:
        if preview is not None:
            widgets.image(tiles_png(preview, cols=8, scale=2), caption="The first 64 parts, evolving")


def _show_result(job: jobs.Job) -> None:
    model = job.result
    key = st.session_state.setdefault("parts_job_key", {}).setdefault(id(model), f"user-{time.time_ns()}")
    m = measured(key, model)
    _metrics_row(m, model.config.n_hidden)
    dead = set(m["dead_units"])
    order = np.argsort(-np.array(m["locality"]), kind="stable")
    png = tiles_png(model.part_images(torch.as_tensor(order)).numpy(),
                    frames=[DEAD if u in dead else FRAME for u in order], cols=12, scale=3)
    widgets.image(png, width="content", caption="The trained parts, most local first; dead units framed in red")
    st.button("Show this model on every view", icon=":material/visibility:", on_click=use_model,
              args=("parts", USER_LABEL, model), kwargs={"key": key})

