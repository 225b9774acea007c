"""The IWAE page's views: the k-sample bound rising towards log p(x), the importance weights, and
VAE vs IWAE trained with the same budget. Math lives in engine.models.vae; numbers come from model cards."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app import plots, widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names, mnist_test
from engine import api

SHAPE = (28, 28)
COMPARED = {"vae-mnist-e30": "VAE (k = 1)", "iwae5-mnist-e30": "IWAE, k = 5", "iwae50-mnist-e30": "IWAE, k = 50"}


def compared() -> dict[str, str]:
    return {name: label for name, label in COMPARED.items() if name in bundled_names("vae")}


def models_for_bound() -> list[str]:
    return [n for n in ("vae-mnist", *COMPARED) if n in bundled_names("vae")]


# --- the bound as k grows ----------------------------------------------------------------------
def bound() -> None:
    st.subheader("A tighter lower bound with more samples")
    st.latex(r"\mathcal L_k(x)=\mathbf E_{z_1,\dots,z_k\sim q(z|x)}\Big[\log\frac1k\sum_{i=1}^k"
             r"\frac{p(x,z_i)}{q(z_i\mid x)}\Big]")
    st.latex(r"\mathcal L_1\le\mathcal L_k\le\mathcal L_{m}\le\log p(x)\ \ \text{for } k\le m,"
             r"\qquad \mathcal L_k\to\log p(x)\ \text{as } k\to\infty")
    c1, c2 = st.columns(2)
    name = c1.selectbox("Model", models_for_bound(), key="iwae_model",
                        format_func=lambda n: COMPARED.get(n, "VAE, 150 epochs") + f" ({n})")
    index = c2.number_input("Test digit (0 to 9,999)", 0, 9999, 0, key="iwae_digit")
    key = bundled_fingerprint(name)
    curves = [(_bound_curve(key, bundled_model(name), int(index)), f"test digit {index}")]
    stored = bundled_metrics(name).get("test", {}).get("bound_curve")
    if stored:
        curves.append(({**stored, "log_p": stored["log_p_is"], "k_log_p": stored["log_p_is_k"]},
                       f"average over test digits 0-{stored['images'] - 1}"))
    fig = go.Figure()
    for curve, label in curves:
        fig.add_trace(go.Scatter(x=curve["k"], y=curve["mean"], mode="lines+markers", name=label,
                                 error_y=dict(array=curve["std"], thickness=1)))
        fig.add_hline(y=curve["log_p"], line_dash="dot", annotation_text=f"log p(x) ≈ {curve['log_p']:.2f} "
                      f"({label}, k = {curve['k_log_p']:,})", annotation_position="bottom right")
    fig.update_layout(xaxis_type="log", xaxis_title="k (samples in the bound)", yaxis_title="L_k (nats)",
                      height=460, font=dict(size=16), legend=dict(orientation="h", y=1.12),
                      margin=dict(l=10, r=10, t=40, b=10))
    st.plotly_chart(fig, key="iwae_curve")
    st.caption("Each point is the mean of repeated estimates (error bars: their standard deviation), so the "
               "curve shows the expectation the inequality is about. The dotted lines are importance-sampled "
               "estimates of log p(x) with many more samples: themselves lower bounds in expectation, the "
               "best we can compute. The average curve was measured when the model was evaluated (model card).")
    widgets.download_json({label: curve for curve, label in curves}, "iwae-bound.json", key="dl_iwae_curve")
    _weights(name, int(index))


@st.cache_data(max_entries=32, show_spinner="Estimating the bounds…")
def _bound_curve(key: str, _model, index: int) -> dict:
    x = mnist_test()[2][[index]]
    g = torch.Generator().manual_seed(0)
    curve = api.bound_curve(_model, x, repeats=2000, generator=g)
    with torch.inference_mode():
        log_p = _model.log_prob(x, k=10_000, chunk=10_000, generator=g).item()
    return {**curve, "log_p": log_p, "k_log_p": 10_000}


def _weights(name: str, index: int) -> None:
    st.markdown("**The normalized importance weights** w̃_i = w_i / Σ_j w_j of 50 samples for this digit: the "
                "IWAE gradient weights each sample by w̃_i, so a few good samples dominate.")
    x = mnist_test()[2][index]
    with torch.inference_mode():
        log_w = bundled_model(name).log_weights(x[None], 50, generator=torch.Generator().manual_seed(1))[:, 0]
    w = torch.softmax(log_w, 0).sort(descending=True).values.numpy()
    fig = plots.bars([str(i + 1) for i in range(len(w))], w, height=300, range_=(0, float(w.max()) * 1.15))
    fig.update_traces(text=None)
    fig.update_layout(xaxis_title="sample, sorted by weight", yaxis_title="normalized weight")
    st.plotly_chart(fig, key="iwae_weights")
    ess = 1.0 / float((w ** 2).sum())
    st.caption(f"Effective sample size 1/Σ w̃² = {ess:.1f} of 50.")


# --- VAE vs IWAE -------------------------------------------------------------------------------
def compare() -> None:
    st.subheader("VAE vs IWAE, trained the same way")
    models = compared()
    if len(models) < 2:
        st.info("The comparison needs the bundled VAE and IWAE checkpoints (vae-mnist-e30, iwae5-mnist-e30, "
                "iwae50-mnist-e30).")
        return
    tests = {n: bundled_metrics(n).get("test", {}) for n in models}
    missing = [n for n, t in tests.items() if not t]
    if missing:
        st.warning(f"Not yet evaluated: {', '.join(missing)} (`python -m engine eval <name>`).")
        return
    st.markdown("Same architecture (784-200-200-50, tanh), same data, optimizer and number of epochs; only the "
                "number of samples k in the training objective differs. NLL is an importance-sampled estimate "
                "with k = 5000 on the first test digits (binarized with seed 0); lower is better.")
    base = np.array(tests[next(iter(models))]["nll_is_per_image"])
    rows = []
    for name, label in models.items():
        t = tests[name]
        diff = np.array(t["nll_is_per_image"]) - base
        rows.append({"model": label, "test NLL (IS, k=5000)": round(t["nll_is"], 2),
                     "± s.e.": round(t["nll_is_stderr"], 2),
                     "vs VAE (paired)": f"{diff.mean():+.2f} ± {diff.std() / math.sqrt(len(diff)):.2f}",
                     "ELBO": round(t["elbo"], 2), "L_50 bound": round(t["iwae_50_bound"], 2),
                     "active units": f"{t['active_units']} / 50", "epochs": bundled_metrics(name)
                     .get("training", {}).get("epochs", "?")})
    st.dataframe(rows, hide_index=True)
    widgets.download_csv(rows, "vae-vs-iwae.csv", key="dl_compare")
    st.caption(f"{tests[next(iter(models))]['nll_is_images']} test digits for the NLL; ELBO and L_50 on all "
               "10,000. Paired: the per-digit NLL difference to the VAE on the same digits, mean ± s.e.")
    cols = st.columns(len(models))
    for col, (name, label) in zip(cols, models.items()):
        with col:
            png = _samples_png(bundled_fingerprint(name), bundled_model(name))
            widgets.image(png, caption=f"{label}: samples (pixel means)", width="stretch")
            widgets.download_png(png, f"{name}-samples.png", key=f"dl_{name}")


@st.cache_data(max_entries=8, show_spinner=False)
def _samples_png(key: str, _model) -> bytes:
    with torch.inference_mode():
        x = _model.sample(36, generator=torch.Generator().manual_seed(0))
    return plots.grid_png(x.reshape(-1, *SHAPE), cols=6, scale=3)
