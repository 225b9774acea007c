"""The GAN page's MNIST views: sample grids over training, latent interpolation, and measured quality.
Model math lives in engine.models.dcgan and engine.quality; this file only arranges and draws it."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app import plots, widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names, loadable
from engine import api

SHAPE = (28, 28)
MODELS = {"dcgan-mnist": "DCGAN", "wgan-gp-mnist": "WGAN-GP"}
BLURBS = {"dcgan-mnist": "non-saturating loss, one discriminator step per generator step",
          "wgan-gp-mnist": "Wasserstein loss with gradient penalty (λ = 10), five critic steps per generator step"}
COLORS = {"dcgan-mnist": "#2b6cb0", "wgan-gp-mnist": "#c05621", "floor": "#718096"}
PATH_STEPS = 51  # the t slider's positions: 0, 0.02, ..., 1


def model_choice(key: str) -> str | None:
    """Radio between the bundled MNIST GANs that load (shared by URL as ?gan_model=); None when none do."""
    names = [n for n in MODELS if n in bundled_names("dcgan") and loadable(n)]
    if not names:
        st.warning("No MNIST GAN is bundled; train them with `make train-gan`.")
        return None
    name = st.radio("Model", names, format_func=MODELS.get, horizontal=True, key=key,
                    index=names.index(widgets.url_choice("gan_model", names, names[0])))
    widgets.share(gan_model=name)
    st.caption(f"{MODELS[name]}: {BLURBS[name]}.")
    return name


def picture(images, cols: int | None = None, scale: int = 3, pad: int = 2) -> bytes:
    return plots.grid_png(np.asarray(images, dtype=np.float32).reshape(-1, *SHAPE), cols=cols, scale=scale, pad=pad)


@st.cache_resource(show_spinner=False)
def snapshots(name: str, fingerprint: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps (S,), images (S, 64, 28, 28) uint8) saved while the bundled model trained."""
    return api.load_snapshots(api.resolve(name))


@st.cache_data(max_entries=16, show_spinner=False)
def _samples_png(fingerprint: str, _model, seed: int) -> bytes:
    images = _model.sample(64, generator=torch.Generator().manual_seed(seed))
    return picture(images.numpy(), cols=8)


# --- sample grids ------------------------------------------------------------------------------
def grids() -> None:
    st.subheader("Digits from noise, and how the grid formed")
    st.markdown("The generator maps 64 fixed noise vectors z ~ N(0, I) to images. Drag through the snapshots "
                "saved during training to watch blobs become strokes and strokes become digits; on the right, "
                "64 fresh samples from the final generator.")
    name = model_choice("gan_mnist_model")
    if name is None:
        return
    model, fingerprint = bundled_model(name), bundled_fingerprint(name)
    left, right = st.columns(2, gap="large")
    with left:
        try:
            steps, images = snapshots(name, fingerprint)
        except api.CheckpointError as e:
            st.error(f"The training snapshots of {name!r} cannot be read: {e}")
        else:
            _snapshot_grid(name, steps, images)
    with right:
        seed = st.number_input("Seed for new samples", 0, 1_000_000, 1, key="gan_mnist_seed")
        png = _samples_png(fingerprint, model, int(seed))
        widgets.image(png, width="stretch", caption=f"64 new samples, seed {seed}")
        widgets.download_png(png, f"{name}-samples-seed{seed}.png", key="dl_gan_samples")


@st.fragment
def _snapshot_grid(name: str, steps: np.ndarray, images: np.ndarray) -> None:
    total = int(steps[-1])
    step = st.select_slider("Training step", options=[int(s) for s in steps], value=total,
                            key=f"gan_snapshot_{name}", help="A step is one critic (discriminator) update; the "
                            "generator updates every step for the DCGAN, every fifth for the WGAN-GP.")
    i = int(np.searchsorted(steps, step))
    png = picture(images[i] / 255.0, cols=8)
    widgets.image(png, width="stretch",
                  caption=f"The fixed noise batch at step {step:,} of {total:,} "
                          f"(snapshot {i + 1} of {len(steps)}, {100 * step / max(total, 1):.0f}% of training)")
    widgets.download_png(png, f"{name}-step{step}.png", key="dl_gan_snapshot")


# --- interpolation -----------------------------------------------------------------------------
def interpolate() -> None:
    st.subheader("Walking between two noise vectors")
    st.markdown("Two seeds give two noise vectors z₀ and z₁; the generator decodes every point on the path "
                "between them. In 64 dimensions N(0, I) puts almost all its mass near the sphere of radius 8; "
                "a straight line dips inside it (to about 8/√2 at the midpoint), the spherical path (slerp) keeps "
                "a typical norm.")
    name = model_choice("gan_interp_model")
    if name is None:
        return
    model, fingerprint = bundled_model(name), bundled_fingerprint(name)
    c1, c2, c3 = st.columns(3)
    seed_a = int(c1.number_input("Seed of z₀", 0, 1_000_000, 4, key="gan_seed_a"))
    seed_b = int(c2.number_input("Seed of z₁", 0, 1_000_000, 17, key="gan_seed_b"))
    steps = c3.slider("Steps in the strip", 5, 16, 10, key="gan_interp_steps")
    strips = {kind: _path_images(fingerprint, model, seed_a, seed_b, steps, kind) for kind in ("linear", "spherical")}
    for kind, images in strips.items():
        png = picture(images, cols=steps, scale=3)
        st.markdown(f"**{kind.capitalize()}**")
        widgets.image(png, width="stretch")
        widgets.download_png(png, f"{name}-interpolation-{kind}.png", key=f"dl_gan_interp_{kind}")
    left, right = st.columns([3, 2], gap="large")
    with left:
        fine = {kind: _path_images(fingerprint, model, seed_a, seed_b, 26, kind) for kind in strips}
        frames = np.stack([fine["linear"], fine["spherical"]], 1)  # (T, 2, 28, 28)
        fig = plots.animation(frames, labels=[f"{t:.2f}" for t in np.linspace(0, 1, 26)], height=460, cols=2)
        fig.layout.sliders[0].currentvalue.prefix = "t = "
        st.plotly_chart(fig, key="gan_interp_anim")
        st.caption("Press play: the browser plays both paths (linear left, spherical right), 26 frames.")
    with right:
        _t_slider(name, fingerprint, model, seed_a, seed_b)


@st.fragment
def _t_slider(name: str, fingerprint: str, model, seed_a: int, seed_b: int) -> None:
    kind = st.radio("Path", ["linear", "spherical"], horizontal=True, key="gan_t_kind")
    t = st.slider("t (position on the path)", 0.0, 1.0, 0.5, 1 / (PATH_STEPS - 1), key="gan_t")
    z = _path(seed_a, seed_b, model.config.latent, PATH_STEPS, kind)[round(t * (PATH_STEPS - 1))]
    with torch.inference_mode():
        image = model.decode(z[None])[0]
    png = picture(image.numpy(), scale=10, pad=0)
    widgets.image(png, width=300, caption=f"G(z_t) at t = {t:.2f}; ‖z_t‖ = {float(z.norm()):.2f} "
                                          f"(‖z₀‖ = {float(_z(seed_a, model.config.latent).norm()):.2f}, "
                                          f"‖z₁‖ = {float(_z(seed_b, model.config.latent).norm()):.2f})")
    widgets.download_png(png, f"{name}-t{t:.2f}-{kind}.png", key="dl_gan_t")


def _z(seed: int, latent: int) -> torch.Tensor:
    return torch.randn(latent, generator=torch.Generator().manual_seed(seed))


def _path(seed_a: int, seed_b: int, latent: int, steps: int, kind: str) -> torch.Tensor:
    return api.latent_path(_z(seed_a, latent), _z(seed_b, latent), steps, kind=kind)


@st.cache_data(max_entries=32, show_spinner=False)
def _path_images(fingerprint: str, _model, seed_a: int, seed_b: int, steps: int, kind: str) -> np.ndarray:
    """Decoded images along the path: (steps, 28, 28) in [0, 1]."""
    with torch.inference_mode():
        images = _model.decode(_path(seed_a, seed_b, _model.config.latent, steps, kind))
    return images.reshape(steps, *SHAPE).numpy()


# --- measured quality --------------------------------------------------------------------------
def quality() -> None:
    st.subheader("Quality, measured: Fréchet distance, precision and recall")
    st.markdown("A small MNIST classifier (bundled, `mnist-classifier`) embeds digits in its 128-D penultimate "
                "layer. **Fréchet distance**: between Gaussians fitted to the features of 10,000 samples and of "
                "the 10,000 test digits (lower is better). **Precision**: the share of samples that land on the "
                "test digits' k-NN manifold (realistic?); **recall**: the share of test digits that land on the "
                "samples' manifold (all styles covered?), k = 3. The floor: 10,000 real validation digits "
                "measured the same way.")
    st.latex(r"\mathrm{FD}=\lVert\mu_r-\mu_g\rVert^2+\operatorname{tr}\big(\Sigma_r+\Sigma_g-2(\Sigma_r^{1/2}"
             r"\Sigma_g\Sigma_r^{1/2})^{1/2}\big)")
    results = {n: q for n in MODELS if n in bundled_names("dcgan")
               for q in [bundled_metrics(n).get("quality")] if q}
    missing = [n for n in MODELS if n not in results]
    if missing:
        st.warning(f"Not measured yet: {', '.join(missing)} (bundle and evaluate with `make train-gan`).")
    if not results:
        return
    floor = next(iter(results.values()))["floor"]
    cols = st.columns(len(results) + 1)
    for col, (name, q) in zip(cols, results.items()):
        _scorecard(col, MODELS[name], q["model"], floor)
    _scorecard(cols[-1], "Real digits (floor)", floor, None)
    st.plotly_chart(_bars(results, floor), key="gan_quality_bars")
    _curves(list(results))
    rows = [{"model": MODELS[n], **{k: q["model"][k] for k in ("fd", "precision", "recall", "k", "n")}}
            for n, q in results.items()] + [{"model": "real digits (floor)",
                                            **{k: floor[k] for k in ("fd", "precision", "recall", "k", "n")}}]
    c1, c2 = st.columns(2)
    with c1:
        widgets.download_csv(rows, "gan-mnist-quality.csv", key="dl_gan_quality_csv")
    with c2:
        widgets.download_json(results, "gan-mnist-quality.json", key="dl_gan_quality_json")


def _scorecard(col, title: str, r: dict, floor: dict | None) -> None:
    with col.container(border=True):
        st.markdown(f"#### {title}")
        vs = (lambda k, f: f"floor {f.format(floor[k])}") if floor else (lambda k, f: None)  # noqa: E731
        st.metric("Fréchet distance ↓", f"{r['fd']:.2f}", vs("fd", "{:.2f}"), delta_color="off", delta_arrow="off")
        st.metric("Precision ↑", f"{r['precision']:.3f}", vs("precision", "{:.3f}"), delta_color="off", delta_arrow="off")
        st.metric("Recall ↑", f"{r['recall']:.3f}", vs("recall", "{:.3f}"), delta_color="off", delta_arrow="off")


def _bars(results: dict, floor: dict) -> go.Figure:
    from plotly.subplots import make_subplots
    fig = make_subplots(1, 2, column_widths=[0.4, 0.6], horizontal_spacing=0.1,
                        subplot_titles=["Fréchet distance (lower is better)", "Precision and recall (higher is better)"])
    who = [(MODELS[n], q["model"], COLORS[n]) for n, q in results.items()] + [("real digits", floor, COLORS["floor"])]
    for label, r, color in who:
        fig.add_trace(go.Bar(x=[label], y=[r["fd"]], marker_color=color, showlegend=False,
                             text=[f"{r['fd']:.2f}"], textposition="outside"), 1, 1)
        fig.add_trace(go.Bar(x=["precision", "recall"], y=[r["precision"], r["recall"]], name=label,
                             marker_color=color, text=[f"{r['precision']:.2f}", f"{r['recall']:.2f}"],
                             textposition="outside"), 1, 2)
    top = max(r["fd"] for _, r, _ in who)
    fig.update_yaxes(range=[0, top * 1.25], row=1, col=1).update_yaxes(range=[0, 1.12], row=1, col=2)
    fig.update_layout(barmode="group", height=380, margin=dict(l=10, r=10, t=50, b=10), font=plots.FONT,
                      legend=dict(orientation="h", y=-0.15))
    return fig


def _curves(names: list[str]) -> None:
    st.markdown("**Training curves** (each point: the mean over 100 training steps)")
    cols = st.columns(len(names))
    for col, name in zip(cols, names):
        curves = bundled_metrics(name).get("training", {}).get("curves")
        with col:
            if not curves or not curves.get("step"):
                st.info(f"{MODELS[name]}: no training curves stored.")
                continue
            wgan = "wgan" in name
            keys = ["wasserstein", "gp"] if wgan else ["d_loss", "g_loss"]
            labels = {"wasserstein": "Wasserstein estimate E f(x) − E f(G(z))", "gp": "gradient penalty",
                      "d_loss": "D loss", "g_loss": "G loss (−log D(G(z)))"}
            fig = go.Figure()
            for key in keys:
                fig.add_trace(go.Scatter(x=curves["step"], y=curves.get(key, []), mode="lines", name=labels[key],
                                         yaxis="y2" if key == "gp" else "y",
                                         line=dict(color=COLORS[name], dash="solid" if key == keys[0] else "dot")))
            fig.update_layout(title=MODELS[name], height=320, font=plots.FONT,
                              xaxis_title="critic step" if wgan else "step (one D and one G update)",
                              margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.3),
                              yaxis2=dict(overlaying="y", side="right", showgrid=False) if wgan else None)
            st.plotly_chart(fig, key=f"gan_curves_{name}")
