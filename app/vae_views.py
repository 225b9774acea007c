"""The VAE page's views: the bound, latent sliders, the 2-D manifold, interpolation, encoding an upload,
and training. Model math lives in engine.models.vae; this file only arranges and draws it."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app import jobs, plots, widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names, mnist_test
from app.uploads import BadUpload, to_mnist
from engine import api

SHAPE = (28, 28)
MODEL_2D, MODEL_20D, MODEL_MAIN = "vae-mnist-2d", "vae-mnist-20d", "vae-mnist"


def available(name: str) -> bool:
    return name in bundled_names("vae")


def codes_of(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations of q(z|x): (N, D) -> (N, d), (N, d)."""
    with torch.inference_mode():
        mu, logvar = model.encode(x)
    return mu, torch.exp(0.5 * logvar)


def picture(images, cols: int | None = None, scale: int = 3) -> bytes:
    return plots.grid_png(np.asarray(images).reshape(-1, *SHAPE), cols=cols, scale=scale)


def digit_or_upload(key: str, label: str, default: int) -> torch.Tensor | None:
    """A binary digit (784,) from the test set or an upload; None (with a message) if the upload is unusable."""
    _, _, binary = mnist_test()
    where = st.radio(label, ["test digit", "upload"], horizontal=True, key=f"{key}_src")
    if where == "test digit":
        index = st.number_input("Test digit (0 to 9,999)", 0, len(binary) - 1, default, key=f"{key}_idx")
        return binary[index]
    upload = st.file_uploader("PNG or JPEG of one digit", type=["png", "jpg", "jpeg"], key=f"{key}_up")
    if upload is None:
        st.info("Upload a picture of a digit.")
        return None
    try:
        image = to_mnist(upload.getvalue())
    except BadUpload as e:
        st.error(f"Could not use {upload.name}: {e}.")
        return None
    return torch.from_numpy((image > 0.5).astype(np.float32).reshape(-1))


# --- the bound ---------------------------------------------------------------------------------
def bound() -> None:
    st.subheader("The variational bound, split")
    st.latex(r"z\sim\mathcal N(0,I),\quad x\mid z\sim\mathrm{Bernoulli}\big(\sigma(f_\theta(z))\big),\qquad "
             r"z=\mu_\phi(x)+\sigma_\phi(x)\odot\epsilon,\ \epsilon\sim\mathcal N(0,I)")
    st.latex(r"\log p(x)\;\ge\;\mathcal L(x)=\underbrace{\mathbf E_{q_\phi(z|x)}[\log p_\theta(x\mid z)]}"
             r"_{\text{reconstruction}}-\underbrace{\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)}_{\text{KL}}")
    st.markdown("The encoder proposes a Gaussian over codes; the reparameterization moves the noise outside "
                "the network so the bound can be differentiated. For a chosen digit, the two terms:")
    model = bundled_model(MODEL_MAIN)
    c1, c2 = st.columns([1, 2])
    with c1:
        x = digit_or_upload("vae_bound", "Digit", 3)
    if x is None:
        return
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        terms = {k: v.mean().item() for k, v in model.elbo_terms(x.expand(200, -1), generator=g).items()}
        recon = model.decode(model.encode(x[None])[0])[0]
    test = bundled_metrics(MODEL_MAIN).get("test", {})
    with c2:
        widgets.image(picture(np.stack([x.numpy(), recon.numpy()]), cols=2, scale=5),
                      caption="The digit and its reconstruction from the posterior mean")
    m1, m2, m3 = st.columns(3)
    m1.metric("Reconstruction E_q[log p(x|z)]", f"{terms['reconstruction']:.1f} nats",
              f"test average {test['reconstruction']:.1f}" if test else None, delta_color="off", delta_arrow="off")
    m2.metric("KL(q(z|x) ‖ p(z))", f"{terms['kl']:.1f} nats",
              f"test average {test['kl']:.1f}" if test else None, delta_color="off", delta_arrow="off")
    m3.metric("ELBO", f"{terms['elbo']:.1f} nats", f"test average {test['elbo']:.1f}" if test else None,
              delta_color="off", delta_arrow="off")
    st.caption("This digit's terms average 200 samples of z. Test averages: all 10,000 test digits, binarized "
               "with seed 0, from the model card. Model: 784-200-200-50, trained on the ELBO.")


# --- latent sliders ----------------------------------------------------------------------------
@st.fragment
def sliders() -> None:
    st.subheader("Drag the latent code, watch the decoder")
    st.markdown("Each slider is one coordinate of z; the image is the decoder's p(x = 1 | z). Under the prior "
                "each coordinate is N(0, 1), so ±3 covers almost all of it.")
    names = [n for n in (MODEL_2D, MODEL_20D) if available(n)]
    name = st.radio("Model", names, horizontal=True, key="vae_slider_model",
                    format_func=lambda n: f"{bundled_model(n).config.latent}-dimensional code")
    model = bundled_model(name)
    d = model.config.latent
    if st.button("Start from a random test digit's code", key="vae_slider_seed"):
        _, _, binary = mnist_test()
        index = int(torch.randint(len(binary), (1,)))
        mu, _ = codes_of(model, binary[index][None])
        for i, value in enumerate(mu[0].tolist()):
            st.session_state[f"vae_z_{name}_{i}"] = float(np.clip(round(value, 1), -3.0, 3.0))
    left, right = st.columns([3, 2])
    with left:
        cols = st.columns(4 if d > 4 else d)
        z = [cols[i % len(cols)].slider(f"z{i + 1}", -3.0, 3.0, 0.0, 0.1, key=f"vae_z_{name}_{i}")
             for i in range(d)]
    with torch.inference_mode():
        image = model.decode(torch.tensor(z)[None])[0]
    png = picture(image, scale=10)
    with right:
        widgets.image(png, width="stretch")
        widgets.download_png(png, "vae-decoded.png", key="dl_vae_slider")


# --- the 2-D manifold --------------------------------------------------------------------------
def manifold() -> None:
    st.subheader("The learned 2-D manifold")
    st.markdown("Left: decodings of a grid of codes over the latent plane (inverse normal CDF spacing, so the "
                "grid covers the prior evenly). Right: where q(z|x) puts the test digits (posterior means, "
                "coloured by class); a few hundred show their posterior standard deviation as error bars.")
    model = bundled_model(MODEL_2D)
    n = st.select_slider("Grid size", [10, 15, 20, 25], 20, key="vae_grid")
    left, right = st.columns(2)
    grid_png = _manifold_png(bundled_fingerprint(MODEL_2D), model, n)
    with left:
        widgets.image(grid_png, width="stretch")
        widgets.download_png(grid_png, "vae-manifold.png", key="dl_manifold")
    with right:
        fig, rows = _posterior_scatter(bundled_fingerprint(MODEL_2D), model)
        st.plotly_chart(fig, key="vae_scatter")
        widgets.download_csv(rows, "vae-test-codes.csv", key="dl_codes")


@st.cache_data(max_entries=8, show_spinner=False)
def _manifold_png(key: str, _model, n: int) -> bytes:
    p = torch.linspace(0.5 / n, 1 - 0.5 / n, n)
    r = torch.distributions.Normal(0, 1).icdf(p)
    zz = torch.stack(torch.meshgrid(r, r.flip(0), indexing="xy"), -1).reshape(-1, 2)  # row-major, z2 up
    with torch.inference_mode():
        images = _model.decode(zz)
    return plots.grid_png(images.reshape(-1, *SHAPE), cols=n, pad=0, scale=2)


@st.cache_data(max_entries=4, show_spinner="Encoding the test set…")
def _posterior_scatter(key: str, _model):
    _, labels, binary = mnist_test()
    mu, std = (t.numpy() for t in codes_of(_model, binary))
    labels = labels.numpy()
    fig = go.Figure()
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        fig.add_trace(go.Scattergl(x=mu[idx, 0], y=mu[idx, 1], mode="markers", name=str(digit),
                                   marker=dict(size=3, opacity=0.6), customdata=idx,
                                   hovertemplate="digit %{fullData.name}, test #%{customdata}<extra></extra>"))
    few = np.arange(0, len(binary), 25)
    fig.add_trace(go.Scatter(x=mu[few, 0], y=mu[few, 1], mode="markers", name="± 1 std", showlegend=True,
                             marker=dict(size=2, color="black"), hoverinfo="skip",
                             error_x=dict(array=std[few, 0], thickness=0.6, width=0, color="rgba(0,0,0,0.35)"),
                             error_y=dict(array=std[few, 1], thickness=0.6, width=0, color="rgba(0,0,0,0.35)")))
    fig.update_layout(height=560, xaxis_title="z1", yaxis_title="z2", legend=dict(itemsizing="constant"),
                      margin=dict(l=10, r=10, t=30, b=10), font=dict(size=16))
    rows = [{"index": i, "label": int(labels[i]), "z1": float(mu[i, 0]), "z2": float(mu[i, 1]),
             "std1": float(std[i, 0]), "std2": float(std[i, 1])} for i in range(len(binary))]
    return fig, rows


# --- interpolation -----------------------------------------------------------------------------
def interpolate() -> None:
    st.subheader("Walking in latent space between two digits")
    st.markdown("Encode both digits (posterior means), walk from one code to the other, and decode every step. "
                "Linear paths cut through the low-probability region near the origin in high dimensions; "
                "spherical paths (slerp) keep a typical norm.")
    names = [n for n in (MODEL_20D, MODEL_MAIN, MODEL_2D) if available(n)]
    c1, c2, c3 = st.columns(3)
    with c1:
        a = digit_or_upload("vae_from", "From", 3)
    with c2:
        b = digit_or_upload("vae_to", "To", 2)
    with c3:
        name = st.selectbox("Model", names, key="vae_interp_model",
                            format_func=lambda n: f"{bundled_model(n).config.latent}-dimensional code")
        steps = st.slider("Steps", 5, 20, 10, key="vae_interp_steps")
    if a is None or b is None:
        return
    model = bundled_model(name)
    mu, _ = codes_of(model, torch.stack([a, b]))
    strips = {}
    for kind in ("linear", "spherical"):
        with torch.inference_mode():
            strips[kind] = model.decode(api.latent_path(mu[0], mu[1], steps, kind=kind)).numpy()
    for kind, images in strips.items():
        png = picture(images, cols=steps, scale=3)
        st.markdown(f"**{kind.capitalize()}**")
        widgets.image(png, width="stretch")
        widgets.download_png(png, f"vae-interpolation-{kind}.png", key=f"dl_interp_{kind}")
    frames = np.stack([strips["linear"], strips["spherical"]], 1).reshape(steps, 2, *SHAPE)
    st.plotly_chart(plots.animation(frames, labels=[f"{t:.2f}" for t in np.linspace(0, 1, steps)],
                                    height=420, cols=2), key="vae_interp_anim")
    st.caption("The animation plays both paths side by side in your browser: linear left, spherical right.")


# --- encode an upload --------------------------------------------------------------------------
def encode() -> None:
    st.subheader("Encode your own digit")
    st.markdown("The encoder maps the digit to a Gaussian q(z|x) in the 2-D latent plane; the decoder maps "
                "the posterior mean back to an image.")
    model = bundled_model(MODEL_2D)
    c1, c2 = st.columns([1, 2])
    with c1:
        x = digit_or_upload("vae_encode", "Digit", 0)
    if x is None:
        return
    mu, std = codes_of(model, x[None])
    with torch.inference_mode():
        recon = model.decode(mu)[0]
    with c1:
        png = picture(np.stack([x.numpy(), recon.numpy()]), cols=2, scale=5)
        widgets.image(png, caption="Input (binarized) and reconstruction", width="stretch")
        widgets.download_png(png, "vae-encoded.png", key="dl_encode")
        st.metric("Posterior mean", f"({mu[0, 0]:.2f}, {mu[0, 1]:.2f})",
                  f"std ({std[0, 0]:.2f}, {std[0, 1]:.2f})", delta_color="off", delta_arrow="off")
    fig, _ = _posterior_scatter(bundled_fingerprint(MODEL_2D), model)
    fig = go.Figure(fig)
    fig.add_trace(go.Scatter(x=[float(mu[0, 0])], y=[float(mu[0, 1])], mode="markers", name="your digit",
                             marker=dict(size=18, color="black", symbol="x"),
                             error_x=dict(array=[float(std[0, 0])]), error_y=dict(array=[float(std[0, 1])])))
    with c2:
        st.plotly_chart(fig, key="vae_encode_scatter")


# --- training ----------------------------------------------------------------------------------
def train() -> None:
    st.subheader("Train a VAE")
    st.markdown("Adam on the negative ELBO (or, with k > 1, on the IWAE bound) over dynamically binarized "
                "MNIST. The curves are measured on 1,000 validation digits; the samples decode fixed codes, so "
                "you can watch them sharpen.")
    with st.form("vae_train_form"):
        c1, c2, c3 = st.columns(3)
        latent = c1.select_slider("Latent dimensions", [2, 5, 10, 20, 50], 20)
        hidden = c2.select_slider("Hidden units (two tanh layers)", [100, 200, 300, 500], 200)
        k = c3.select_slider("Samples k in the bound (1 = VAE)", [1, 5, 10, 50], 1)
        epochs = c1.slider("Epochs", 1, 30, 3)
        lr = c2.select_slider("Learning rate", [3e-4, 1e-3, 3e-3], 1e-3)
        seed = c3.number_input("Seed", 0, 10_000, 0)
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    job = jobs.get("vae-train")
    if submitted and not (job and job.running):
        config = {"latent": latent, "hidden": (hidden, hidden), "k": k}
        jobs.start("vae-train", f"Training a {latent}-d {'VAE' if k == 1 else f'IWAE (k={k})'}",
                   _training_work(config, {"epochs": epochs, "batch_size": 100, "lr": lr}, int(seed)))
    elif submitted:
        st.warning("A training run is already in progress; cancel it first.")
    jobs.panel("vae-train", _draw_training)


def _training_work(config: dict, settings: dict, seed: int):
    def work(job: jobs.Job):
        model = api.build("vae", **config).to(api.pick())
        for update in api.make_trainer(model, settings, seed=seed, cancel=job.cancel, log_every=50).run():
            yield update
        job.result = model.cpu().eval().requires_grad_(False)
    return work


def _draw_training(job: jobs.Job) -> None:
    history, preview, _, _ = job.snapshot()
    c1, c2 = st.columns([3, 2])
    with c1:
        st.plotly_chart(plots.curves(history, ["valid_elbo", "valid_reconstruction"], height=260,
                                     y_title="nats per digit"), key=f"vae-c1-{len(history)}")
        st.plotly_chart(plots.curves(history, ["valid_kl"], height=200, y_title="KL (nats)"),
                        key=f"vae-c2-{len(history)}")
    with c2:
        if preview is not None:
            widgets.image(picture(preview, cols=6, scale=2), caption="Samples from fixed codes", width="stretch")
    if history and not job.running:
        widgets.download_csv(history, "vae-training.csv", key="dl_vae_train")
