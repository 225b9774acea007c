"""The GAN page's point-cloud views: generated clouds beside real ones, and a latent walk that morphs one
shape into another. Model math lives in engine.models.pointgan and engine.data.shapes3d; this file only
arranges and draws it (3-D plotly scatters, rotatable with the mouse)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from app import widgets
from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names
from engine import api

MODEL = "pointgan-shapes"
SHAPES = api.shapes3d.SHAPES
COLORS = {"sphere": "#1f5fa8", "torus": "#c05621", "cube": "#2f855a", "helix": "#b83280", "cone": "#6b46c1",
          api.shapes3d.UNCLEAR: "#4a5568"}
CAMERA = dict(eye=dict(x=1.35, y=1.35, z=0.85), up=dict(x=0, y=0, z=1))
AXIS = dict(visible=False, range=[-1.05, 1.05], autorange=False)
N_GALLERY, N_CANDIDATES, FRAMES = 10, 64, 31


def available() -> bool:
    if MODEL in bundled_names("pointgan"):
        return True
    st.warning(f"The bundled point-cloud GAN ({MODEL}) is missing; train it with "
               f"`python -m engine train pointgan --preset bundled --out assets/checkpoints/{MODEL}` and "
               "`python -m engine eval assets/checkpoints/pointgan-shapes`.")
    return False


def _model():
    try:
        return bundled_model(MODEL)
    except api.CheckpointError as e:
        st.error(f"The bundled checkpoint {MODEL!r} cannot be loaded: {e}")
        return None


# --- drawing -----------------------------------------------------------------------------------
def _shade(color: str) -> list:
    """A colour scale from a light to a dark tone of `color`, mapped onto height: a cue for depth."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    light = f"rgb({(r + 2 * 255) // 3},{(g + 2 * 255) // 3},{(b + 2 * 255) // 3})"
    dark = f"rgb({r * 2 // 3},{g * 2 // 3},{b * 2 // 3})"
    return [[0, dark], [0.5, color], [1, light]]


def cloud_trace(points: np.ndarray, color: str | None = None, *, size: float = 3.2) -> go.Scatter3d:
    """One cloud (N, 3) as a 3-D scatter: shaded by height in `color`, or by point index (None)."""
    if color is None:
        marker = dict(size=size, color=np.arange(len(points)), colorscale="Turbo", opacity=0.95)
    else:
        marker = dict(size=size, color=points[:, 2], colorscale=_shade(color), cmin=-1, cmax=1, opacity=0.95)
    return go.Scatter3d(x=points[:, 0], y=points[:, 1], z=points[:, 2], mode="markers", marker=marker,
                        hoverinfo="skip", showlegend=False)


def grid_figure(clouds: np.ndarray, titles: list[str], colors: list, *, cols: int, height: int) -> go.Figure:
    """Clouds (K, N, 3) as small rotatable 3-D plots in rows of `cols`, each with its title, one camera."""
    rows = -(-len(clouds) // cols)
    fig = make_subplots(rows=rows, cols=cols, specs=[[{"type": "scene"}] * cols] * rows, subplot_titles=titles,
                        horizontal_spacing=0.01, vertical_spacing=0.06 if rows > 1 else 0.02)
    for i, (points, color) in enumerate(zip(clouds, colors)):
        fig.add_trace(cloud_trace(points, color), row=i // cols + 1, col=i % cols + 1)
    fig.update_scenes(xaxis=AXIS, yaxis=AXIS, zaxis=AXIS, aspectmode="cube", camera=CAMERA, dragmode="orbit")
    fig.update_annotations(font=dict(size=20, color="#17202a"))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=40, b=0), uirevision="clouds", font=dict(size=18))
    return fig


def morph_figure(frames: np.ndarray, labels: list[str], ts: np.ndarray) -> go.Figure:
    """A browser-played animation of clouds (T, N, 3): each point keeps its colour (its index in G's output)."""
    fig = go.Figure(data=[cloud_trace(frames[0], None, size=4.5)],
                    frames=[go.Frame(data=[go.Scatter3d(x=f[:, 0], y=f[:, 1], z=f[:, 2])], name=str(i),
                                     layout=go.Layout(title_text=f"t = {t:.2f}: {label}"))
                            for i, (f, t, label) in enumerate(zip(frames, ts, labels))])
    play = dict(frame=dict(duration=110, redraw=True), transition=dict(duration=0), fromcurrent=True, mode="immediate")
    fig.update_layout(
        height=620, margin=dict(l=0, r=0, t=50, b=10), font=dict(size=18), uirevision="morph",
        title=dict(text=f"t = 0.00: {labels[0]}", x=0.5, font=dict(size=22)),
        scene=dict(xaxis=AXIS, yaxis=AXIS, zaxis=AXIS, aspectmode="cube", camera=CAMERA, dragmode="orbit",
                   domain=dict(x=[0, 1], y=[0.14, 1])),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=0.0, xanchor="left", yanchor="bottom",
                          pad=dict(t=0, b=0), font=dict(size=18), buttons=[
                              dict(label="▶ Play", method="animate", args=[None, play]),
                              dict(label="❚❚ Pause", method="animate",
                                   args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])])],
        sliders=[dict(active=0, x=0.36, len=0.62, y=0.0, yanchor="bottom", pad=dict(t=0, b=10),
                      currentvalue=dict(visible=False),
                      font=dict(size=14), steps=[
                          dict(label=f"{t:.1f}" if i % 5 == 0 else "", method="animate",
                               args=[[str(i)], dict(frame=dict(duration=0, redraw=True), mode="immediate")])
                          for i, t in enumerate(ts)])])
    return fig


def points_csv_rows(clouds: np.ndarray, names: list[str], key: str) -> list[dict]:
    """Rows (cloud, label, point, x, y, z) of clouds (K, N, 3) for a CSV download."""
    return [{key: k, "label": names[k], "point": i, "x": round(float(p[0]), 5), "y": round(float(p[1]), 5),
             "z": round(float(p[2]), 5)} for k, cloud in enumerate(clouds) for i, p in enumerate(cloud)]


# --- generated beside real ---------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner="Generating and labelling clouds…")
def _gallery(fingerprint: str, _model, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    """N_GALLERY generated clouds (K, N, 3) with their labels and titles."""
    fake = _model.sample(N_GALLERY, generator=torch.Generator().manual_seed(seed)).cpu()
    return fake.numpy(), *nearest(api.shapes3d.template_distances(fake).numpy())


@st.cache_resource(show_spinner=False)
def _real_figure(n_points: int) -> go.Figure:
    """One real cloud of each shape, the same for every seed: the chart stays put when the seed changes,
    so the browser redraws only the generated clouds' WebGL scenes (shared and read-only)."""
    real, _ = api.shapes3d.dataset(len(SHAPES), n_points=n_points, seed=1000)
    return grid_figure(real.numpy(), [f"real {s}" for s in SHAPES], [COLORS[s] for s in SHAPES], cols=5, height=300)


def nearest(distances: np.ndarray) -> tuple[list[str], list[str]]:
    """From each cloud's distance to the five templates (K, 5): the classifier's labels (a shape or
    "unclear") and short titles: the nearest shape, with "?" when it is too far to count, and the distance."""
    best, index = distances.min(1), distances.argmin(1)
    clear = best <= api.shapes3d.UNCLEAR_DISTANCE
    labels = [SHAPES[i] if ok else api.shapes3d.UNCLEAR for i, ok in zip(index, clear)]
    titles = [f"{SHAPES[i]}{'' if ok else '?'} ({d:.3f})" for i, ok, d in zip(index, clear, best)]
    return labels, titles


def title_colors(titles: list[str]) -> list[str]:
    """The nearest shape's colour for each title made by `nearest` (a "?" title keeps its shape's colour)."""
    return [COLORS[t.split(": ")[-1].split(" ")[0].rstrip("?")] for t in titles]  # "t=0.2: cone? (0.07)"


def clouds() -> None:
    st.subheader("A GAN that draws 3-D point clouds")
    st.markdown("Each sample is a set of 256 points in 3-D. The generator is a plain MLP that outputs all "
                "256 × 3 coordinates at once; the critic is a PointNet: the same small MLP φ on every point, "
                "then a max over points (here also a mean, so that every point gets a gradient), so the order "
                "of the points does not matter. Trained as a WGAN-GP on five procedural shapes. Drag any plot "
                "to turn it.")
    st.latex(r"G:\ z\in\mathbb R^{32}\mapsto X\in\mathbb R^{256\times 3},\qquad "
             r"D(X)=h\Big(\max_{i} \varphi(x_i),\ \tfrac{1}{N}\textstyle\sum_i \varphi(x_i)\Big)")
    if not available() or (model := _model()) is None:
        return
    seed = st.number_input("Seed of the generated clouds", 0, 9999, widgets.url_int("seed", 0, 9999, 0),
                           key="cloud_seed")
    widgets.share(seed=seed)
    fake, labels, titles = _gallery(bundled_fingerprint(MODEL), model, int(seed))
    st.markdown("**Real clouds**, one of each shape (each drawn with a small random turn, tilt and stretch)")
    st.plotly_chart(_real_figure(model.config.n_points), key="cloud_real")
    st.markdown("**Generated clouds**, titled with the nearest shape (Chamfer distance to each shape's template)")
    st.plotly_chart(grid_figure(fake, titles, title_colors(titles), cols=5, height=600), key="cloud_fake")
    _gallery_numbers(labels)
    c1, c2 = st.columns(2)
    with c1:
        widgets.download_csv(points_csv_rows(fake, labels, "cloud"), f"pointgan-seed{seed}.csv",
                             key="dl_cloud_points", label="Download generated points (CSV)")
    with c2:
        widgets.download_json(bundled_metrics(MODEL), "pointgan-metrics.json", key="dl_cloud_metrics",
                              label="Download measured metrics (JSON)")


def _gallery_numbers(labels: list[str]) -> None:
    m = bundled_metrics(MODEL)
    sh, cd = m.get("shapes"), m.get("chamfer")
    if not (sh and cd):
        st.info("The bundled model has no measured metrics yet (`python -m engine eval pointgan-shapes`).")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Shapes generated", f"{sh['covered']} of {sh['of']}",
              f"{sh['unclear']:.1%} of {sh['clouds']:,} clouds unclear", delta_color="off", delta_arrow="off")
    c2.metric("Chamfer to nearest real cloud", f"{cd['generated_to_nearest_real']:.4f}",
              f"real clouds: {cd['real_to_nearest_real']:.4f}", delta_color="off", delta_arrow="off")
    c3.metric("Coverage COV-CD", f"{cd['cov_generated']:.0%}", f"real clouds: {cd['cov_real']:.0%}",
              delta_color="off", delta_arrow="off")
    shares = ", ".join(f"{k} {v:.0%}" for k, v in sh["fractions"].items() if v > 0)
    st.caption(f"Measured on {sh['clouds']:,} generated clouds ({shares}) and {cd['clouds']} against "
               f"{cd['clouds']} fresh real clouds; the right-hand numbers are real clouds measured the same way "
               "(the floor). A question mark: farther from every template than the classifier's bound "
               f"({api.shapes3d.UNCLEAR_DISTANCE}), so the metrics count it as unclear. Shown here: "
               + ", ".join(f"{labels.count(s)} {s}" for s in dict.fromkeys(labels)) + ".")


# --- morphing one shape into another -----------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner="Searching the noise for each shape…")
def _latents(fingerprint: str, _model, seed: int) -> dict[str, dict]:
    found = api.latents_by_shape(_model, n_candidates=N_CANDIDATES, seed=seed)
    return {k: {**v, "z": v["z"].numpy()} for k, v in found.items()}


@st.cache_data(max_entries=16, show_spinner="Walking between the two codes…")
def _walk(fingerprint: str, _model, z0: np.ndarray, z1: np.ndarray, kind: str):
    path = api.latent_path(torch.from_numpy(z0), torch.from_numpy(z1), FRAMES, kind=kind)  # (T, latent)
    with torch.inference_mode():
        frames = _model.decode(path.to(_model.device)).cpu()
    distances = api.shapes3d.template_distances(frames).numpy()  # (T, 5)
    return frames.numpy(), *nearest(distances), distances


def morph() -> None:
    st.subheader("Interpolation in latent space: one shape into another")
    st.markdown("Pick two shapes. The app draws 64 noise vectors, finds the nearest shape template of the "
                "cloud each one generates, and takes the closest one of each shape as the two ends; then it walks from one code to the "
                "other and lets the generator draw every step. Each point keeps its colour, so you can follow "
                "it as it travels.")
    if not available() or (model := _model()) is None:
        return
    c1, c2, c3, c4 = st.columns(4)
    start = c1.selectbox("From", SHAPES, index=SHAPES.index(widgets.url_choice("from", SHAPES, "torus")),
                         key="morph_from")
    end = c2.selectbox("To", SHAPES, index=SHAPES.index(widgets.url_choice("to", SHAPES, "cube")), key="morph_to")
    seed = c3.number_input("Seed of the noise search", 0, 9999, widgets.url_int("mseed", 0, 9999, 0),
                           key="morph_seed")
    kind = c4.radio("Path", ["spherical", "linear"], horizontal=True, key="morph_path",
                    index=["spherical", "linear"].index(widgets.url_choice("path", ["spherical", "linear"], "spherical")))
    widgets.share(**{"from": start, "to": end, "mseed": seed, "path": kind})
    found = _latents(bundled_fingerprint(MODEL), model, int(seed))
    missing = [s for s in (start, end) if s not in found]
    if missing:
        share = bundled_metrics(MODEL).get("shapes", {}).get("fractions", {})
        rates = ", ".join(f"{s}: {share[s]:.0%} of its measured clouds" for s in missing if s in share)
        st.warning(f"None of the {N_CANDIDATES} clouds of seed {seed} is nearest the {' or the '.join(missing)} "
                   f"template ({rates or 'no measured rate'}); try another seed. A shape this GAN rarely or "
                   "never draws is a dropped mode: its helices came out too rough to count.")
        return
    if start == end:
        st.info("Both ends are the same shape: pick two different shapes to see a morph.")
    rough = [f"{s} ({found[s]['distance']:.3f})" for s in (start, end) if not found[s]["clear"]]
    if rough:
        st.info(f"The closest of the {N_CANDIDATES} clouds to the template: {', '.join(rough)} is still beyond the "
                f"classifier's bound ({api.shapes3d.UNCLEAR_DISTANCE}), so it is titled with a \"?\". "
                "Another seed may find a cleaner one.")
    frames, labels, names, distances = _walk(bundled_fingerprint(MODEL), model, found[start]["z"], found[end]["z"],
                                             kind)
    names = [n.split(" ")[0] for n in names]  # "cone" or "cone?"
    ts = np.linspace(0, 1, FRAMES)
    strip = [0, 6, 12, 18, 24, 30]
    titles = [f"t={ts[i]:.1f}: {names[i]}" for i in strip]
    st.plotly_chart(grid_figure(frames[strip], titles, title_colors(titles), cols=len(strip), height=280),
                    key="morph_strip")
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(morph_figure(frames, names, ts), key="morph_anim")
        st.caption("Press ▶ Play: the frames are computed once and played by your browser.")
    with right:
        st.plotly_chart(_distance_figure(ts, distances), key="morph_dist")
        st.caption("Each step is titled with its nearest template; above the dashed line it is too far to "
                   "count (\"?\" in the titles, unclear in the metrics). Between the two shapes the walk "
                   "crosses clouds that are neither.")
        widgets.download_csv(points_csv_rows(frames, labels, "frame"), f"pointgan-morph-{start}-{end}.csv",
                             key="dl_morph_points", label="Download the frames' points (CSV)")
        widgets.download_json({"from": start, "to": end, "seed": int(seed), "path": kind, "t": ts.tolist(),
                               "labels": labels, "template_distances": {s: distances[:, k].tolist()
                                                                        for k, s in enumerate(SHAPES)},
                               "z_from": found[start]["z"].tolist(), "z_to": found[end]["z"].tolist()},
                              f"pointgan-morph-{start}-{end}.json", key="dl_morph_json",
                              label="Download the walk (JSON)")


def _distance_figure(ts: np.ndarray, distances: np.ndarray) -> go.Figure:
    fig = go.Figure()
    for k, name in enumerate(SHAPES):
        fig.add_trace(go.Scatter(x=ts, y=distances[:, k], name=name, mode="lines",
                                 line=dict(color=COLORS[name], width=4)))
    fig.add_hline(y=api.shapes3d.UNCLEAR_DISTANCE, line=dict(dash="dash", color="#4a5568", width=2))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=50, b=10), font=dict(size=18),
                      title=dict(text="Distance to each shape's template", font=dict(size=20)),
                      xaxis_title="t along the path", yaxis_title="Chamfer distance", yaxis_rangemode="tozero",
                      legend=dict(orientation="h", y=-0.25))
    return fig
