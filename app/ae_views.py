"""The Autoencoders page's views: the shallow AE, the linear AE finding PCA's subspace (a live job), the deep
AE against PCA(30), 2-D codes, and retrieval in code space.

All math is in engine.models.autoencoder and engine.pca (through engine.api); this module only caches,
lays out and draws. Bundled models come from app.resources; nothing trains on page load.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app import jobs, plots, widgets
from app.resources import bundled_fingerprint, bundled_model, bundled_names, mnist_test
from engine import api
from engine.api import filters_as_images

SHAPE, FACE_SHAPE = (28, 28), (25, 25)
DEEP, TWO_D, FACES = "ae-mnist-deep", "ae-mnist-2d", "ae-faces"
PRESETS = {DEEP: "deep", TWO_D: "deep2d", FACES: "faces"}
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


def require_mnist() -> None:
    try:
        mnist_test()
    except api.DatasetUnavailable as e:
        st.error(f"MNIST is not available, so this page cannot run. {e}")
        st.stop()


@st.cache_resource(show_spinner="Fitting PCA on the 50,000 training digits…")
def pca_all() -> api.PCA:
    """Every principal component of the MNIST training images (shared, read-only); truncate() for PCA(K)."""
    return api.fit_pca(api.mnist.images("train"), 784)


def bundled_ae(name: str):
    """The bundled autoencoder `name`, or None with a message saying why it is not shown."""
    if name not in bundled_names("autoencoder"):
        st.info(f"The bundled autoencoder {name!r} is not installed. Train it with "
                f"`python -m engine train autoencoder --preset {PRESETS.get(name, 'deep')} "
                f"--out assets/checkpoints/{name}` and then `python -m engine eval assets/checkpoints/{name}`.")
        return None
    try:
        return bundled_model(name)
    except api.CheckpointError as e:
        st.error(f"The bundled checkpoint {name!r} cannot be loaded: {e}")
        return None


def rows_png(rows: list[np.ndarray], scale: int = 3, shape: tuple[int, int] = SHAPE) -> bytes:
    """Image rows [(n, H*W), ...] stacked into one grid PNG, one row each."""
    n = len(rows[0])
    return plots.grid_png(np.concatenate(rows).reshape(-1, *shape), cols=n, scale=scale)


# --- shallow autoencoder ---------------------------------------------------------------------
@st.fragment
def shallow() -> None:
    st.subheader("An autoencoder with D inputs, D outputs and K < D hidden units")
    st.latex(r"y_j=\sum_{k=1}^K D_{jk}\,z_k\qquad z_k=\sigma\Big(\sum_{i=1}^D W_{ki}\,x_i\Big)\qquad j=1,\dots,D")
    st.latex(r"E(W,D)=\frac12\sum_{n=1}^N\big\|\mathbf y(\mathbf x_n,W,D)-\mathbf x_n\big\|^2")
    st.markdown("The encoder squeezes the D = 784 pixels through K hidden units and the decoder adds up K images "
                "to rebuild the digit. With K < D the network cannot learn the identity: it has to keep what "
                "matters. If the hidden and output layers are **linear**, the best it can do is the span of the "
                "first K principal components, so PCA's reconstructions below are the best any linear "
                "K-unit autoencoder can reach. Drag K to see how much a bottleneck keeps.")
    k = st.select_slider("Hidden units K", [1, 2, 5, 10, 20, 30, 50, 100, 200, 784], 30, key="ae_shallow_k")
    x = mnist_test()[0][:10]
    pca = pca_all().truncate(k)
    x_hat = pca.reconstruct(x).clamp(0, 1)
    errors = api.squared_error(x, pca.reconstruct(x))
    png = rows_png([x.numpy(), x_hat.numpy()], scale=4)
    widgets.image(png, width="stretch")
    st.caption(f"Top: test digits. Bottom: the best linear reconstruction through K = {k} units (PCA). Squared "
               f"error per image: {', '.join(f'{e:.1f}' for e in errors.tolist())} (mean {errors.mean():.2f}).")
    widgets.download_png(png, f"ae-bottleneck-k{k}.png", key="dl_ae_shallow")


# --- linear autoencoder = PCA subspace (live training) ----------------------------------------
def linear() -> None:
    st.subheader("A linear autoencoder spans the principal subspace")
    st.markdown("Train an autoencoder with K hidden units on MNIST and watch the **principal angles** between "
                "the span of its K decoder images and the span of the top K principal components: they fall "
                "towards 0° (Baldi & Hornik, 1989). Its basis images differ from PCA's, being mixtures of "
                "them: same subspace, different coordinates.")
    with st.form("ae_linear_form"):
        c1, c2, c3, c4 = st.columns([3, 3, 3, 1])
        k = c1.select_slider("Hidden units K", [2, 5, 10, 20, 30], 10, key="ae_lin_k")
        kind = c2.radio("Encoder", ["linear", "sigmoid (the slide's)"], key="ae_lin_kind", horizontal=True)
        epochs = c3.slider("Epochs (50,000 images each)", 1, 20, 10, key="ae_lin_epochs")
        seed = c4.number_input("Seed", 0, 10_000, 0, key="ae_lin_seed")
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    running = jobs.get("ae-linear")
    if submitted and not (running and running.running):
        jobs.start("ae-linear", f"Training a 784-{k}-784 {kind.split()[0]} autoencoder",
                   _linear_work(k, kind.startswith("sigmoid"), epochs, pca_all().truncate(k), int(seed)))
    elif submitted:
        st.warning("A training run is already in progress; cancel it first.")
    if jobs.panel("ae-linear", _draw_linear) is None:
        st.info("Press **Start training**: a few seconds per epoch on one CPU core.")


LR = 1e-2


def _linear_work(k: int, sigmoid: bool, epochs: int, pca: api.PCA, seed: int = 0):
    def work(job: jobs.Job):
        act = "sigmoid" if sigmoid else "linear"
        with torch.random.fork_rng():  # seeded initial weights; the global RNG state is restored after
            torch.manual_seed(seed)
            model = api.new_model_for_training("autoencoder", {"hidden": (), "code": k, "activation": act,
                                                               "code_activation": act, "output": "linear"})
        trainer = api.make_trainer(model, {"epochs": epochs, "batch_size": 200, "lr": LR}, cancel=job.cancel,
                                   log_every=50, seed=seed)
        job.meta = {"k": k, "pca": filters_as_images(pca.components, SHAPE).numpy()}
        for update in trainer.run():
            for group in trainer.optimizers[0].param_groups:  # Adam's step size falls linearly to 0: less SGD noise
                group["lr"] = LR * (1 - update["progress"])
            angles = api.principal_angles(model.decoder_basis(), pca.components.t())
            yield {**update, "preview": model.preview(k), "largest_angle": float(angles.max()),
                   "mean_angle": float(angles.mean())}
    return work


def _draw_linear(job: jobs.Job) -> None:
    history, preview, _, _ = job.snapshot()
    st.plotly_chart(plots.curves(history, ["largest_angle", "mean_angle"], height=300,
                                 y_title="principal angle (degrees)"), key=f"ae_angles-{len(history)}")
    if history:
        last, k, lam = history[-1], job.meta["k"], pca_all().variances
        st.caption(f"Step {last['step']}: largest angle {last['largest_angle']:.1f}°, mean {last['mean_angle']:.1f}°; "
                   f"held-out squared error {last.get('squared_error', float('nan')):.2f} per image "
                   f"(PCA({job.meta['k']}): {_pca_error(job.meta['k']):.2f}). The largest angle closes slowest when "
                   f"the K-th and (K+1)-th eigenvalues are close (here {lam[k - 1]:.2f} and {lam[k]:.2f}): the "
                   "last direction then barely changes the error. The loss has no bad local minima but has "
                   "saddle points; if an angle stays near 90° while the error is above PCA's, try another seed.")
    c1, c2 = st.columns(2)
    if preview is not None:
        cols = len(preview) if len(preview) <= 5 else min(10, (len(preview) + 1) // 2)
        ae_png = plots.grid_png(preview, cols=cols, scale=3)
        pc_png = plots.grid_png(job.meta["pca"], cols=cols, scale=3)
        with c1:
            widgets.image(ae_png, caption="Autoencoder: its K decoder images (grey = 0)", width="stretch")
            widgets.download_png(ae_png, "ae-linear-basis.png", key="dl_ae_basis")
        with c2:
            widgets.image(pc_png, caption="PCA: the top K principal components", width="stretch")
            widgets.download_png(pc_png, "pca-basis.png", key="dl_pca_basis")
    if history and not job.running:
        widgets.download_csv(history, "ae-linear-angles.csv", key="dl_ae_angles")


@st.cache_data(show_spinner=False)
def _pca_error(k: int) -> float:
    x = api.mnist.images("valid")[:1000]
    return float(api.squared_error(x, pca_all().truncate(k).reconstruct(x)).mean())


# --- deep autoencoder vs PCA(30) ---------------------------------------------------------------
@st.cache_data(max_entries=4, show_spinner="Reconstructing the 10,000 test digits…")
def _test_errors(key: str, _model) -> tuple[np.ndarray, np.ndarray]:
    """Per-image squared errors on the test set: (deep AE (N,), PCA with as many components (N,))."""
    x = mnist_test()[0]
    pca = pca_all().truncate(_model.config.code)
    with torch.inference_mode():
        return _model.squared_error(x).numpy(), api.squared_error(x, pca.reconstruct(x)).numpy()


def deep() -> None:
    data = st.segmented_control("Data", ["mnist", "faces"], key="ae_deep_data", default="mnist", required=True,
                                format_func={"mnist": "MNIST digits", "faces": "Olivetti faces"}.get)
    if data == "faces":
        faces()
        return
    st.subheader("Deep autoencoder 784-1000-500-250-30 vs PCA with 30 components")
    model = bundled_ae(DEEP)
    if model is None:
        return
    ae_err, pca_err = _test_errors(bundled_fingerprint(DEEP), model)
    c1, c2, c3 = st.columns(3)
    c1.metric("Deep autoencoder (test mean)", f"{ae_err.mean():.2f}", "paper: 3.00", delta_color="off", delta_arrow="off")
    c2.metric("PCA(30) (test mean)", f"{pca_err.mean():.2f}", "paper: 13.87", delta_color="off", delta_arrow="off")
    c3.metric("Ratio", f"{ae_err.mean() / pca_err.mean():.2f}", "target: at most 0.5", delta_color="off",
              delta_arrow="off")
    st.caption("Squared error per image, summed over the 784 grey-level pixels, averaged over the 10,000 MNIST "
               "test digits; PCA fitted on the 50,000 training digits.")
    _deep_rows(model, ae_err, pca_err)


@st.fragment
def _deep_rows(model, ae_err: np.ndarray, pca_err: np.ndarray) -> None:
    c1, c2 = st.columns([1, 3])
    seed = c1.number_input("Digits (seed)", 0, 10_000, 0, key="ae_deep_seed")
    idx = torch.randperm(len(ae_err), generator=torch.Generator().manual_seed(int(seed)))[:10]
    x = mnist_test()[0][idx]
    with torch.inference_mode():
        rows = [x.numpy(), model(x).numpy(), pca_all().truncate(30).reconstruct(x).clamp(0, 1).numpy()]
    c2.markdown("**Rows:** test digits · deep-autoencoder reconstructions · PCA(30) reconstructions")
    _rows_and_errors(rows, idx.tolist(), ae_err, pca_err, f"ae-vs-pca-{seed}", "ae_deep", SHAPE)


def _rows_and_errors(rows, idx: list[int], ae_err, pca_err, stem: str, key: str, shape) -> None:
    """The image rows, the squared error of each shown image for both, and downloads (PNG, CSV)."""
    png = rows_png(rows, scale=4, shape=shape)
    widgets.image(png, width="stretch")
    table = [{"squared error": name, **{f"#{i}": round(float(err[i]), 2) for i in idx}}
             for name, err in (("deep AE", ae_err), ("PCA(30)", pca_err))]
    st.dataframe(table, hide_index=True, width="stretch")
    d1, d2 = st.columns(2)
    with d1:
        widgets.download_png(png, f"{stem}.png", key=f"dl_{key}")
    with d2:
        widgets.download_csv(table, f"{stem}.csv", key=f"dl_{key}_csv")


@st.cache_data(max_entries=4, show_spinner="Reconstructing the 80 held-out faces…")
def _face_results(key: str, _model) -> dict[str, np.ndarray]:
    """Held-out faces (N, 625), their deep-AE and PCA reconstructions, and each image's squared errors;
    PCA with as many components as the code, fitted on the training faces."""
    train, test = api.faces.images("train"), api.faces.images("test")
    pca = api.fit_pca(train, _model.config.code)
    with torch.inference_mode():
        ae, pc = _model(test), pca.reconstruct(test)
    return {"x": test.numpy(), "ae": ae.numpy(), "pca": pc.clamp(0, 1).numpy(),
            "ae_err": api.squared_error(test, ae).numpy(), "pca_err": api.squared_error(test, pc).numpy()}


def faces() -> None:
    st.subheader("Deep autoencoder 625-2000-1000-500-30 vs PCA(30) on Olivetti faces")
    if not api.faces.available():
        st.info(f"The Olivetti faces are not installed, so this comparison cannot be shown. Put "
                f"`{api.faces.FILE}` (the 64x64 Olivetti faces, 400 images) in a `faces` folder under the "
                "folder named by the `DGM_DATA_DIR` environment variable, or in `../shared/data/faces` next "
                "to the checkout, and reload.")
        return
    model = bundled_ae(FACES)
    if model is None:
        return
    try:
        r = _face_results(f"{bundled_fingerprint(FACES)}:{api.faces.path()}", model)
    except api.DatasetUnavailable as e:
        st.info(f"The Olivetti faces cannot be read: {e}")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Deep autoencoder (test mean)", f"{r['ae_err'].mean():.2f}", "paper: 126", delta_color="off",
              delta_arrow="off")
    c2.metric("PCA(30) (test mean)", f"{r['pca_err'].mean():.2f}", "paper: 135", delta_color="off", delta_arrow="off")
    c3.metric("Ratio", f"{r['ae_err'].mean() / r['pca_err'].mean():.2f}", "paper: 0.93", delta_color="off",
              delta_arrow="off")
    st.caption("Squared error per image, summed over the 625 pixels with intensities in [0, 1], averaged over "
               "the 80 faces of persons 32-39, whom neither model saw; PCA fitted on the 280 training faces "
               "(persons 0-27). The 64x64 faces are downsampled to 25x25. The autoencoder started as exactly this "
               "PCA(30) (its weights set to compute it) and was then fine-tuned on flipped and shifted training faces: "
               "from a random start, without the paper's RBM pretraining, it overfit the 280 faces. The paper's "
               "numbers are in other units (its own patches, with rotations and scalings): compare the ratios.")
    _face_rows(r)


@st.fragment
def _face_rows(r: dict) -> None:
    c1, c2 = st.columns([1, 3])
    seed = c1.number_input("Faces (seed)", 0, 10_000, 0, key="ae_faces_seed")
    idx = torch.randperm(len(r["x"]), generator=torch.Generator().manual_seed(int(seed)))[:10].tolist()
    c2.markdown("**Rows:** held-out faces · deep-autoencoder reconstructions · PCA(30) reconstructions")
    rows = [r[k][idx] for k in ("x", "ae", "pca")]
    _rows_and_errors(rows, idx, r["ae_err"], r["pca_err"], f"ae-vs-pca-faces-{seed}", "ae_faces", FACE_SHAPE)


# --- 2-D codes ---------------------------------------------------------------------------------
@st.cache_data(max_entries=4, show_spinner="Encoding the 10,000 test digits…")
def _codes(key: str, _model) -> tuple[np.ndarray, np.ndarray]:
    """Test-set codes of the autoencoder (N, K) and of PCA with K components (N, K)."""
    x = mnist_test()[0]
    with torch.inference_mode():
        return _model.encode(x).numpy(), pca_all().truncate(_model.config.code).encode(x).numpy()


def scatter(codes: np.ndarray, labels: np.ndarray, title: str) -> go.Figure:
    """Codes (N, 2) coloured by digit, WebGL; hover gives digit and test index (customdata)."""
    fig = go.Figure()
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        fig.add_trace(go.Scattergl(x=codes[idx, 0], y=codes[idx, 1], mode="markers", name=str(digit),
                                   customdata=idx, marker=dict(size=4, color=COLOURS[digit], opacity=0.7),
                                   hovertemplate=f"digit {digit}<br>test #%{{customdata}}<extra></extra>"))
    fig.update_layout(title=title, height=520, legend=dict(title="digit", itemsizing="constant"),
                      margin=dict(l=10, r=10, t=50, b=10), font=plots.FONT, dragmode="select")
    return fig


def _picked(*events) -> int:
    """The test index of the first selected point in the first chart with a selection (0 when none)."""
    for event in events:
        points = (event or {}).get("selection", {}).get("points", [])
        if points and "customdata" in points[0]:
            return int(points[0]["customdata"])
    return 0


def codes() -> None:
    st.subheader("2-D codes: deep autoencoder 784-1000-500-250-2 vs the first two principal components")
    st.markdown("Each point is one of the 10,000 test digits, placed at its 2-D code and coloured by its label. "
                "The autoencoder separates the classes far better than PCA, without ever seeing a label. "
                "**Click a point** (or drag a box) to decode it.")
    model = bundled_ae(TWO_D)
    if model is None:
        return
    ae_codes, pca_codes = _codes(bundled_fingerprint(TWO_D), model)
    labels = mnist_test()[1].numpy()
    c1, c2 = st.columns(2)
    with c1:
        ae_event = st.plotly_chart(scatter(ae_codes, labels, "deep autoencoder"), key="ae_scatter",
                                   on_select="rerun", selection_mode=("points", "box"))
    with c2:
        pca_event = st.plotly_chart(scatter(pca_codes, labels, "PCA"), key="pca_scatter",
                                    on_select="rerun", selection_mode=("points", "box"))
    i = _picked(ae_event, pca_event)  # the same digit through both
    with torch.inference_mode():
        x = mnist_test()[0][i].numpy()
        ae_row = [x, model.decode(torch.from_numpy(ae_codes[i])[None])[0].numpy()]
        pca_row = [x, pca_all().truncate(2).decode(torch.from_numpy(pca_codes[i])[None])[0].clamp(0, 1).numpy()]
    for col, row, name, code in ((c1, ae_row, "autoencoder", ae_codes[i]), (c2, pca_row, "PCA", pca_codes[i])):
        with col:
            widgets.image(plots.grid_png(np.stack(row).reshape(2, *SHAPE), cols=2, scale=5), width=290,
                          caption=f"Test #{i} (a {labels[i]}) and its {name} code ({code[0]:.1f}, {code[1]:.1f}) "
                                  "decoded")
    widgets.download_csv([{"index": i, "label": int(labels[i]), "ae_1": float(ae_codes[i, 0]),
                           "ae_2": float(ae_codes[i, 1]), "pca_1": float(pca_codes[i, 0]),
                           "pca_2": float(pca_codes[i, 1])} for i in range(len(labels))],
                         "ae-pca-2d-codes.csv", key="dl_ae_codes")


# --- retrieval -----------------------------------------------------------------------------------
@st.cache_data(max_entries=4, show_spinner="Measuring precision@k over 1,000 test queries…")
def _precision(key: str, _models: tuple) -> list[dict]:
    """precision@k for k in KS, for each (name, model) in _models and its PCA twin."""
    labels = torch.from_numpy(mnist_test()[1].numpy())
    rows = []
    for name, model in _models:
        ae_codes, pca_codes = (torch.from_numpy(c) for c in _codes(bundled_fingerprint(name), model))
        for k in KS:
            rows.append({"code": f"{model.config.code}-D", "k": k,
                         "autoencoder": api.precision_at_k(ae_codes, labels, k),
                         "PCA": api.precision_at_k(pca_codes, labels, k)})
    return rows


KS = [1, 5, 10, 20, 50]


def retrieval() -> None:
    st.subheader("Retrieval in code space: nearest neighbours of a query")
    st.markdown("As on the information-retrieval slide: encode every test digit, and answer a query with the "
                "test digits whose codes lie closest. Precision@k is the fraction of those k neighbours with "
                "the query's label, averaged over 1,000 test queries.")
    model = bundled_ae(TWO_D)
    if model is None:
        return
    _neighbours(model)
    models = tuple((n, bundled_model(n)) for n in (TWO_D, DEEP) if n in bundled_names("autoencoder"))
    rows = _precision("|".join(bundled_fingerprint(n) for n, _ in models), models)
    st.plotly_chart(_precision_figure(rows), key="ae_precision")
    widgets.download_csv(rows, "ae-pca-precision-at-k.csv", key="dl_ae_prec")


@st.fragment
def _neighbours(model) -> None:
    x, labels = mnist_test()[0], mnist_test()[1]
    c1, c2 = st.columns(2)
    query = c1.number_input("Query: test digit (0 to 9,999)", 0, len(x) - 1,
                            widgets.url_int("digit", 0, len(x) - 1, 0), key="ae_query")
    widgets.share(digit=query)
    k = c2.select_slider("Neighbours k", [5, 10, 20], 10, key="ae_k")
    ae_codes, pca_codes = (torch.from_numpy(c) for c in _codes(bundled_fingerprint(TWO_D), model))
    q = torch.tensor([int(query)])
    pngs = {}
    for name, c in (("2-D autoencoder", ae_codes), ("2-D PCA", pca_codes)):
        idx = api.nearest_neighbours(c, q, k)[0]
        hits = int((labels[idx] == labels[q]).sum())
        pngs[name] = plots.grid_png(torch.cat([x[q], x[idx]]).reshape(-1, *SHAPE), cols=k + 1, scale=3)
        widgets.image(pngs[name], width="stretch",
                      caption=f"{name}: the query (first, a {int(labels[q])}) and its {k} nearest codes; "
                              f"{hits} of {k} share its label")
    for col, (name, png) in zip(st.columns(2), pngs.items()):
        with col:
            widgets.download_png(png, f"neighbours-{name.replace(' ', '-')}-{query}.png", key=f"dl_nn_{name}",
                                 label=f"Download PNG ({name})")


def _precision_figure(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    styles = {"autoencoder": "solid", "PCA": "dot"}
    for code in dict.fromkeys(r["code"] for r in rows):
        sub = [r for r in rows if r["code"] == code]
        for method, dash in styles.items():
            fig.add_trace(go.Scatter(x=[r["k"] for r in sub], y=[r[method] for r in sub], mode="lines+markers",
                                     name=f"{code} {method}", line=dict(dash=dash, width=3)))
    fig.update_layout(title="precision@k over 1,000 test queries", xaxis=dict(title="k (neighbours)", type="log",
                      tickvals=KS), yaxis=dict(title="precision", range=[0, 1]), height=420,
                      margin=dict(l=10, r=10, t=50, b=10), font=plots.FONT)
    return fig
