"""The RBM page's views. Each takes the model source (bundled or the user's) and draws one idea.

Slider-driven figures live in @st.fragment so a slider reruns only its figure; long work (training,
AIS) runs as a background job (app.jobs). All model math is in engine.models.rbm and engine.api.
"""
from __future__ import annotations


import numpy as np
import streamlit as st
import torch

from app import jobs, plots, widgets
from app.model_source import Source, source_picker, use_model
from app.resources import bundled_chains, checkpoint_zip, mnist_test, mnist_train_sample
from app.uploads import BadUpload, to_mnist
from engine import api, chains
from engine.api import filters_as_images, pick

SHAPE = (28, 28)
# The gradient view's model term for a model without kept chains: after 250 sweeps from noise the bundled RBM's
# chains are not at equilibrium yet (mean |gradient| 0.0106 instead of 0.0077 after 1,000)
MODEL_CHAINS, MODEL_SWEEPS = 500, 1000


USER_LABEL = "your trained model"


def model_picker() -> Source | None:
    """Sidebar choice between the bundled RBM(s) and the model trained on this page (None: no model)."""
    return source_picker("rbm", title="RBM shown", user_label=USER_LABEL,
                         describe=lambda m: f"{m.config.n_visible} visible × {m.config.n_hidden} hidden units")


# --- learned filters -------------------------------------------------------------------------
@st.fragment
def filters(source: Source) -> None:
    st.subheader("Learned W: each hidden unit's weights as an image")
    st.markdown("Each tile is one column of **W**: the pattern of pixels a hidden unit looks for. "
                "White is a positive weight, black a negative one, grey zero. "
                "Trained on digits, the units learn local **strokes and edges**.")
    model = source.model
    n_hidden = model.config.n_hidden
    sizes = [s for s in (25, 49, 100, 144, 225, 400) if s <= n_hidden] or [n_hidden]
    c1, c2 = st.columns([2, 1])
    count = c1.select_slider("Number of filters", sizes, value=sizes[min(2, len(sizes) - 1)], key="rbm_nfilters")
    order = c2.radio("Order", ["most selective first", "unit index"], key="rbm_forder", horizontal=False,
                     help="Selective units switch on for some digits and off for others (largest spread of "
                          "p(h=1|v) over test digits); units that are on for every digit come last.")
    png = _filters_png(source.key, model, count, order)
    widgets.image(png, width="content")
    widgets.download_png(png, f"rbm-filters-{count}.png", key="dl_filters")


@st.cache_data(max_entries=32, show_spinner=False)
def _filters_png(key: str, _model, count: int, order: str) -> bytes:
    W = _model.W.detach()
    if order.startswith("most selective"):
        _, spread = _model.selectivity(mnist_test()[2][:2000])
        units = spread.argsort(descending=True)[:count]
    else:
        units = torch.arange(count)
    images = filters_as_images(W[:, units].t(), SHAPE)
    return plots.grid_png(images, cols=int(np.ceil(np.sqrt(count))), scale=3)


# --- decomposition of a new image ------------------------------------------------------------
def features(source: Source) -> None:
    st.subheader("A new image as a sum of features")
    st.markdown("The hidden units that switch on for an image explain it: the reconstruction is the logistic "
                "function of a weighted sum of their filters, weighted by p(h_j = 1 | v).")
    _, _, binary = mnist_test()
    c1, c2 = st.columns([1, 1])
    where = c1.radio("Image", ["test digit", "upload"], horizontal=True, key="rbm_img_src")
    if where == "upload":
        upload = c2.file_uploader("PNG or JPEG, any size; a dark digit on light paper or a light one on dark",
                                  type=["png", "jpg", "jpeg"], key="rbm_upload")
        if upload is None:
            st.info("Upload a picture of a digit to decompose it.")
            return
        try:
            image = to_mnist(upload.getvalue())
        except BadUpload as e:
            st.error(f"Could not use {upload.name}: {e}.")
            return
        v = torch.from_numpy((image > 0.5).astype(np.float32).reshape(-1))
        st.caption("Your upload, fitted into MNIST's 20×20 box and binarized at 0.5:")
        widgets.image(plots.grid_png(np.stack([image, v.reshape(SHAPE).numpy()]), cols=2, scale=4))
    else:
        index = c2.number_input("Test digit (0 to 9,999)", 0, len(binary) - 1,
                                widgets.url_int("digit", 0, len(binary) - 1, 0), key="rbm_digit")
        widgets.share(digit=index)
        v = binary[index]
    _decomposition(source, v)


@st.fragment
def _decomposition(source: Source, v: torch.Tensor) -> None:
    k = st.slider("Features shown", 3, 12, 6, key="rbm_topk")
    parts = source.model.decompose(v, k, baseline=_mean_activity(source.key, source.model))
    terms = " + ".join(f"{p:.2f}\\times f_{{{u}}}" for p, u in zip(parts["p"].tolist(), parts["units"].tolist()))
    st.latex(rf"p(\mathbf v\mid\mathbf h)=\sigma\big({terms}+\dots\big)")
    tiles = np.concatenate([v.reshape(1, *SHAPE).numpy(), filters_as_images(parts["features"], SHAPE).numpy(),
                            parts["reconstruction"].reshape(1, *SHAPE).numpy()])
    png = plots.grid_png(tiles, cols=len(tiles), scale=4)
    widgets.image(png, width="stretch")
    st.caption(f"Left: the binary input. Middle: units {', '.join(map(str, parts['units'].tolist()))}, the hidden "
               "units most active for this image beyond their average over all digits; their weights in the sum "
               "are p(h_j = 1 | v). Right: the reconstruction σ(W p(h|v) + b), using all units.")
    widgets.download_png(png, "rbm-decomposition.png", key="dl_decomp")


@st.cache_data(max_entries=8, show_spinner=False)
def _mean_activity(key: str, _model) -> torch.Tensor:
    return _model.selectivity(mnist_test()[2][:2000])[0]


# --- Gibbs sampling --------------------------------------------------------------------------
@st.fragment
def gibbs(source: Source) -> None:
    st.subheader("Gibbs sampling: alternate h ~ p(h | v) and v ~ p(v | h)")
    st.markdown("Each step samples all hidden units given the image, then all pixels given the hidden units. "
                "Press ▶ or drag the slider under the figure: the frames are computed once and played in your browser. "
                "Each frame shows the mean p(v = 1 | h).")
    c1, c2, c3, c4 = st.columns(4)
    start = c1.radio("Start from", ["noise", "test digits"], key="rbm_gstart")
    steps = c2.select_slider("Gibbs steps", [10, 50, 100, 200, 500, 1000], value=200, key="rbm_gsteps")
    chains = c3.select_slider("Chains", [4, 9, 16, 25], value=16, key="rbm_gchains")
    seed = c4.number_input("Seed", 0, 10_000, 0, key="rbm_gseed")
    frames, labels = _gibbs_frames(source.key, source.model, start, steps, chains, seed)
    st.plotly_chart(plots.animation(frames, labels=labels, height=620), key="gibbs_anim")
    widgets.download_png(plots.grid_png(frames[-1], scale=4), "rbm-gibbs-last.png", key="dl_gibbs")


@st.cache_data(max_entries=16, show_spinner="Running the chains…")
def _gibbs_frames(key: str, _model, start: str, steps: int, chains: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    if start == "noise":
        v0 = (torch.rand(chains, _model.config.n_visible, generator=g) < 0.5).float()
    else:
        test = mnist_test()[2]
        v0 = test[torch.randperm(len(test), generator=g)[:chains]]
    frames = _model.gibbs_frames(v0, steps, generator=g)  # (steps + 1, chains, D)
    keep = np.unique(np.round(np.geomspace(1, steps + 1, 40)).astype(int) - 1)  # dense early, sparse late
    keep = np.unique(np.concatenate([[0], keep, [steps]]))
    return frames[keep].reshape(len(keep), chains, *SHAPE).numpy(), [str(int(s)) for s in keep]


# --- the learning signal ---------------------------------------------------------------------
@st.fragment
def gradient(source: Source) -> None:
    st.subheader("Maximum likelihood: data term minus model term")
    st.latex(r"\frac{\partial L}{\partial W_{ij}}=\mathbf E_{P_{data}}[v_ih_j]-\mathbf E_{P_\theta}[v_ih_j]")
    kept = None if source.user else bundled_chains(source.label)
    chains_text = (f"{len(kept[0])} Gibbs chains run for {int(kept[1]['sweeps']):,} sweeps from noise, drawn once and "
                   "kept with the checkpoint" if kept else
                   f"{MODEL_CHAINS} Gibbs chains run for {MODEL_SWEEPS:,} sweeps from noise, drawn now")
    st.markdown("The data term averages v_i p(h_j = 1 | v) over 2,000 training images; the model term averages the "
                f"same over the model's own samples (here: {chains_text}). Learning raises co-activations the data "
                "shows and lowers those the model dreams up. Shown for one hidden unit j: the maps over the 784 pixels i.")
    model = source.model
    data, dream, rank = _gradient_terms(source.key, model, kept[0] if kept else None)
    unit_rank = st.slider("Hidden unit (ranked by the size of its gradient)", 1, model.config.n_hidden, 1,
                          key="rbm_gunit")
    j = int(rank[unit_rank - 1])
    maps = np.stack([data[:, j], dream[:, j], data[:, j] - dream[:, j]]).reshape(3, *SHAPE)
    st.plotly_chart(plots.heatmaps(maps, [f"E_data[v h_{j}]", f"E_model[v h_{j}]", "difference (the gradient)"],
                                   height=380), key="grad_maps")
    gap = np.abs(data - dream).mean()
    st.caption(f"Unit {j}. Mean |gradient| over all weights: {gap:.4f}; a well-trained model keeps it small.")
    rows = [{"pixel": i, "data_term": float(data[i, j]), "model_term": float(dream[i, j]),
             "gradient": float(data[i, j] - dream[i, j])} for i in range(len(data))]
    widgets.download_csv(rows, f"rbm-gradient-unit-{j}.csv", key="dl_grad")


@st.cache_data(max_entries=8, show_spinner="Sampling the model term…")
def _gradient_terms(key: str, _model, _stored: torch.Tensor | None):
    """Data and model terms (D, F) for the model with cache key `key`; the model term from `_stored` equilibrium
    states when the checkpoint keeps them, else from chains drawn now (about 20 s for 784-500 on 2 cores)."""
    v_model = _stored if _stored is not None else chains.draw(_model, MODEL_CHAINS, MODEL_SWEEPS)
    data, dream = _model.gradient_terms(mnist_train_sample(), v_model)
    rank = (data - dream).abs().sum(0).argsort(descending=True)
    return data.numpy(), dream.numpy(), rank.numpy()


# --- training on the page --------------------------------------------------------------------
def train(source: Source | None) -> None:
    st.subheader("Train your own RBM")
    st.markdown("Contrastive divergence (CD-k) starts the model's chains at the data; persistent CD (PCD) keeps "
                "them running between updates, which follows the model term more faithfully. Training runs in "
                "the background: you can keep using the other views, and cancel keeps the last complete update.")
    with st.form("rbm_train_form", border=True):
        c1, c2, c3 = st.columns(3)
        n_hidden = c1.select_slider("Hidden units", [16, 25, 49, 100, 196, 300, 500], 100)
        rule = c2.radio("Model term from", ["PCD (persistent chains)", "CD (chains start at the data)"])
        k = c3.slider("Gibbs steps per update (k)", 1, 25, 1)
        lr = c1.select_slider("Learning rate", [0.001, 0.005, 0.01, 0.02, 0.05, 0.1], 0.05)
        momentum = c2.slider("Momentum", 0.0, 0.9, 0.5, 0.1)
        decay = c3.select_slider("Weight decay", [0.0, 1e-5, 1e-4, 1e-3], 1e-4)
        epochs = c1.slider("Epochs (50,000 images each)", 1, 30, 3)
        batch = c2.select_slider("Batch size", [20, 50, 100, 200], 100)
        seed = c3.number_input("Seed", 0, 10_000, 0)
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    running = jobs.get("rbm-train")
    if submitted and not (running and running.running):
        settings = {"epochs": epochs, "batch_size": batch, "lr": lr, "k": k, "persistent": rule.startswith("PCD"),
                    "momentum": momentum, "weight_decay": decay, "lr_decay": True, "matmul": "bf16"}
        jobs.start("rbm-train", f"Training a 784-{n_hidden} RBM", _training_work(n_hidden, settings, int(seed)))
    elif submitted:
        st.warning("A training run is already in progress; cancel it first.")
    job = jobs.panel("rbm-train", _draw_training)
    if job is not None and not job.running and job.result is not None:
        _offer_result(job)


def _training_work(n_hidden: int, settings: dict, seed: int):
    def work(job: jobs.Job):
        model = api.new_model_for_training("rbm", {"n_hidden": n_hidden}).to(pick())  # a GPU when present
        trainer = api.make_trainer(model, settings, seed=seed, cancel=job.cancel, log_every=50)
        for update in trainer.run():
            yield update
        job.result = model.cpu().eval().requires_grad_(False)  # the views run on the CPU
        job.meta = {"config": {"n_hidden": n_hidden}, "train": settings, "steps": trainer.step,
                        "epochs": trainer.epoch, "seed": seed}
    return work


def _draw_training(job: jobs.Job) -> None:
    history, preview, _, _ = job.snapshot()
    c1, c2 = st.columns([3, 2])
    with c1:
        st.plotly_chart(plots.curves(history, ["reconstruction_error"], height=230,
                                     y_title="reconstruction error (MSE per pixel)"), key=f"c1-{len(history)}")
        st.plotly_chart(plots.curves(history, ["pseudo_log_likelihood"], height=230,
                                     y_title="pseudo-log-likelihood (nats)"), key=f"c2-{len(history)}")
    with c2:
        if preview is not None:
            widgets.image(plots.grid_png(preview, cols=8, scale=2), caption="The first 64 filters, evolving")
    if history and not job.running:
        widgets.download_csv(history, "rbm-training.csv", key="dl_train")
    if history:
        last = history[-1]
        st.caption(f"Step {last.get('step', 0)}, epoch {last.get('epoch', 0)}, "
                   f"{last.get('examples_per_s', 0):,.0f} images/s. Pseudo-log-likelihood (nats per image) and "
                   "reconstruction error are measured on 1,000 validation digits.")


def _offer_result(job: jobs.Job) -> None:
    model = job.result
    c1, c2 = st.columns(2)
    c1.button("Show this model on every view", type="primary", icon=":material/visibility:",
              on_click=use_model, args=("rbm", USER_LABEL, model))
    c2.download_button("Download checkpoint (.zip)", checkpoint_zip(model, api.rbm_card, job.meta),
                       file_name=f"rbm-784-{model.config.n_hidden}.zip", mime="application/zip",
                       on_click="ignore", icon=":material/download:")


# --- log-likelihood by AIS -------------------------------------------------------------------
def likelihood(source: Source) -> None:
    st.subheader("How good is the model? Estimating log Z with annealed importance sampling")
    st.markdown("log p(v) = −F(v) − log Z needs the partition function Z, a sum over 2^(784+F) states. AIS "
                "anneals from a simple model with known Z to the RBM through intermediate temperatures and "
                "averages importance weights (Salakhutdinov & Murray, 2008). More runs and temperatures give a "
                "tighter estimate.")
    stored = None if source.user else source.metrics.get("test_log_likelihood")
    if stored:
        st.metric("Measured when the bundled model was made (AIS estimate of the test log-likelihood)",
                  f"{stored['test_log_likelihood']:.2f} nats", f"± {stored['test_log_likelihood_stderr']:.2f} (1 s.e.)",
                  delta_color="off", delta_arrow="off",
                  help=f"{stored['n_runs']} AIS runs, {stored['n_betas']} temperatures, on the {stored['split']}.")
    c1, c2, c3 = st.columns([2, 2, 1])
    runs = c1.select_slider("AIS runs", [10, 25, 50, 100, 200, 500], 100, key="rbm_ais_runs")
    betas = c2.select_slider("Temperatures", [1000, 3000, 5000, 10000, 14500, 30000], 3000, key="rbm_ais_betas")
    if c3.button("Estimate", type="primary", icon=":material/play_arrow:", width="stretch"):
        jobs.start("rbm-ais", f"AIS with {runs} runs × {betas} temperatures",
                   _ais_work(source, runs, betas))
    jobs.panel("rbm-ais", _draw_ais)


def _ais_work(source: Source, runs: int, betas: int):
    model = source.model

    def work(job: jobs.Job):
        for update in api.iter_rbm_log_likelihood(model, n_runs=runs, n_betas=betas):
            if "result" in update:
                job.result = {**update["result"], "model": source.label}
            yield {k: v for k, v in update.items() if k != "result"}
    return work


def _draw_ais(job: jobs.Job) -> None:
    history, _, _, _ = job.snapshot()
    if job.result is None:
        if history and "log_z" in history[-1]:
            st.caption(f"Running estimate of log Z: {history[-1]['log_z']:.2f}")
        return
    r = job.result
    c1, c2, c3 = st.columns(3)
    c1.metric("Test log-likelihood (AIS estimate)", f"{r['test_log_likelihood']:.2f} nats",
              f"± {r['test_log_likelihood_stderr']:.2f} (1 s.e.)", delta_color="off", delta_arrow="off")
    c2.metric("log Z", f"{r['log_z']:.2f}", f"± {r['log_z_std']:.3f}", delta_color="off", delta_arrow="off")
    c3.metric("Per pixel", f"{-r['test_log_likelihood'] / 784 / np.log(2):.3f} bits/dim", delta_color="off")
    st.caption(f"Model: {r['model']}. {r['n_runs']} AIS runs, {r['n_betas']} temperatures, on the {r['split']}. "
               "AIS tends to underestimate log Z, so the log-likelihood estimate can be optimistic.")
    widgets.download_json(r, "rbm-ais.json", key="dl_ais")
