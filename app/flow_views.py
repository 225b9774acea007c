"""The Normalizing flows page's views: change of variables in 1-D, a planar flow layer by layer, K = 2, 8, 32
side by side, live training against -log Z, and a 2-D Real NVP fitted to points. Model math lives in
engine (engine.nn.flows, engine.models.planar, engine.models.realnvp2d, engine.flows1d); this file draws it."""
from __future__ import annotations

import io
import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from app import jobs, raster, widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names
from engine import api
from engine.flows1d import MonotoneMap

TARGETS = api.energies2d.NAMES
LABELS = api.energies2d.LABELS
KS = (2, 8, 32)
BOX = 4.0  # the planar views draw [-BOX, BOX]^2 (the paper's figures)
FONT = dict(size=18)
DENSITY = "Viridis"


def name_of(target: str, k: int) -> str:
    return f"planar-{target}-k{k}"


def available_planar() -> list[str]:
    return bundled_names("planar")


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10), font=FONT, **kw)
    return fig


def _square_axes(fig: go.Figure, limit: float = BOX) -> None:
    fig.update_xaxes(range=[-limit, limit], constrain="domain", zeroline=False)
    fig.update_yaxes(range=[-limit, limit], scaleanchor="x", scaleratio=1, zeroline=False)


# --- 1. change of variables in one dimension ---------------------------------------------------
def change_of_variables() -> None:
    st.subheader("Change of variables in one dimension")
    st.latex(r"x=f(z),\ z\sim\mathcal N(0,1)\quad\Longrightarrow\quad p_X(x)=p_Z\!\big(f^{-1}(x)\big)\,"
             r"\left|\frac{d f^{-1}}{dx}\right| = \frac{p_Z(z)}{f'(z)}\Big|_{z=f^{-1}(x)}")
    st.markdown("Shape a monotone map f(z) = slope·z + Σ aᵢ tanh((z − cᵢ)/w) with steps at c = −1.5, 0, 1.5. "
                "Where f is steep, probability is stretched thin; where it is flat, it piles up: one steep step in "
                "the middle splits a Gaussian in two. The red curve is the formula; the bars are a histogram of "
                "100,000 pushed samples.")
    st.info("Correction to the slide: the log-det term enters with a **plus**, log p_X(x) = log p_Z(f⁻¹(x)) "
            "+ log|det ∂f⁻¹/∂x| (the slide writes a minus). In 1-D: p_X(x) = p_Z(z)/f′(z), divided by the stretch.",
            icon=":material/edit_note:")
    cols = st.columns(5)
    slope = cols[0].slider("slope", 0.1, 2.0, 0.3, 0.05, key="cov_slope")
    steps = tuple(cols[i + 1].slider(f"step a{i + 1} at c = {c:g}", 0.0, 2.0, d, 0.1, key=f"cov_a{i}")
                  for i, (c, d) in enumerate(zip((-1.5, 0.0, 1.5), (0.0, 1.5, 0.0))))
    width = cols[4].slider("step width w", 0.1, 1.5, 0.5, 0.05, key="cov_w")
    fmap = MonotoneMap(slope, steps, width)
    fig, rows = _cov_figure(fmap)
    st.plotly_chart(fig, key="cov_fig")
    mass = rows[-1]["integral"]
    st.caption(f"The formula's density integrates to {mass:.4f} over the plotted range. f is strictly increasing "
               "(slope > 0, steps ≥ 0), so f⁻¹ exists; it is computed by a safeguarded Newton root find.")
    widgets.download_csv(rows[:-1], "change-of-variables.csv", key="dl_cov")


@st.cache_data(max_entries=32, show_spinner=False)
def _cov_figure(fmap: MonotoneMap) -> tuple[go.Figure, list[dict]]:
    z = torch.linspace(-3.5, 3.5, 400, dtype=torch.float64)
    fz, _ = fmap.forward(z)
    samples = fmap.push(100_000, generator=torch.Generator().manual_seed(0)).numpy()
    lo, hi = float(np.quantile(samples, 0.0005)), float(np.quantile(samples, 0.9995))
    pad = 0.1 * (hi - lo)
    x = torch.linspace(lo - pad, hi + pad, 600, dtype=torch.float64)
    px_ = fmap.density(x)
    fig = make_subplots(rows=1, cols=3, column_widths=[0.25, 0.3, 0.45], horizontal_spacing=0.07,
                        subplot_titles=("base p<sub>Z</sub>(z)", "the map x = f(z)", "p<sub>X</sub>(x): formula vs samples"))
    pz = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    z, fz, pz, x, px_ = (t.numpy() for t in (z, fz, pz, x, px_))
    fig.add_trace(go.Scatter(x=z, y=pz, line=dict(color="#1f5fa8", width=3), name="p_Z"), 1, 1)
    fig.add_trace(go.Scatter(x=z, y=fz, line=dict(color="#17202a", width=3), name="f"), 1, 2)
    fig.add_trace(go.Histogram(x=samples, histnorm="probability density", nbinsx=120, name="pushed samples",
                               marker_color="rgba(230, 126, 34, 0.55)"), 1, 3)
    fig.add_trace(go.Scatter(x=x, y=px_, line=dict(color="#c0392b", width=3), name="formula"), 1, 3)
    fig.update_xaxes(title_text="z", row=1, col=1).update_xaxes(title_text="z", row=1, col=2)
    fig.update_yaxes(title_text="x", row=1, col=2).update_xaxes(title_text="x", row=1, col=3, range=[lo - pad, hi + pad])
    _layout(fig, 460, showlegend=True, legend=dict(orientation="h", y=-0.18, x=0.55))
    for ann in fig.layout.annotations:
        ann.font = dict(size=20)
    rows = [{"x": float(a), "density": float(b)} for a, b in zip(x, px_)]
    rows.append({"integral": float(px_.sum() * (x[1] - x[0]))})
    return fig, rows


# --- 2. a planar flow layer by layer -------------------------------------------------------------
def _pick_target_and_k(key: str, ks=KS) -> tuple[str, int]:
    c1, c2 = st.columns([3, 1])
    target = c1.segmented_control("Target", list(TARGETS), format_func=LABELS.get, key=f"{key}_target",
                                  required=True, default=widgets.url_choice("target", list(TARGETS), "u1"))
    k = c2.segmented_control("Layers K", list(ks), format_func=lambda v: f"K = {v}", key=f"{key}_k", required=True,
                             default=int(widgets.url_choice("K", [str(v) for v in ks], str(ks[-1]))))
    widgets.share(target=target, K=k)
    return target, k


def layers() -> None:
    st.subheader("A planar flow, layer by layer")
    st.latex(r"z_k=z_{k-1}+\hat u_k\tanh(w_k^\top z_{k-1}+b_k),\qquad "
             r"\log q_k(z_k)=\log q_{k-1}(z_{k-1})-\log\left|1+\hat u_k^\top w_k\tanh'(\cdot)\right|")
    st.latex(r"\hat u=u+\big(m(w^\top u)-w^\top u\big)\frac{w}{\|w\|^2},\qquad m(a)=-1+\log(1+e^a)"
             r"\quad\Rightarrow\quad w^\top\hat u=m(w^\top u)>-1")
    st.caption("û keeps every layer invertible. The squared norm matters: with ‖w‖ instead, wᵀû can fall below "
               "−1, the layer folds the plane, and the density no longer integrates to 1.")
    target, k = _pick_target_and_k("lay")
    name = name_of(target, k)
    if name not in available_planar():
        st.error(f"The bundled flow {name} is missing; run `make train-flows`.")
        return
    model = bundled_model(name)
    K = model.config.layers
    start = widgets.url_int("k", 0, K, K)
    left, right = st.columns([3, 2])
    with left:  # every k is in the figure: its slider and Play run in the browser, with no server round trip
        st.plotly_chart(_layer_animation(name, bundled_fingerprint(name), start), key=f"lay_fig_{name}")
    with right:
        maps = _heatmaps(name, bundled_fingerprint(name))
        st.plotly_chart(_pair_figure(maps, model.config.target, K), key="lay_maps")
    st.caption("Left: samples and a grid of base points pushed through the first k layers (drag the slider under "
               "the plot, or press Play), coloured by the "
               "exact log q_k carried along each path (base log-density minus the running log-det). The dashed line "
               "is layer k's hyperplane wᵀz + b = 0, which the layer leaves in place (tanh 0 = 0); points on either "
               "side move along the arrow û by at most |û|, contracting or stretching space near the line. Right: "
               "the target exp(−U)/Z and the final q_K, computed on the grid by inverting every layer exactly. "
               "A link's k=… picks the layer shown first.")
    rows = [{"layer": i + 1, **{f"{p}_{j}": v[j] for p, v in g.items() if isinstance(v, list) for j in range(2)},
             "b": g["b"], "wTu_hat": g["wu"]} for i, g in enumerate(model.layers_geometry())]
    widgets.download_csv(rows, f"{name}-layers.csv", key="dl_layers", label="Download the layers (CSV)")


N_SAMPLES, LINE_POINTS = 1500, 40  # what the layer animation carries per frame (all K + 1 frames go to the browser)


@st.cache_resource(max_entries=16, show_spinner=False)
def _trace(name: str, fingerprint: str) -> dict:
    """Samples and a grid of base points through every layer: points (K+1, N, 2), log q (K+1, N); read-only."""
    model = bundled_model(name)
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(N_SAMPLES, 2, generator=g)
    r = torch.linspace(-2.5, 2.5, 21)
    t = torch.linspace(-2.5, 2.5, LINE_POINTS)
    lines = torch.cat([torch.stack(torch.broadcast_tensors(v, t), 1) for v in r]
                      + [torch.stack(torch.broadcast_tensors(t, v), 1) for v in r])  # (42 * LINE_POINTS, 2)
    z0 = torch.cat([samples, lines]).double()
    with torch.no_grad():
        flow = model.flow.double()
        points, logdets = flow.trace(z0)
        base = flow.base_log_prob(z0)
        model.flow.float()
    return {"points": torch.stack(points).float().numpy(), "log_q": (base - torch.stack(logdets)).float().numpy(),
            "n_samples": N_SAMPLES, "line_len": LINE_POINTS}


LOG_Q_RANGE, PIXELS = (-6.0, 1.0), 600  # the colour scale of log q_k, and the side of each frame's picture


def _layer_state(frames: dict, k: int, geometry: list[dict]) -> tuple[dict, dict]:
    """Frame k: layer k's hyperplane as the first trace's data, and the layout it changes (the picture of the
    grid and samples after k layers, the û arrow, the title)."""
    pts, log_q, n = frames["points"][k], frames["log_q"][k], frames["n_samples"]
    low, high = LOG_Q_RANGE
    png = raster.scatter_png(BOX, PIXELS, points=pts[:n], values01=(log_q[:n] - low) / (high - low),
                             table=raster.colour_table(DENSITY), lines=pts[n:].reshape(-1, frames["line_len"], 2))
    line, arrows = _hyperplane(geometry[k - 1]) if k >= 1 else (([], []), [dict(visible=False)] * 2)  # (a frame
    # without annotations would keep the previous frame's arrow)
    layout = dict(images=[raster.layout_image(png, BOX)], annotations=arrows,
                  title_text=f"k = {k}: samples after {k} layer{'s' if k != 1 else ''}")
    return dict(x=line[0], y=line[1]), layout


@st.cache_data(max_entries=32, show_spinner=False)
def _layer_animation(name: str, fingerprint: str, start: int) -> go.Figure:
    """All K + 1 states in one figure, shown at k = `start`; a slider and Play step through them in the browser.
    Each state is a server-drawn picture (about 40 kB), so a step swaps an image instead of redrawing markers."""
    frames, geometry = _trace(name, fingerprint), bundled_model(name).layers_geometry()
    K = len(frames["points"]) - 1
    states = [_layer_state(frames, k, geometry) for k in range(K + 1)]
    line, layout = states[start]
    low, high = LOG_Q_RANGE
    fig = go.Figure(
        data=[go.Scatter(**line, mode="lines", hoverinfo="skip", line=dict(color="#c0392b", width=3, dash="dash")),
              go.Scatter(x=[None], y=[None], mode="markers", hoverinfo="skip",  # only to show the colour bar
                         marker=dict(color=[low], colorscale=DENSITY, cmin=low, cmax=high, showscale=True,
                                     colorbar=dict(title="log q<sub>k</sub>", thickness=14)))],
        frames=[go.Frame(data=[go.Scatter(**d)], traces=[0], name=str(k), layout=go.Layout(**lay))
                for k, (d, lay) in enumerate(states)])
    play = dict(frame=dict(duration=500, redraw=True), transition=dict(duration=0), fromcurrent=True, mode="immediate")
    jump = dict(frame=dict(duration=0, redraw=True), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        **layout, showlegend=False,
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.1, xanchor="left", yanchor="top",
                          pad=dict(t=0, b=0), font=dict(size=16), buttons=[
                              dict(label="▶ Play", method="animate", args=[None, play]),
                              dict(label="❚❚", method="animate", args=[[None], {**jump, "frame": dict(duration=0)}])])],
        sliders=[dict(active=start, x=0.3, len=0.7, y=-0.1, yanchor="top", pad=dict(t=0, b=0),
                      currentvalue=dict(prefix="layers applied k = ", font=dict(size=16)), font=dict(size=11),
                      steps=[dict(label=str(k), method="animate",
                                  args=[[str(k)], jump]) for k in range(K + 1)])])
    _square_axes(fig)
    return _layout(fig, 760).update_layout(margin=dict(b=130))


def _hyperplane(layer: dict) -> tuple[tuple[list, list], list[dict]]:
    """Layer's fixed line w^T z + b = 0 as (xs, ys), and its u-hat arrow (from the line's point nearest the
    origin) as plotly annotations."""
    w, b, u = np.array(layer["w"]), layer["b"], np.array(layer["u_hat"])
    p0 = -b * w / (w @ w)
    direction = np.array([-w[1], w[0]]) / np.linalg.norm(w)
    ends = np.stack([p0 - 20 * direction, p0 + 20 * direction])
    tip = dict(x=p0[0] + u[0], y=p0[1] + u[1], xref="x", yref="y")
    arrows = [dict(**tip, ax=p0[0], ay=p0[1], axref="x", ayref="y", showarrow=True, arrowhead=3, arrowsize=1.4,
                   arrowwidth=3, arrowcolor="#c0392b"),
              dict(**tip, text="û", showarrow=False, font=dict(size=22, color="#c0392b"), xshift=12, yshift=12)]
    return (ends[:, 0].tolist(), ends[:, 1].tolist()), arrows


@st.cache_data(max_entries=16, show_spinner=False)
def _heatmaps(name: str, _fingerprint: str) -> dict:
    model = bundled_model(name)
    d = api.planar_flows.grid_densities(model, 161, BOX)
    return {"p": d["log_p"].exp().numpy(), "q": d["log_q"].exp().numpy(), "axis": d["axis"].numpy()}


def _pair_figure(maps: dict, target: str, k: int) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.09,
                        subplot_titles=(f"target exp(−{target.upper()})/Z", f"q<sub>K</sub>, K = {k} (exact inverse)"))
    vmax = float(max(maps["p"].max(), maps["q"].max()))
    for row, key in ((1, "p"), (2, "q")):
        fig.add_trace(go.Heatmap(z=maps[key], x=maps["axis"], y=maps["axis"], colorscale=DENSITY, zmin=0, zmax=vmax,
                                 showscale=False), row, 1)
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    fig.update_yaxes(scaleanchor="x", row=1, col=1).update_yaxes(scaleanchor="x2", row=2, col=1)
    return _layout(fig, 640)


# --- 3. K = 2, 8, 32 side by side -----------------------------------------------------------------
def compare() -> None:
    st.subheader("More layers, better fits: K = 2, 8, 32")
    st.latex(r"\mathrm{KL}(q\,\|\,p)=\underbrace{\mathbf E_q[\log q(z)+U(z)]}_{F\ \text{(free energy)}}+\log Z\;\ge 0")
    st.markdown("Rezende & Mohamed's Figure 3b on our bundled flows: each row one target, then q_K for K = 2, 8, 32. "
                "KL is F (Monte Carlo, 100,000 samples) plus log Z (a fine grid); ± one standard error.")
    missing = [name_of(t, k) for t in TARGETS for k in KS if name_of(t, k) not in available_planar()]
    if missing:
        st.error(f"Bundled flows missing: {', '.join(missing)}; run `make train-flows`.")
        return
    fig, rows = _compare_figure()
    st.plotly_chart(fig, key="cmp_fig")
    st.dataframe(rows, hide_index=True, width="stretch", height=36 * (len(rows) + 1) + 4)
    widgets.download_csv(rows, "planar-kl.csv", key="dl_cmp")
    st.caption("Wall term: U2, U3 and U4 are periodic in z1 and not normalizable, so every target here has an "
               "extra ½((|z1| − 4)/0.2)² for |z1| > 4 (zero inside). It does not change the picture inside the box "
               "and makes log Z finite.")


@st.cache_data(max_entries=2, show_spinner="Inverting 12 flows on a grid…")
def _compare_figure() -> tuple[go.Figure, list[dict]]:
    titles = []
    for t in TARGETS:
        titles.append(LABELS[t])
        for k in KS:
            r = bundled_metrics(name_of(t, k)).get("reverse_kl", {})
            titles.append(f"K = {k}: KL {r.get('kl', float('nan')):.2f} ± {r.get('stderr', float('nan')):.2f}")
    fig = make_subplots(rows=4, cols=4, subplot_titles=titles, horizontal_spacing=0.015, vertical_spacing=0.045)
    rows = []
    for i, t in enumerate(TARGETS):
        for j, k in enumerate(KS):
            name = name_of(t, k)
            maps = _heatmaps(name, bundled_fingerprint(name))
            if j == 0:
                fig.add_trace(go.Heatmap(z=maps["p"], colorscale=DENSITY, showscale=False), i + 1, 1)
            fig.add_trace(go.Heatmap(z=maps["q"], colorscale=DENSITY, showscale=False), i + 1, j + 2)
            r = bundled_metrics(name).get("reverse_kl", {})
            rows.append({"target": t.upper(), "K": k, "KL (nats)": round(r.get("kl", float("nan")), 3),
                         "± s.e.": round(r.get("stderr", float("nan")), 3), "F": round(r.get("free_energy", float("nan")), 3),
                         "log Z": r.get("log_z"), "grid KL": round(r.get("grid_kl", float("nan")), 3)})
    fig.update_xaxes(showticklabels=False, constrain="domain").update_yaxes(showticklabels=False)
    for i in range(1, 17):  # square cells
        suffix = "" if i == 1 else str(i)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    for ann in fig.layout.annotations:
        ann.font = dict(size=17)
    return _layout(fig, 1150), rows


# --- 4. live training ------------------------------------------------------------------------------
def train() -> None:
    st.subheader("Train a planar flow: the free energy falls towards −log Z")
    st.latex(r"F(q)=\mathbf E_{q}[\log q(z)+U(z)]=\mathrm{KL}(q\,\|\,p)-\log Z\;\ge\;-\log Z")
    st.latex(r"\text{annealed (Rezende \& Mohamed 2015): }\ \mathbf E_q[\log q+\beta_t U],\qquad "
             r"\beta_t=\min\!\left(1,\,0.01+t/T\right)")
    with st.form("flow_train_form"):
        c1, c2, c3, c4 = st.columns(4)
        target = c1.selectbox("Target", list(TARGETS), format_func=LABELS.get)
        k = c2.select_slider("Layers K", [2, 4, 8, 16, 32], 8)
        steps = c3.select_slider("Steps", [500, 1000, 2000, 4000, 8000], 2000)
        anneal = c4.select_slider("Annealing T (0 = off)", [0, 500, 1000, 2000, 4000], 1000)
        seed = c1.number_input("Seed", 0, 10_000, 0)
        lr = c2.select_slider("Learning rate", [1e-3, 3e-3, 1e-2], 1e-2)
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    job = jobs.get("planar-train")
    if submitted and not (job and job.running):
        config = {"target": target, "layers": k, "anneal_steps": anneal, "seed": int(seed)}
        settings = {"epochs": steps // 100, "steps_per_epoch": 100, "batch_size": 256, "lr": lr, "decay_steps": steps}
        job = jobs.start("planar-train", f"Planar flow K = {k} on {target.upper()}", _work(config, settings, int(seed)))
        job.meta.update(log_z=api.energies2d.LOG_Z[target], target=target, k=k)
    elif submitted:
        st.warning("A training run is already in progress; cancel it first.")
    if jobs.panel("planar-train", _draw_training) is None:
        st.info("Choose a target and K, then start: the curve shows F at β = 1 (what KL measures) and the loss "
                "being minimized (β-weighted) while the red line marks −log Z, which F can never cross.")


def _work(config: dict, settings: dict, seed: int):
    def work(job: jobs.Job):
        model = api.build("planar", **config)
        for update in api.make_trainer(model, settings, seed=seed, cancel=job.cancel, log_every=50).run():
            yield update
        job.result = model.eval().requires_grad_(False)
    return work


def _draw_training(job: jobs.Job) -> None:
    history, preview, _, _ = job.snapshot()
    rows = [h for h in history if "free_energy" in h]
    log_z = job.meta.get("log_z", 0.0)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r["free_energy"] for r in rows], name="F (β = 1)",
                             line=dict(width=3, color="#1f5fa8")))
    fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r["loss"] for r in rows], name="annealed loss (β < 1, may dip below)",
                             line=dict(width=2, color="#7f8c8d", dash="dot")))
    fig.add_hline(y=-log_z, line=dict(color="#c0392b", width=3), annotation_text=f"−log Z = {-log_z:.3f}",
                  annotation_position="top right", annotation_font=dict(size=18, color="#c0392b"))
    lows = [r["free_energy"] for r in rows]
    fig.update_yaxes(range=[-log_z - 0.5, max(lows[-1] + 2.0, -log_z + 1.0) if lows else -log_z + 3])
    fig.update_layout(xaxis_title="step", yaxis_title="nats", legend=dict(orientation="h", y=1.12))
    left, right = st.columns([3, 2])
    left.plotly_chart(_layout(fig, 460), key=f"flow-train-{len(history)}")
    if preview is not None:
        right.plotly_chart(_preview_figure(preview), key=f"flow-prev-{len(history)}")
    if rows:
        last = rows[-1]
        c1, c2, c3 = st.columns(3)
        c1.metric("F at β = 1", f"{last['free_energy']:.3f} nats")
        c2.metric("KL = F + log Z (batch estimate)", f"{last['kl']:.3f} nats")
        c3.metric("β (annealing)", f"{last['beta']:.2f}")
    if history and not job.running:
        widgets.download_csv(history, "planar-training.csv", key="dl_flow_train")


def _preview_figure(hist: np.ndarray) -> go.Figure:
    axis = np.linspace(-api.energies2d.LIMIT, api.energies2d.LIMIT, hist.shape[0])
    fig = go.Figure(go.Heatmap(z=hist, x=axis, y=axis, colorscale=DENSITY, showscale=False))
    fig.update_layout(title="samples of the current q_K")
    _square_axes(fig, BOX)
    return _layout(fig, 460)


# --- 5. a 2-D Real NVP on points -----------------------------------------------------------------
SOURCES = {"moons": "Two moons", "rings": "Two rings", "csv": "Upload a CSV", "type": "Type points"}
EXAMPLE = "x, y\n" + "\n".join(f"{math.cos(a):.3f}, {math.sin(2 * a):.3f}" for a in np.linspace(0, 2 * math.pi, 40))


def realnvp() -> None:
    st.subheader("Real NVP: a flow fitted to points by maximum likelihood")
    st.latex(r"\log p_X(x)=\log p_Z\!\big(f^{-1}(x)\big)+\log\left|\det\frac{\partial f^{-1}}{\partial x}\right|,"
             r"\qquad f^{-1}:\ \text{affine couplings } x_b\mapsto (x_b-t(x_a))\,e^{-s(x_a)}")
    source = st.segmented_control("Points", list(SOURCES), format_func=SOURCES.get, key="nvp_source", required=True,
                                  default=widgets.url_choice("points", list(SOURCES), "moons"))
    widgets.share(points=source)
    if source in ("moons", "rings"):
        name = f"realnvp2d-{source}"
        if name not in bundled_names("realnvp2d"):
            st.error(f"The bundled flow {name} is missing; run `make train-flows`.")
            return
        model = bundled_model(name)
        data = api.realnvp2d.draw(source, 1000, generator=torch.Generator().manual_seed(1))
        nll = bundled_metrics(name).get("test_nll", {})
        _show_realnvp(model, data, f"{name}", nll.get("nll"))
        return
    points = _user_points(source)
    if points is None:
        return
    job = jobs.get("nvp-train")
    c1, c2 = st.columns([1, 3])
    steps = c1.select_slider("Steps", [500, 1000, 2000, 4000], 1000, key="nvp_steps")
    if c2.button("Fit a Real NVP to these points", type="primary", icon=":material/play_arrow:", key="nvp_fit"):
        if job and job.running:
            st.warning("A fit is already running; cancel it first.")
        else:
            job = jobs.start("nvp-train", f"Real NVP on {len(points)} points", _nvp_work(points, steps))
            job.meta["points"] = points
    done = jobs.panel("nvp-train", lambda j: _nvp_curve(j))
    if done is not None and done.result is not None and not done.running:
        _show_realnvp(done.result, done.meta["points"], "realnvp2d-your-points", None)
    elif done is None:
        _scatter_only(points)


def _user_points(source: str) -> torch.Tensor | None:
    """The user's points, standardized into the plane, or None with a message."""
    if source == "csv":
        upload = st.file_uploader("CSV with two columns x, y (a header line is optional)", type=["csv", "txt"],
                                  key="nvp_csv")
        if upload is None:
            st.info("Upload a CSV of points, one x, y per line.")
            return None
        try:
            text = api.toy2d.decode_upload(upload.getvalue())
        except api.toy2d.BadPoints as e:
            st.error(f"Could not use {upload.name}: {e}")
            return None
    else:
        text = st.text_area("Points, one x, y per line", EXAMPLE, height=160, key="nvp_text")
    try:
        return api.toy2d.user_points(text)
    except api.toy2d.BadPoints as e:
        st.error(f"Could not use these points: {e}")
        return None


def _nvp_work(points: torch.Tensor, steps: int):
    def work(job: jobs.Job):
        model = api.build("realnvp2d", dataset="points")
        settings = {"epochs": steps // 100, "steps_per_epoch": 100, "batch_size": 256, "lr": 2e-3}
        trainer = api.make_flow2d_trainer(model, settings, seed=0, cancel=job.cancel, log_every=50, points=points)
        for update in trainer.run():
            yield update
        job.result = model.eval().requires_grad_(False)
    return work


def _nvp_curve(job: jobs.Job) -> None:
    history, _, _, _ = job.snapshot()
    rows = [h for h in history if "nll" in h]
    if rows:
        fig = go.Figure(go.Scatter(x=[r["step"] for r in rows], y=[r["nll"] for r in rows], line=dict(width=3)))
        fig.update_layout(xaxis_title="step", yaxis_title="NLL (nats per point)")
        st.plotly_chart(_layout(fig, 260), key=f"nvp-curve-{len(history)}")


def _scatter_only(points: torch.Tensor) -> None:
    points = points.numpy()
    fig = go.Figure(go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", marker=dict(size=7, color="#17202a")))
    fig.update_layout(title=f"your {len(points)} points (centred and scaled into the plane)")
    _square_axes(fig, 3.2)
    st.plotly_chart(_layout(fig, 520), key="nvp_points")


def _show_realnvp(model, data: torch.Tensor, label: str, nll: float | None) -> None:
    with torch.no_grad():
        grid = api.realnvp2d.density_grid(model, 181, 3.2)
        samples = model.sample(1000, generator=torch.Generator().manual_seed(2)).numpy()
        z = model.encode(data).numpy()
        log_p = model.log_prob(data)
    data = data.numpy()
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.04,
                        subplot_titles=("data and samples x = f(z)", "density p(x) by the exact inverse",
                                        "data mapped back: z = f⁻¹(x)"))
    fig.add_trace(go.Scattergl(x=data[:, 0], y=data[:, 1], mode="markers", name="data",
                               marker=dict(size=5, color="#17202a")), 1, 1)
    fig.add_trace(go.Scattergl(x=samples[:, 0], y=samples[:, 1], mode="markers", name="samples",
                               marker=dict(size=5, color="#e67e22", opacity=0.7)), 1, 1)
    axis = grid["axis"].numpy()
    fig.add_trace(go.Heatmap(z=grid["log_p"].exp().numpy(), x=axis, y=axis, colorscale=DENSITY, showscale=False), 1, 2)
    theta = np.linspace(0, 2 * math.pi, 100)
    for r in (1, 2, 3):
        fig.add_trace(go.Scatter(x=r * np.cos(theta), y=r * np.sin(theta), mode="lines", showlegend=False,
                                 line=dict(color="#95a5a6", dash="dot")), 1, 3)
    fig.add_trace(go.Scattergl(x=z[:, 0], y=z[:, 1], mode="markers", name="f⁻¹(data)",
                               marker=dict(size=5, color="#1f5fa8")), 1, 3)
    for col in (1, 2, 3):
        lim = 3.2 if col < 3 else 3.5
        fig.update_xaxes(range=[-lim, lim], row=1, col=col, constrain="domain")
        fig.update_yaxes(range=[-lim, lim], row=1, col=col, scaleanchor=f"x{col if col > 1 else ''}")
    _layout(fig, 540, legend=dict(orientation="h", y=-0.08))
    st.plotly_chart(fig, key="nvp_fig")
    c1, c2 = st.columns(2)
    c1.metric("Mean log p(x) of the points shown", f"{log_p.mean().item():.3f} nats")
    mass = (grid["log_p"].exp().sum() * grid["area"]).item()
    c2.metric("∫ p(x) dx over the drawn square", f"{mass:.3f}")
    caption = "The dotted circles in the right panel are 1, 2 and 3 standard deviations of the base N(0, I)."
    if nll is not None:
        caption += f" Bundled model {label}: held-out NLL {nll:.3f} nats per point (model card)."
    st.caption(caption)
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([data, z]), delimiter=",", header="x1,x2,z1,z2", comments="")
    st.download_button("Download data and f⁻¹(data) (CSV)", buf.getvalue(), file_name=f"{label}-encoded.csv",
                       mime="text/csv", key="dl_nvp", on_click="ignore", icon=":material/download:")
