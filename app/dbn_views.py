"""The deep belief net page's views: greedy building, features per layer, samples, and the likelihood.

Each view takes the model source (the bundled DBN or the one built on this page) and draws one idea.
All model math is in engine.models.dbn (through engine.api); long work runs as a background job.
"""
from __future__ import annotations

import time

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app import digit_input, jobs, plots, widgets
from app.model_source import Source, source_picker, use_model
from app.resources import bundled_metrics, bundled_model, bundled_names, mnist_test
from engine import api
from engine.api import filters_as_images

SHAPE = (28, 28)
USER_LABEL = "the DBN built on this page"


def model_picker() -> Source | None:
    """Sidebar choice between the bundled DBN(s) and the one built on this page (None: no model)."""
    def describe(model) -> str:
        return (f"Layers: {'-'.join(map(str, model.config.sizes[:model.layers + 1]))} "
                f"({model.layers} RBM{'s' if model.layers > 1 else ''} stacked)")
    return source_picker("dbn", title="DBN shown", user_label=USER_LABEL, describe=describe)


# --- greedy layer-wise building ------------------------------------------------------------------
def build(source: Source | None) -> None:
    st.subheader("Greedy learning: one RBM at a time")
    st.markdown("Train an RBM on the pixels. **Freeze it.** Pass every training digit up through it, "
                "h₁ ~ q(h₁ | v), and train a second RBM on those codes. Freeze that, and so on. The top two layers "
                "stay an undirected RBM; the layers below become directed, generating downwards. After each step "
                "the model's log-likelihood gets a **lower bound** (Hinton, Osindero & Teh 2006): adding a layer "
                "that starts as the transpose of the one below leaves the model unchanged, and training it can "
                "only raise the bound in expectation.")
    if source is not None and not source.user:
        _bundled_steps(source)
    st.markdown("#### Build one yourself")
    with st.form("dbn_build_form", border=True):
        c1, c2, c3 = st.columns(3)
        n1 = c1.select_slider("Layer 1 hidden units", [50, 100, 200, 300, 500], 200)
        n2 = c2.select_slider("Layer 2 hidden units", [50, 100, 200, 300, 500, 784], 200,
                              help="784 = as many as there are pixels: layer 2 then starts as the transpose of "
                                   "layer 1, which leaves the model unchanged (Hinton et al. 2006).")
        n3 = c3.select_slider("Layer 3 hidden units (0: none)", [0, 50, 100, 200, 300], 0)
        epochs = c1.slider("Epochs per layer (50,000 digits each)", 1, 10, 2)
        rule = c2.radio("Model term from", ["CD-1 (chains start at the data)", "PCD-1 (persistent chains)"])
        lr = c3.select_slider("Learning rate", [0.005, 0.01, 0.02, 0.05, 0.1], 0.05)
        seed = c1.number_input("Seed", 0, 10_000, 0)
        submitted = st.form_submit_button("Build, layer by layer", type="primary", icon=":material/play_arrow:")
    running = jobs.get("dbn-build")
    if submitted and not (running and running.running):
        sizes = [784, n1, n2] + ([n3] if n3 else [])
        settings = {"batch_size": 100, "lr": lr, "k": 1, "persistent": rule.startswith("PCD"), "momentum": 0.5,
                    "weight_decay": 1e-4, "lr_decay": True, "matmul": "fp32"}
        jobs.start("dbn-build", f"Building a {'-'.join(map(str, sizes))} DBN", _build_work(sizes, epochs, settings,
                                                                                            int(seed)))
    elif submitted:
        st.warning("A build is already running; cancel it first.")
    job = jobs.panel("dbn-build", _draw_build)
    if job is not None and not job.running and job.result is not None:
        st.button("Show this DBN on every view", type="primary", icon=":material/visibility:",
                  on_click=_use_model, args=(job.result, job.meta.get("steps", [])))


def _bundled_steps(source: Source) -> None:
    """Every bundled DBN's steps in one table: layer 1 (the RBM they share), then each one's layer 2."""
    rows = []
    for name in bundled_names("dbn"):
        metrics, model = bundled_metrics(name), bundled_model(name)
        base, ll = metrics.get("base_rbm", {}).get("test_log_likelihood"), metrics.get("test_log_likelihood")
        if base and not rows:
            rows.append({"step": 1, "model": f"RBM {model.config.sizes[0]}-{model.config.sizes[1]} "
                         f"({model.config.base_rbm})", "test log-likelihood (nats)": f"{base['test_log_likelihood']:.2f} "
                         f"± {base['test_log_likelihood_stderr']:.2f}", "estimator": "AIS estimate"})
        if ll:
            sizes = model.config.sizes
            start = "transpose of layer 1" if sizes[2] == sizes[0] else "small random weights"
            rows.append({"step": model.layers, "model": f"DBN {'-'.join(map(str, sizes))} ({name}; layer 2 starts "
                         f"as {start})", "test log-likelihood (nats)": f"≥ {ll['lower_bound']:.2f} ± "
                         f"{ll['lower_bound_stderr']:.2f}", "estimator": "lower bound (AIS log Z)"})
    if rows:
        st.markdown(f"**The bundled models, step by step** (on the {mnist_split()}). Greedy learning guarantees "
                    "nothing for a layer that starts from random weights: its bound can fall below the RBM it "
                    "sits on, while the layer that starts as the transpose keeps the RBM's value and improves it.")
        st.dataframe(rows, hide_index=True, width="stretch")


def mnist_split() -> str:
    return api.mnist.describe()


def _build_work(sizes: list[int], epochs: int, settings: dict, seed: int):
    def work(job: jobs.Job):
        test = mnist_test()[2][:1000]
        model = api.new_model_for_training("dbn", {"sizes": sizes})
        layers, steps = len(sizes) - 1, []
        job.meta = {"steps": steps, "sizes": sizes}
        for layer in range(1, layers + 1):
            layer_epochs = [epochs if i == layer - 1 else 0 for i in range(layers)]
            trainer = api.make_trainer(model, {**settings, "epochs": epochs, "layer_epochs": layer_epochs},
                                       seed=seed + layer, cancel=job.cancel, log_every=50)
            start = time.time()
            for update in trainer.run():
                yield {**update, "progress": (layer - 1 + 0.8 * update["progress"]) / layers}
            if job.cancel.is_set():
                break
            for update in api.iter_dbn_evaluation(model, test=test, n_runs=20, n_betas=1000, bound_k=5,
                                                  is_k=200, is_images=100, seed=seed):
                yield {"progress": (layer - 0.2 + 0.2 * update["progress"]) / layers}
            steps.append({**update["result"], "seconds": time.time() - start, "filters": _step_filters(model)})
        job.result = model.eval().requires_grad_(False)
    return work


def _step_filters(model) -> np.ndarray:
    """The newest layer's 36 most varied units as pixel images (positive-weighted sums above layer 1)."""
    filters = model.filters(model.layers)
    order = filters.std(1).argsort(descending=True)[:36]
    return filters_as_images(filters[order], SHAPE).numpy()


def _draw_build(job: jobs.Job) -> None:
    history, preview, _, _ = job.snapshot()
    steps = job.meta.get("steps", [])
    for i, step in enumerate(steps):
        _draw_step(i + 1, step, steps[i - 1] if i else None)
    if job.running:
        layer = int(history[-1].get("layer", len(steps) + 1)) if history else len(steps) + 1
        c1, c2 = st.columns([3, 2])
        with c1:
            rows = [h for h in history if h.get("layer") == layer]
            st.plotly_chart(plots.curves(rows, ["reconstruction_error"], height=240,
                                         y_title=f"layer {layer}: reconstruction error"), key=f"bc-{len(history)}")
        with c2:
            if preview is not None:
                widgets.image(plots.grid_png(preview[:36], cols=6, scale=2),
                              caption=f"Layer {layer}'s features, evolving")
    if len(steps) > 1:
        st.plotly_chart(_bound_figure(steps), key="dbn_build_bounds")
    if steps and not job.running:
        widgets.download_csv([{k: v for k, v in s.items() if not isinstance(v, (np.ndarray, list))} for s in steps],
                             "dbn-build.csv", key="dl_build")


def _draw_step(layer: int, step: dict, before: dict | None) -> None:
    sizes = "-".join(map(str, step["sizes"]))
    c1, c2 = st.columns([2, 3])
    with c1:
        st.markdown(f"**Step {layer}: {'RBM' if layer == 1 else 'DBN'} {sizes}** "
                    f"({'trained' if layer == 1 else 'layer ' + str(layer) + ' trained on q(h | v), layers below frozen'}"
                    f", {step['seconds']:.0f} s)")
        if layer == 1:
            st.metric("Test log-likelihood (cheap AIS estimate)", f"{step['lower_bound']:.2f} nats")
        else:
            delta = step["lower_bound"] - before["lower_bound"] if before else None
            st.metric("Lower bound on the test log-likelihood", f"{step['lower_bound']:.2f} nats",
                      None if delta is None else f"{delta:+.2f} vs step {layer - 1}", delta_color="normal")
            st.caption(f"Importance-sampled estimate (k = {step['is_k']}, {step['is_images']} digits): "
                       f"{step['is_estimate']:.2f} nats, where the bound is {step['same_images_lower_bound']:.2f}.")
        st.caption(f"First 1,000 test digits; top RBM's log Z by cheap AIS ({step['n_runs']} runs × "
                   f"{step['n_betas']:,} temperatures: noisy, and AIS tends to overstate the likelihood).")
    with c2:
        what = "W₁ filters" if layer == 1 else "units as positive-weighted sums of layer-1 filters"
        widgets.image(plots.grid_png(step["filters"], cols=12, scale=2), caption=f"Layer {layer}: {what}")


def _bound_figure(steps: list[dict]) -> go.Figure:
    x = [f"step {i + 1}: {'-'.join(map(str, s['sizes']))}" for i, s in enumerate(steps)]
    fig = go.Figure(go.Scatter(x=x, y=[s["lower_bound"] for s in steps], mode="lines+markers+text",
                               text=[f"{s['lower_bound']:.1f}" for s in steps], textposition="top center",
                               name="lower bound"))
    values = [s["lower_bound"] for s in steps]
    pad = 0.15 * (max(values) - min(values)) + 1
    fig.update_yaxes(range=[min(values) - pad, max(values) + pad])
    fig.update_layout(yaxis_title="test log-likelihood bound (nats)", height=300,
                      margin=dict(l=10, r=10, t=30, b=10), font=plots.FONT)
    return fig


def _use_model(model, steps: list[dict]) -> None:
    """Button callback: the built DBN on every view, with the test numbers of its last building step."""
    evaluation = {k: v for k, v in steps[-1].items() if k != "filters"} if steps else None
    use_model("dbn", USER_LABEL, model, metrics={"test_log_likelihood": evaluation})


# --- features per layer ----------------------------------------------------------------------------
@st.fragment
def features(source: Source) -> None:
    model = source.model
    st.subheader("What each layer has learned")
    layers = list(range(1, model.layers + 1))
    c1, c2 = st.columns([1, 2])
    layer = c1.radio("Layer", layers, index=widgets.url_int("layer", 1, len(layers), len(layers)) - 1,
                     horizontal=True, key="dbn_layer", format_func=lambda l: f"layer {l}",
                     help=" · ".join(f"layer {l}: {model.config.sizes[l]} units" for l in layers))
    widgets.share(layer=layer)
    count = c2.select_slider("Units shown", [16, 36, 64, 100], 36, key="dbn_nunits")
    units = _selective_units(source.key, model, layer)[:count]
    cols = int(np.ceil(np.sqrt(count)))
    if layer == 1:
        st.markdown("Each tile is one column of **W₁**: the pixels a first-layer unit looks for (white positive, black "
                    "negative, grey zero). Strokes and blobs, as in the RBM. Most selective units first.")
        png = plots.grid_png(filters_as_images(model.filters(1)[units], SHAPE), cols=cols, scale=3)
        widgets.image(png)
        widgets.download_png(png, "dbn-layer1.png", key="dl_l1")
        return
    st.markdown(f"A layer-{layer} unit sees pixels only through the layers below. Two ways to draw it: **left**, the "
                "sum of the layer-1 filters it connects to, weighted by its positive weights (W₁ relu(W₂)…); "
                "**right**, a top-down pass with that unit alone switched on: p(h₁ | h₂ = e_j) and then p(v | h₁) "
                "as probabilities (one unit alone is a weak signal, so each picture is scaled to its brightest "
                "pixel). Same units, same order, most selective first.")
    left = filters_as_images(model.filters(layer)[units], SHAPE)
    right = model.top_down_images(layer, units).reshape(-1, *SHAPE)
    right = right / right.amax(dim=(1, 2), keepdim=True).clamp_min(1e-6)  # each to its own maximum
    c1, c2 = st.columns(2)
    png_l, png_r = plots.grid_png(left, cols=cols, scale=3), plots.grid_png(right, cols=cols, scale=3)
    with c1:
        widgets.image(png_l, caption="Positive-weighted sums of layer-1 filters")
    with c2:
        widgets.image(png_r, caption="Top-down pass from the unit alone: p(v = 1 | h₁), each scaled to its maximum")
    widgets.download_zip({f"dbn-layer{layer}-sums.png": png_l, f"dbn-layer{layer}-topdown.png": png_r},
                         f"dbn-layer{layer}.zip", key="dl_l2")
    if layer == 2 and model.config.sizes[2] == model.config.sizes[0]:
        st.info("In this DBN, layer 2 started as the transpose of layer 1, so each of its 784 units began as one "
                "pixel, and a short run at a small learning rate kept it close: that start is what keeps the bound "
                "(see the likelihood view), and it is why these units still look like single pixels. Choose "
                "dbn-mnist-wide in the sidebar for a layer 2 that learned its own parts from random weights.")
    if layer == 2:
        _one_unit(model, units)


def _one_unit(model, units: torch.Tensor) -> None:
    rank = st.slider("One unit, taken apart (rank in the grids above)", 1, len(units), 1, key="dbn_unit")
    j = int(units[rank - 1])
    w = model.rbms[1].W[:, j]
    top = w.argsort(descending=True)[:8]
    terms = " + ".join(f"{w[i]:.2f}\\,f_{{{int(i)}}}" for i in top[:4])
    st.latex(rf"\text{{unit }}{j}:\quad \sum_i \max(W^{{(2)}}_{{ij}},0)\,f_i = {terms} + \dots")
    tiles = np.concatenate([filters_as_images(model.filters(1)[top], SHAPE).numpy(),
                            filters_as_images(model.filters(2)[j:j + 1], SHAPE).numpy()])
    widgets.image(plots.grid_png(tiles, cols=len(tiles), scale=3), width="stretch")
    st.caption(f"Unit {j}'s eight strongest layer-1 parts (weights {', '.join(f'{w[i]:.2f}' for i in top)}), "
               "and on the right their positive-weighted sum over all layer-1 units.")


@st.cache_data(max_entries=16, show_spinner=False)
def _selective_units(key: str, _model, layer: int) -> torch.Tensor:
    """Units of `layer` by the spread of their activity over 2,000 test digits (largest first)."""
    probs = _model.up_probs(mnist_test()[2][:2000], layer)[-1]
    return probs.std(0).argsort(descending=True)


# --- samples: a Gibbs chain in the top RBM, pushed down ----------------------------------------------
@st.fragment
def samples(source: Source) -> None:
    model = source.model
    st.subheader("Sampling: Gibbs in the top RBM, then one pass down")
    st.markdown(f"Only the top two layers ({model.config.sizes[model.layers - 1]} and "
                f"{model.config.sizes[model.layers]} units) form an RBM, so only they need a Markov chain. Each "
                "frame takes the chain's current top state and pushes it down through the directed layers by one "
                "stochastic pass, h₁ ~ p(h₁ | h₂), and shows the pixel probabilities p(v = 1 | h₁).")
    c1, c2, c3, c4 = st.columns(4)
    options = [10, 50, 100, 200, 500, 1000, 2000, 5000]
    steps = c1.select_slider("Gibbs steps in the top RBM", options,
                             int(widgets.url_choice("steps", [str(o) for o in options], "1000")), key="dbn_steps")
    chains = c2.select_slider("Chains", [4, 8, 16], 8, key="dbn_chains")
    start = c3.radio("Chains start from", ["noise", "test digits passed up"], key="dbn_start")
    seed = c4.number_input("Seed", 0, 10_000, 0, key="dbn_seed")
    widgets.share(steps=steps)
    frames, marks = _chain_frames(source.key, model, steps, chains, start, int(seed))
    strip_at = np.unique(np.round(np.geomspace(1, steps + 1, 10)).astype(int) - 1)
    strip = frames[[marks.index(s) for s in strip_at]]  # (T, chains, 28, 28)
    png = plots.grid_png(strip.transpose(1, 0, 2, 3).reshape(-1, *SHAPE), cols=len(strip_at), scale=3)
    st.markdown("**Filmstrip**: one chain per row; columns after " + ", ".join(map(str, strip_at)) + " Gibbs steps.")
    widgets.image(png, width="stretch")
    widgets.download_png(png, "dbn-filmstrip.png", key="dl_strip")
    st.markdown("**Played in your browser**: all chains, frame by frame (press ▶ or drag the slider).")
    st.plotly_chart(plots.animation(frames, labels=[f"{s} steps" for s in marks], cols=4 if chains <= 8 else 8, height=520,
                                    name="Gibbs steps"), key="dbn_anim")


@st.cache_data(max_entries=16, show_spinner="Running the top RBM's chains…")
def _chain_frames(key: str, _model, steps: int, chains: int, start: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    marks = np.unique(np.concatenate([np.round(np.geomspace(1, steps + 1, 40)).astype(int) - 1,
                                      np.round(np.geomspace(1, steps + 1, 10)).astype(int) - 1]))
    h_start = None
    if start != "noise":
        test = mnist_test()[2]
        v0 = test[torch.randperm(len(test), generator=g)[:chains]]
        h_start = _model.up_sample(v0, _model.layers - 1, g)[-1] if _model.layers > 1 else v0
    frames = _model.top_gibbs_frames(chains, marks.tolist(), generator=g, start=h_start)
    return frames.reshape(len(marks), chains, *SHAPE).numpy(), marks.tolist()


# --- the likelihood, told honestly ------------------------------------------------------------------
def likelihood(source: Source) -> None:
    st.subheader("The likelihood: a bound and an estimate, never the exact value")
    st.markdown("A DBN's p(v) sums over every hidden layer below the top, and the true posterior over them is "
                "intractable. Salakhutdinov & Murray (2008) bound it with the factorial q(h₁ | v) = "
                "σ(a₁ + W₁ᵀv) that the recognition (transposed) weights give, and estimate the top RBM's log Z "
                "by AIS. Averaging the same weights inside the log gives an importance-sampled estimate that "
                "approaches log p(v) as the number of samples k grows.")
    st.latex(r"\log p(\mathbf v)\;\ge\;\mathbb E_{q(\mathbf h_1\mid\mathbf v)}\big[\log p(\mathbf v\mid\mathbf h_1)"
             r"+\log p^*(\mathbf h_1)-\log q(\mathbf h_1\mid\mathbf v)\big]-\log\mathcal Z_{top}")
    st.latex(r"\log p(\mathbf v)\approx\log\frac1k\sum_{s=1}^k w_s,\ \ \log w_s=[\dots](\mathbf h_1^{(s)})"
             r"-\log\mathcal Z_{top}")
    ev = source.metrics.get("test_log_likelihood")
    if not ev:
        st.warning("This model has no measured log Z yet, so no bound can be shown. Evaluate it with "
                   "`python -m engine eval <folder>`.")
        return
    _headline(source, ev)
    st.divider()
    _one_image(source, ev)


def _headline(source: Source, ev: dict) -> None:
    c1, c2, c3 = st.columns(3)
    base = source.metrics.get("base_rbm", {}).get("test_log_likelihood")
    if base:
        c1.metric("Layer 1 alone (the RBM): AIS estimate", f"{base['test_log_likelihood']:.2f} nats",
                  f"± {base['test_log_likelihood_stderr']:.2f}", delta_color="off", delta_arrow="off")
    c2.metric("DBN: variational lower bound", f"{ev['lower_bound']:.2f} nats", f"± {ev['lower_bound_stderr']:.2f}",
              delta_color="off", delta_arrow="off",
              help=f"Mean over {ev['lower_bound_images']:,} test digits of {ev['lower_bound_k']} samples of q each.")
    c3.metric(f"DBN: IS estimate, k = {ev['is_k']:,}", f"{ev['is_estimate']:.2f} nats",
              f"± {ev['is_estimate_stderr']:.2f}", delta_color="off", delta_arrow="off",
              help=f"First {ev['is_images']:,} test digits, where the bound is {ev['same_images_lower_bound']:.2f}.")
    st.caption(f"Per test digit, in nats, on the {ev.get('split', mnist_split())}. log Z of the top RBM = "
               f"{ev['log_z']:.2f} ± {ev['log_z_std']:.2f} (AIS, {ev['n_runs']} runs × {ev['n_betas']:,} "
               "temperatures); AIS tends to underestimate log Z, which makes both numbers optimistic. The papers "
               "used the fixed binarization of Larochelle & Murray, not available here; Salakhutdinov & Murray "
               "(2008) report a bound of -86.22 for a 784-500-2000 DBN.")


def _one_image(source: Source, ev: dict) -> None:
    st.markdown("#### One digit: the bound and the estimate as k grows")
    c1, c2 = st.columns([1, 2])
    with c1:
        grey = digit_input.digit("dbn_like", "Digit", widgets.url_int("digit", 0, 9999, 0))
    if grey is None:
        return
    if st.session_state.get("dbn_like_src", "test digit") == "test digit":  # its seeded test binarization
        index = int(st.session_state.get("dbn_like_idx", 0))
        widgets.share(digit=index)
        v = mnist_test()[2][index]
    else:  # an upload or a drawing, binarized at 0.5
        v = (grey > 0.5).float()
    with c1:
        widgets.image(plots.png(v.reshape(SHAPE), scale=5), caption="The binary digit scored")
    k = c2.select_slider("Samples of q (k)", [1, 10, 100, 1000, 10000], 1000, key="dbn_k")
    log_w = _log_weights(source.key, source.model, v.numpy().tobytes(), ev["log_z"])  # (10000,)
    running = np.logaddexp.accumulate(log_w) - np.log(np.arange(1, len(log_w) + 1))
    bound = float(log_w.mean())
    with c2:
        m1, m2, m3 = st.columns(3)
        m1.metric("Bound: mean log w", f"{bound:.2f} nats")
        m2.metric(f"IS estimate, k = {k:,}", f"{running[k - 1]:.2f} nats")
        m3.metric("Gap at this k", f"{running[k - 1] - bound:.2f} nats",
                  help="IS estimate minus bound: a lower estimate of KL(q || p(h | v)), the price of the factorial q.")
        st.plotly_chart(_k_figure(running, bound, k), key="dbn_kcurve")
    st.caption("Both subtract the same AIS log Z. The estimate is itself biased low for finite k (Jensen), but "
               "converges to log p(v) as k → ∞; the bound does not move with k.")


@st.cache_data(max_entries=32, show_spinner="Sampling q(h | v) 10,000 times…")
def _log_weights(key: str, _model, v_bytes: bytes, log_z: float) -> np.ndarray:
    v = torch.from_numpy(np.frombuffer(v_bytes, dtype=np.float32).copy())[None]
    g = torch.Generator().manual_seed(0)
    log_w = torch.cat([_model.log_weights(v, 2000, generator=g) for _ in range(5)], 1)
    return (log_w[0].double() - log_z).numpy()


def _k_figure(running: np.ndarray, bound: float, k: int) -> go.Figure:
    ks = np.unique(np.round(np.geomspace(1, len(running), 120)).astype(int))
    fig = go.Figure([
        go.Scatter(x=ks, y=running[ks - 1], mode="lines", name="IS estimate log (1/k) Σ w", line=dict(width=3)),
        go.Scatter(x=[1, len(running)], y=[bound, bound], mode="lines", name="lower bound E_q[log w]",
                   line=dict(dash="dash", width=3)),
        go.Scatter(x=[k], y=[running[k - 1]], mode="markers", name=f"k = {k:,}", marker=dict(size=14)),
    ])
    fig.update_layout(xaxis_type="log", xaxis_title="samples of q (k)", yaxis_title="log p(v) (nats)", height=330,
                      legend=dict(orientation="h", y=1.18), margin=dict(l=10, r=10, t=40, b=10), font=plots.FONT)
    return fig
