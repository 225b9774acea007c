"""The deep Boltzmann machine page's views: mean-field inference played sweep by sweep, DBN-style bottom-up
inference beside the DBM's, the chains' dreams beside training digits, the likelihood numbers, and live training.

Model math lives in engine.models.dbm; this file only arranges and draws it. Animations are precomputed
(every sweep's pictures as PNG image traces) and played by the browser.
"""
from __future__ import annotations

import hashlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from app import digit_input, jobs, plots, widgets
from app.model_source import Source, source_picker, use_model
from app.resources import bundled_metrics, bundled_names, checkpoint_zip, mnist_test
from engine import api

SHAPE = (28, 28)
BUNDLED = "dbm-mnist"
USER_LABEL = "your trained DBM"
JOB, AIS_JOB = "dbm-train", "dbm-ais"
SWEEPS = 30  # mean-field sweeps played in the inference views
PAPER_BOUND = -84.62
BINARIZATION = ("the MNIST test split binarized once with seed 0 (the app's own; the papers used Larochelle's "
                "fixed binarized-MNIST file, which is not available here, so compare with them only roughly)")


# --- which model -----------------------------------------------------------------------------------
def model_picker() -> Source | None:
    """Sidebar choice between the bundled DBM and the one trained on this page (None: no model)."""
    return source_picker("dbm", title="DBM shown", user_label=USER_LABEL,
                         describe=lambda m: f"{m.config.n_visible} visible · {m.config.n_hidden1} h1 · "
                                            f"{m.config.n_hidden2} h2 units")


def log_z_of(source: Source) -> float | None:
    """The stored AIS log Z (bundled), else the last cheap-AIS log Z logged while training, else None."""
    ll = source.metrics.get("test_log_likelihood")
    if ll:
        return float(ll["log_z"]["estimate"])
    history = source.model.bound_history()
    return history[-1][1] if history else None


def _grid_shape(n: int) -> tuple[int, int]:
    """A near-square (rows, cols) with rows * cols == n for showing n units as a map (500 -> 20 x 25)."""
    rows = int(np.floor(np.sqrt(n)))
    while n % rows:
        rows -= 1
    return rows, n // rows


def _units_map(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(_grid_shape(len(values)))


def _binary_digit(key: str) -> tuple[torch.Tensor, str] | None:
    """A binary digit (784,) and its description: a test digit in the seeded test binarization (the one the
    test likelihood uses), or an upload or drawing thresholded at 1/2; None (with a message) otherwise."""
    grey = digit_input.digit(key, "Digit", widgets.url_int("digit", 0, 9_999, 0))
    if grey is None:
        return None
    if st.session_state.get(f"{key}_src") == "test digit":
        index = int(st.session_state[f"{key}_idx"])
        widgets.share(digit=index)
        return mnist_test()[2][index], f"test digit {index} (a {int(mnist_test()[1][index])})"
    v = (grey > 0.5).float()
    if v.sum() < 3:
        st.warning("After binarizing at grey level 1/2 this picture has almost no ink; try a bolder digit.")
        return None
    st.caption("Uploads and drawings are binarized at grey level 1/2.")
    return v, "your digit"


def _digest(v: torch.Tensor) -> str:
    return hashlib.sha1(v.numpy().astype(np.uint8).tobytes()).hexdigest()[:16]


# --- mean-field inference --------------------------------------------------------------------------
def inference(source: Source) -> None:
    st.subheader("Mean-field inference, sweep by sweep")
    st.markdown(
        "The data term of learning needs the posterior over both hidden layers, which no formula gives. Mean field "
        "fits a factorial q(h1) q(h2) instead: each sweep sets **μ1 = σ(c + W1ᵀv + W2 μ2)** (bottom-up *and* "
        "top-down input), then **μ2 = σ(d + W2ᵀ μ1)**. Every half-sweep maximises the variational bound over one "
        "layer, so the bound can only rise. Sweep 0 is the bottom-up start with doubled weights, σ(c + 2 W1ᵀv).")
    picked = _binary_digit("dbm_mf")
    if picked is None:
        return
    v, what = picked
    frames = _mf_frames(source.key, source.model, v.numpy().tobytes(), _digest(v))
    log_z = log_z_of(source)
    st.plotly_chart(_mf_figure(frames, log_z), key="dbm_mf_anim")
    first, last = frames["bound"][0], frames["bound"][-1]
    label = "bound" if log_z is not None else "bound + log Z"
    offset = -(log_z or 0.0)
    c1, c2, c3 = st.columns(3)
    c1.metric(f"Variational {label}, sweep 0", f"{first + offset:.2f} nats")
    c2.metric(f"After {SWEEPS} sweeps", f"{last + offset:.2f} nats", f"{last - first:+.2f} nats", delta_arrow="off")
    c3.metric("Largest change of μ1 in the last sweep", f"{frames['last_change']:.1e}")
    st.caption(f"{what.capitalize()}. Press ▶ or drag the slider under the figure (the sweeps are computed once and "
               "played in your browser). Panels: the binary input v; the read-out σ(b + W1 μ1); μ1 and μ2, one "
               "square per hidden unit (black 0, white 1); the bound after each sweep, "
               + (f"using log Z = {log_z:.2f} from AIS." if log_z is not None and not source.user else
                  "using the last cheap-AIS log Z logged while training." if log_z is not None else
                  "without log Z (no estimate for this model yet)."))
    widgets.download_json({"digit": what, "bound": [float(b + offset) for b in frames["bound"]],
                           "log_z": log_z}, "dbm-mean-field.json", key="dl_dbm_mf")


@st.cache_data(max_entries=32, show_spinner="Running mean field…")
def _mf_frames(key: str, _model, v_bytes: bytes, digest: str) -> dict:
    v = torch.from_numpy(np.frombuffer(v_bytes, dtype=np.float32).copy())
    out = _model.mean_field_frames(v, SWEEPS)
    mu1, mu2 = out["mu1"].numpy(), out["mu2"].numpy()
    return {"v": v.reshape(SHAPE).numpy(), "reconstruction": out["reconstruction"].numpy().reshape(-1, *SHAPE),
            "mu1": mu1, "mu2": mu2, "bound": out["bound"].double().numpy(),
            "last_change": float(np.abs(mu1[-1] - mu1[-2]).max())}


def _mf_figure(frames: dict, log_z: float | None) -> go.Figure:
    offset = -(log_z or 0.0)
    bound = [float(b) + offset for b in frames["bound"]]
    titles = ["input v", "read-out σ(b + W1 μ1)", f"μ1 ({frames['mu1'].shape[1]} units)",
              f"μ2 ({frames['mu2'].shape[1]} units)", "variational bound (nats)" if log_z is not None
              else "bound + log Z (nats)"]
    fig = make_subplots(rows=1, cols=5, column_widths=[0.14, 0.14, 0.17, 0.23, 0.32], horizontal_spacing=0.045,
                        subplot_titles=titles)

    def pictures(t: int) -> list:
        maps = [frames["v"], frames["reconstruction"][t], _units_map(frames["mu1"][t]), _units_map(frames["mu2"][t])]
        return [go.Image(source=plots.data_uri(plots.png(m, scale=6)), hoverinfo="skip") for m in maps]

    for col, trace in enumerate(pictures(0), start=1):
        fig.add_trace(trace, 1, col)
    sweeps = list(range(len(bound)))
    fig.add_trace(go.Scatter(x=sweeps, y=bound, mode="lines", line=dict(color="#a0aec0", width=2),
                             hoverinfo="skip", showlegend=False), 1, 5)
    fig.add_trace(go.Scatter(x=[0], y=[bound[0]], mode="markers", marker=dict(size=14, color="#dd6b20"),
                             showlegend=False, hovertemplate="sweep %{x}: %{y:.2f} nats<extra></extra>"), 1, 5)
    fig.frames = [go.Frame(data=[*pictures(t), go.Scatter(x=[t], y=[bound[t]])], traces=[0, 1, 2, 3, 5], name=str(t))
                  for t in sweeps]
    jump = dict(frame=dict(duration=0, redraw=True), transition=dict(duration=0), mode="immediate")
    play = {**jump, "frame": dict(duration=350, redraw=True), "fromcurrent": True}
    fig.update_layout(
        height=420, font=plots.FONT, margin=dict(l=10, r=10, t=50, b=110),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.12, xanchor="left", yanchor="top",
                          font=dict(size=16), buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                                       dict(label="❚❚", method="animate", args=[[None], jump])])],
        sliders=[dict(active=0, x=0.16, len=0.84, y=-0.12, yanchor="top", pad=dict(t=0, b=0),
                      currentvalue=dict(prefix="sweep ", font=dict(size=16)), font=dict(size=11),
                      steps=[dict(label=str(t), method="animate", args=[[str(t)], jump]) for t in sweeps])])
    for col in range(1, 5):
        fig.update_xaxes(visible=False, row=1, col=col).update_yaxes(visible=False, row=1, col=col)
    span = max(bound[-1] - bound[0], 1.0)
    fig.update_yaxes(range=[min(bound) - 0.08 * span, max(bound) + 0.15 * span], row=1, col=5)
    fig.update_xaxes(title_text="sweep", row=1, col=5)
    fig.update_yaxes(side="right", row=1, col=5)  # tick labels clear of the μ2 picture
    for annotation in fig.layout.annotations:
        annotation.font.size = 15
    return fig


# --- DBN vs DBM ------------------------------------------------------------------------------------
OCCLUSIONS = {"none": "whole digit", "bottom": "bottom half hidden", "top": "top half hidden",
              "noise": "10% of pixels flipped"}


def compare(source: Source) -> None:
    st.subheader("Bottom-up only (DBN) vs bottom-up and top-down (DBM)")
    st.markdown(
        "A deep belief net infers its layers in one bottom-up pass: h1 from v, then h2 from h1, and h2 never "
        "sends anything back. The DBM's mean field lets h2 talk back to h1 (the W2 μ2 term), so what the top "
        "layer believes about the digit reshapes the features below. Hide part of the digit to see the difference: "
        "under a band, the DBM treats the pixels as unknowns of its mean field (filled in each sweep from h1, "
        "which hears h2), while the DBN's single bottom-up pass can only read them as blank.")
    model = source.model
    picked = _binary_digit("dbm_cmp")
    if picked is None:
        return
    v, what = picked
    occlusion = st.radio("Corrupt the input", list(OCCLUSIONS), format_func=OCCLUSIONS.get, horizontal=True,
                         key="dbm_occl", index=list(OCCLUSIONS).index(widgets.url_choice("hide", list(OCCLUSIONS), "none")))
    widgets.share(hide=occlusion)
    out = _compare(source.key, model, v.numpy().tobytes(), _digest(v), occlusion)
    panels = [("What the models see", out["input"]), ("DBN: bottom-up only", out["dbn"]),
              ("DBM, sweep 0", out["dbm0"]), (f"DBM, {SWEEPS} sweeps", out["dbm"])]
    for col, (title, image) in zip(st.columns(4), panels):
        col.markdown(f"**{title}**")
        with col:
            widgets.image(plots.png(image, scale=7), width="content")
    st.caption("Left to right: the input (the grey band marks hidden pixels, which enter the bottom-up pass as 0); "
               "the bottom-up pass's read-out from h1 (the greedy stack the DBM was built from, used as a DBN: "
               "q(h1|v) = σ(c + 2 W1ᵀv), then RBM 1's decoder); the DBM at sweep 0 (its bottom-up start); the DBM "
               f"after {SWEEPS} mean-field sweeps, where h1 also hears h2 (and, under a band, the hidden pixels are "
               "inferred with the hidden units). Read-outs are σ(b + W1 μ1), grey levels.")
    c1, c2, c3 = st.columns(3)
    c1.metric("Top-down share of h1's input (DBM)", f"{100 * out['top_down_share']:.0f}%",
              help="Mean over h1 units of |W2 μ2| / (|W1ᵀv| + |W2 μ2|) after the sweeps; the DBN's is 0%.")
    if occlusion != "none":
        what_rec = ("flipped pixels put right" if occlusion == "noise" else "hidden ink recovered")
        rule = ("Share of the flipped pixels whose read-out is on the true side of 1/2." if occlusion == "noise" else
                "Share of the digit's ink pixels under the band whose read-out is above 1/2.")
        c2.metric(f"DBN: {what_rec}", f"{100 * out['recovered_dbn']:.0f}%", help=rule)
        c3.metric(f"DBM: {what_rec}", f"{100 * out['recovered_dbm']:.0f}%", help=rule)
    st.plotly_chart(_h1_input_figure(out), key="dbm_cmp_inputs")
    st.caption(f"{what.capitalize()}. Each dot is one h1 unit: its bottom-up input W1ᵀv (x) against the top-down "
               "input W2 μ2 it receives from h2 in the DBM after mean field (y). The DBN has no y axis at all; the "
               "doubled weights of pretraining (2 W1ᵀv) stand in for it at sweep 0.")


@st.cache_data(max_entries=32, show_spinner="Inferring…")
def _compare(key: str, _model, v_bytes: bytes, digest: str, occlusion: str) -> dict:
    v = torch.from_numpy(np.frombuffer(v_bytes, dtype=np.float32).copy())
    mask = torch.zeros(SHAPE, dtype=torch.bool)
    if occlusion == "bottom":
        mask[14:] = True
    elif occlusion == "top":
        mask[:14] = True
    seen = v.clone().reshape(SHAPE)
    if occlusion == "noise":
        flips = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0)) < 0.1
        seen[flips] = 1 - seen[flips]
        mask = flips
    else:
        seen[mask] = 0
    x = seen.reshape(1, -1)
    q1, _ = _model.stack_up(x)
    dbn = _model.stack_down(q1)[0]
    band = mask.reshape(-1) if occlusion in ("bottom", "top") else None  # pixels the DBM treats as unknown
    frames = _model.mean_field_frames(x[0], SWEEPS, missing=band)
    dbm0, dbm = frames["reconstruction"][0], frames["reconstruction"][-1]
    bottom, top = frames["bottom_up"], frames["top_down"][-1]
    shown = seen.clone().numpy()
    if occlusion in ("bottom", "top"):
        shown[mask.numpy()] = 0.35
    if occlusion in ("bottom", "top"):  # judged on the digit's ink under the band
        mask = mask & (v.reshape(SHAPE) > 0.5)
    truth = v.reshape(SHAPE)[mask]

    def recovered(p: torch.Tensor) -> float:
        return float(((p.reshape(SHAPE)[mask] > 0.5).float() == truth).float().mean()) if mask.any() else 1.0
    return {"input": shown, "dbn": dbn.reshape(SHAPE).numpy(), "dbm0": dbm0.reshape(SHAPE).numpy(),
            "dbm": dbm.reshape(SHAPE).numpy(), "bottom_up": bottom.numpy(), "top_down": top.numpy(),
            "top_down_share": float((top.abs() / (bottom.abs() + top.abs() + 1e-9)).mean()),
            "recovered_dbn": recovered(dbn), "recovered_dbm": recovered(dbm)}


def _h1_input_figure(out: dict) -> go.Figure:
    fig = go.Figure(go.Scatter(x=out["bottom_up"], y=out["top_down"], mode="markers",
                               marker=dict(size=6, color="#2b6cb0", opacity=0.6),
                               hovertemplate="bottom-up %{x:.2f}, top-down %{y:.2f}<extra></extra>"))
    fig.add_hline(y=0, line_color="#a0aec0")
    fig.add_vline(x=0, line_color="#a0aec0")
    fig.update_layout(height=380, font=plots.FONT, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title="bottom-up input W1ᵀv", yaxis_title="top-down input W2 μ2")
    return fig


# --- good generative model? ------------------------------------------------------------------------
@st.fragment
def samples(source: Source) -> None:
    st.subheader("Good generative model? Training digits beside the model's dreams")
    st.markdown(
        "The slide's test: put training images next to samples from the Gibbs sampler. A DBM samples by "
        "alternating h1 ~ p(h1 | v, h2) with v ~ p(v | h1) and h2 ~ p(h2 | h1). Two pictures of the same chain "
        "state: the **mean** p(v = 1 | h1), smooth and clean-looking, and the **binary state** v it draws, which "
        "is what the model really generates: speckle there is the model's, not the display's.")
    model = source.model
    c1, c2 = st.columns([2, 1])
    options = ["10", "100", "1000", "5000"]
    steps = c1.select_slider("Gibbs sweeps from noise (long runs)", options,
                             value=widgets.url_choice("sweeps", options, "1000"), key="dbm_gsteps")
    seed = int(c2.number_input("Seed", 0, 10_000, 0, key="dbm_gseed"))
    widgets.share(sweeps=steps)
    out = _dreams(source.key, model, int(steps), seed)
    train = api.mnist.binarized("train", seed=1)[:16].reshape(-1, *SHAPE).numpy()
    cols = st.columns(4)
    panels = [("Training digits", train, "The data: 16 training digits, binarized."),
              ("Long runs: means", out["means"], f"16 chains from noise after {steps} sweeps: the mean image "
               "p(v = 1 | h1) of the last sweep (not a sample)."),
              ("Long runs: binary v", out["states"], f"The same chains' binary states after {steps} sweeps: the "
               "actual samples."),
              ("Persistent chains", out["persistent"], out["persistent_note"])]
    for col, (title, images, note) in zip(cols, panels):
        with col:
            st.markdown(f"**{title}**")
            widgets.image(plots.grid_png(images, cols=4, scale=3), width="stretch")
            st.caption(note)
    st.caption(f"Mean ink per pixel: training {train.mean():.3f}, long-run binary states {out['states'].mean():.3f}, "
               f"long-run means {out['means'].mean():.3f}. Chains that mix well visit several digit classes; "
               "pick another seed or more sweeps to watch them move.")
    widgets.download_png(plots.grid_png(np.concatenate([out["means"], out["states"]]), cols=8, scale=3),
                         f"dbm-gibbs-{steps}.png", key="dl_dbm_dreams")


@st.cache_data(max_entries=16, show_spinner="Running the Gibbs chains…")
def _dreams(key: str, _model, steps: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    run = _model.gibbs_run(16, steps, generator=g)
    kept = _model.chain_v[:16]
    if kept.abs().sum() > 0:
        persistent, note = kept, ("16 of the persistent chains at the last update of training (the model term of "
                                  "the gradient), binary states.")
    else:
        persistent, note = torch.full((16, _model.config.n_visible), 0.5), "This model kept no persistent chains."
    return {"means": run["means"].reshape(-1, *SHAPE).numpy(), "states": run["states"].reshape(-1, *SHAPE).numpy(),
            "persistent": persistent.reshape(-1, *SHAPE).numpy(), "persistent_note": note}


# --- likelihood ------------------------------------------------------------------------------------
def likelihood(source: Source) -> None:
    st.subheader("How good is it? A lower bound on the test log-likelihood")
    st.markdown(
        "log p(v) = log Σ_h exp(−E(v, h)) − log Z. Two things are hard. **log Z**: the DBM is bipartite between h1 "
        "and {v, h2}, so h1 sums out in closed form and AIS runs on the remaining RBM over [v, h2], annealing from "
        "a base-rate model through many inverse temperatures β. **The sum over h**: mean field gives a lower bound "
        "E_q[−E] + H(q); an importance-sampled estimate over h1 (q = the mean-field marginal, h2 summed exactly) is "
        "tighter and converges to log p(v) as the number of samples k grows.")
    ll = source.metrics.get("test_log_likelihood")
    if ll:
        z, mf, est = ll["log_z"], ll["mf_bound"], ll["is_estimate"]
        c1, c2, c3 = st.columns(3)
        c1.metric("Mean-field lower bound (test)", f"{mf['mean']:.2f} nats",
                  f"± {mf['stderr_with_log_z']:.2f} (1 s.e.)", delta_color="off", delta_arrow="off",
                  help=f"Variational lower bound on the test log-likelihood: {mf['sweeps']} sweeps, all "
                       f"{mf['images']:,} test digits, {ll['split']}.")
        c2.metric("log Z (AIS estimate)", f"{z['estimate']:.2f}", f"± {z['std_error']:.3f}", delta_color="off",
                  delta_arrow="off", help=f"{z['n_runs']} runs × {z['n_betas']:,} inverse temperatures.")
        c3.metric("IS estimate over h1", f"{est['mean']:.2f} nats",
                  f"bound there {est['bound_on_same_images']:.2f}", delta_color="off", delta_arrow="off",
                  help=f"Importance-sampled log p(v), k = {est['k']:,} samples of h1 per digit, first "
                       f"{est['images']} test digits; the bound on the same digits beside it.")
        rbm = bundled_metrics("rbm-mnist").get("test_log_likelihood", {}).get("test_log_likelihood") \
            if "rbm-mnist" in bundled_names() else None
        rows = [
            {"quantity": "mean-field lower bound (this DBM)", "nats": round(mf["mean"], 2),
             "estimator": f"MF bound, {mf['sweeps']} sweeps, AIS log Z"},
            {"quantity": "importance-sampled log p(v) (this DBM)", "nats": round(est["mean"], 2),
             "estimator": f"IS over h1, k = {est['k']}, {est['images']} test digits"},
            {"quantity": "bundled RBM 784-500", "nats": round(rbm, 2) if rbm is not None else None,
             "estimator": "AIS estimate (exact free energy)"},
            {"quantity": "paper: DBM 784-500-1000 (Salakhutdinov & Hinton 2009)", "nats": PAPER_BOUND,
             "estimator": "MF bound, fixed binarization (paper number)"},
        ]
        st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(f"AIS: {z['n_runs']} runs, {z['n_betas']:,} inverse temperatures ({z['betas']}); {z['base']}. "
                   f"log Z interval (log(Ẑ ± 3 s.e.)): {z['interval_3se'][0]:.2f} to {z['interval_3se'][1]:.2f}. Effective "
                   f"sample size of the IS estimate: mean {est['ess_mean']:.1f}, median {est['ess_median']:.1f} of "
                   f"{est['k']:,}. On {BINARIZATION}. AIS tends to underestimate log Z, which makes every number "
                   "here optimistic.")
    elif not source.user:
        st.info("This checkpoint has no test numbers yet: run `python -m engine eval` on it.")
    history = source.model.bound_history()
    if history:
        st.plotly_chart(_bound_history_figure(history), key="dbm_bound_hist")
        note = ""
        if ll:
            gap = ll["log_z"]["estimate"] - history[-1][1]
            note = (f" The full AIS on the final weights gave log Z {gap:+.2f} against the last cheap estimate, so the "
                    f"curve's last point is about {abs(gap):.1f} nats {'optimistic' if gap > 0 else 'pessimistic'}.")
        st.caption("While training: the mean-field bound on 1,000 validation digits with a cheap AIS log Z "
                   "(few runs and temperatures, so noisy and usually too low), logged every few joint epochs." + note)
    _one_digit_is(source)
    _ais_panel(source)


def _bound_history_figure(history: list) -> go.Figure:
    epochs, _, bounds = zip(*history)
    fig = go.Figure(go.Scatter(x=epochs, y=bounds, mode="lines+markers", name="validation MF bound",
                               line=dict(color="#2b6cb0", width=3)))
    fig.update_layout(height=300, font=plots.FONT, margin=dict(l=10, r=10, t=40, b=10),
                      title="Bound while training (cheap AIS)", xaxis_title="joint epoch", yaxis_title="nats")
    return fig


@st.fragment
def _one_digit_is(source: Source) -> None:
    st.markdown("#### One digit: the bound and importance sampling as k grows")
    log_z = log_z_of(source)
    if log_z is None:
        st.info("No log Z is known for this model yet; run AIS below first.")
        return
    index = int(st.number_input("Test digit (0 to 9,999)", 0, 9_999, 0, key="dbm_is_digit"))
    out = _is_curve(source.key, source.model, index, log_z)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=out["k"], y=out["estimate"], mode="lines+markers", name="IS estimate of log p(v)",
                             line=dict(color="#2b6cb0", width=3)))
    fig.add_hline(y=out["bound"], line_color="#dd6b20", line_dash="dash",
                  annotation_text=f"mean-field bound {out['bound']:.2f}", annotation_position="bottom right")
    fig.update_layout(height=320, font=plots.FONT, margin=dict(l=10, r=10, t=30, b=10), xaxis_type="log",
                      xaxis_title="importance samples k", yaxis_title="nats", legend=dict(orientation="h", y=1.12))
    st.plotly_chart(fig, key="dbm_is_curve")
    st.caption(f"Test digit {index}: each point is one estimate log (1/k) Σ p*(v, h1)/q(h1) − log Z with k fresh "
               f"samples (log Z = {log_z:.2f}); its effective sample size at k = {out['k'][-1]:,} is "
               f"{out['ess']:.1f}. The estimate sits above the bound and settles as k grows.")


@st.cache_data(max_entries=32, show_spinner="Importance sampling…")
def _is_curve(key: str, _model, index: int, log_z: float) -> dict:
    v = mnist_test()[2][index:index + 1]
    g = torch.Generator().manual_seed(index)
    mu1, mu2 = _model.mean_field(v, SWEEPS)
    bound = float(_model.bound_unnormalized(v, mu1, mu2)[0]) - log_z
    ks, est, ess = [1, 3, 10, 30, 100, 300, 1000, 3000], [], 0.0
    for k in ks:
        out = _model.importance_log_p_star(v, k, generator=g, mu1=mu1)
        est.append(float(out["log_p_star"][0]) - log_z)
        ess = float(out["ess"][0])
    return {"k": ks, "estimate": est, "bound": bound, "ess": ess}


def _ais_panel(source: Source) -> None:
    st.markdown("#### Run AIS yourself")
    c1, c2, c3 = st.columns([2, 2, 1])
    runs = c1.select_slider("AIS runs", [10, 25, 50, 100], 25, key="dbm_ais_runs")
    betas = c2.select_slider("Inverse temperatures β", [300, 1000, 3000, 10000], 1000, key="dbm_ais_betas")
    if c3.button("Estimate log Z", type="primary", icon=":material/play_arrow:", width="stretch"):
        jobs.start(AIS_JOB, f"AIS with {runs} runs × {betas} temperatures", _ais_work(source, runs, betas))
    jobs.panel(AIS_JOB, _draw_ais)


def _ais_work(source: Source, runs: int, betas: int):
    model = source.model

    def work(job: jobs.Job):
        base = model.base_rates(api.mnist.binarized("train", seed=1)[:5000])
        W, b, a = model.rbm_view()
        for update in api.iter_ais(W.detach(), b.detach(), a.detach(), base, n_runs=runs, n_betas=betas,
                                   generator=torch.Generator().manual_seed(0), dtype=torch.float32):
            if "result" in update:
                r = update["result"]
                test = mnist_test()[2][:1000]
                bound = float(model.mf_bound(test, r.log_z, SWEEPS).mean())
                job.result = {"log_z": r.log_z, "log_z_std": r.log_z_std, "n_runs": r.n_runs, "n_betas": r.n_betas,
                              "bound_1000": bound, "model": source.label}
            yield {k: v for k, v in update.items() if k != "result"}
    return work


def _draw_ais(job: jobs.Job) -> None:
    history, _, _, _ = job.snapshot()
    if job.result is None:
        if history and "log_z" in history[-1]:
            st.caption(f"Running estimate of log Z: {history[-1]['log_z']:.2f}")
        return
    r = job.result
    c1, c2 = st.columns(2)
    c1.metric("log Z (AIS estimate)", f"{r['log_z']:.2f}", f"± {r['log_z_std']:.3f}", delta_color="off",
              delta_arrow="off")
    c2.metric("Mean-field bound, first 1,000 test digits", f"{r['bound_1000']:.2f} nats")
    st.caption(f"Model: {r['model']}. {r['n_runs']} runs, {r['n_betas']:,} inverse temperatures. Fewer runs or "
               "temperatures give a noisier and usually lower log Z, so a higher-looking bound.")


# --- training on the page --------------------------------------------------------------------------
def train(source: Source | None) -> None:
    st.subheader("Train a DBM: greedy pretraining, then joint training")
    st.markdown(
        "1. **RBM 1** on the pixels, with h1 seeing the image twice (2 W1ᵀv): in the finished DBM h1 will get "
        "input from below *and* above.\n2. **RBM 2** on RBM 1's features, with h1 seeing h2 twice.\n3. **Compose** "
        "them into one DBM (h1's bias: the average of the two RBMs') and train jointly, as the \"Approximate "
        "learning\" slide says: the **data term** E_data[v h1ᵀ] from mean field on each batch, the **model term** "
        "E_model[v h1ᵀ] from persistent Gibbs chains that carry over between updates. Centring (subtracting "
        "each layer's mean activity) keeps the gradients well-conditioned. The bound is logged with a cheap AIS.")
    with st.form("dbm_train_form", border=True):
        c1, c2, c3 = st.columns(3)
        sizes = c1.select_slider("Hidden units (h1-h2)", ["50-100", "100-200", "200-400", "500-1000"], "100-200",
                                  key="dbm_train_sizes")
        pretrain = c2.slider("Pretraining epochs per RBM", 1, 10, 1, key="dbm_train_pre")
        joint = c3.slider("Joint epochs", 1, 20, 2, key="dbm_train_joint")
        lr = c1.select_slider("Joint learning rate", [0.001, 0.002, 0.005, 0.01], 0.005)
        mf = c2.slider("Mean-field sweeps (data term)", 1, 20, 5)
        pcd = c3.slider("Gibbs sweeps per update (model term)", 1, 10, 1)
        centring = c1.checkbox("Centring", True, key="dbm_train_centring")
        h1_bias = c2.radio("h1 biases from", ["average", "first"], horizontal=True,
                           format_func={"average": "both RBMs (average)", "first": "RBM 1 only"}.get)
        seed = c3.number_input("Seed", 0, 10_000, 0)
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    running = jobs.get(JOB)
    if submitted and not (running and running.running):
        n1, n2 = (int(s) for s in sizes.split("-"))
        settings = {"epochs": 2 * pretrain + joint, "batch_size": 100, "pretrain_epochs": pretrain,
                    "pretrain_lr": 0.05, "lr": lr, "lr_decay_epochs": 20, "momentum": 0.5, "weight_decay": 2e-4,
                    "mf_steps": mf, "pcd_steps": pcd, "n_chains": 100, "centring": centring, "h1_bias": h1_bias,
                    "ais_every": 1, "ais_betas": 500, "ais_runs": 16, "verbose": False}
        jobs.start(JOB, f"Training a 784-{n1}-{n2} DBM", _training_work(n1, n2, settings, int(seed)))
    elif submitted:
        st.warning("A training run is already in progress; cancel it first.")
    job = jobs.panel(JOB, _draw_training)
    if job is not None and not job.running and job.result is not None:
        _offer_result(job)


def _training_work(n1: int, n2: int, settings: dict, seed: int):
    def work(job: jobs.Job):
        model = api.new_model_for_training("dbm", {"n_hidden1": n1, "n_hidden2": n2})
        trainer = api.make_trainer(model, settings, seed=seed, cancel=job.cancel, log_every=50)
        for update in trainer.run():
            yield update
        job.result = model.cpu().eval().requires_grad_(False)
        job.meta = {"config": {"n_hidden1": n1, "n_hidden2": n2}, "train": settings, "steps": trainer.step,
                    "epochs": trainer.epoch, "seed": seed}
    return work


def _draw_training(job: jobs.Job) -> None:
    history, preview, _, _ = job.snapshot()
    c1, c2 = st.columns([3, 2])
    with c1:
        bounds = [h for h in history if "valid_bound_cheap_ais" in h]
        if bounds:
            st.plotly_chart(plots.curves(bounds, ["valid_bound_cheap_ais"], height=240,
                                         y_title="MF bound, cheap AIS (nats)"), key=f"dbm_b-{len(history)}")
        keys = [k for k in ("rbm1_reconstruction_error", "rbm2_reconstruction_error", "mf_reconstruction_error")
                if any(k in h for h in history)]
        fig = go.Figure()
        for k in keys:
            rows = [h for h in history if k in h]
            fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r[k] for r in rows], mode="lines+markers",
                                     name={"rbm1_reconstruction_error": "RBM 1 (pretraining)",
                                           "rbm2_reconstruction_error": "RBM 2 (pretraining)",
                                           "mf_reconstruction_error": "DBM, mean-field read-out"}[k]))
        fig.update_layout(height=240, font=plots.FONT, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="step",
                          yaxis_title="reconstruction MSE", legend=dict(orientation="h", y=1.2))
        st.plotly_chart(fig, key=f"dbm_r-{len(history)}")
    with c2:
        if preview is not None:
            widgets.image(plots.grid_png(preview, cols=8, scale=2), caption="64 first-layer filters, evolving")
    if history:
        last = history[-1]
        st.caption(f"Step {last.get('step', 0)}, epoch {last.get('epoch', 0)}, "
                   f"{last.get('examples_per_s', 0):,.0f} images/s. Measured on 1,000 validation digits; the bound "
                   "appears once joint training has begun.")
    if history and not job.running:
        widgets.download_csv(history, "dbm-training.csv", key="dl_dbm_train")


def _offer_result(job: jobs.Job) -> None:
    model = job.result
    c1, c2 = st.columns(2)
    c1.button("Show this model on every view", type="primary", icon=":material/visibility:",
              on_click=use_model, args=("dbm", USER_LABEL, model))
    c2.download_button("Download checkpoint (.zip)", checkpoint_zip(model, api.dbm_card, job.meta),
                       file_name=f"dbm-784-{model.config.n_hidden1}-{model.config.n_hidden2}.zip",
                       mime="application/zip", on_click="ignore", icon=":material/download:")

