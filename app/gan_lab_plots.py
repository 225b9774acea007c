"""The 2-D GAN lab's figures, built from an engine.gan_lab.Snapshot (numpy arrays). Every panel shows the
same square of the plane with equal axes, so the four can be read side by side."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

REAL, FAKE, ARROW = "rgba(90, 105, 120, 0.35)", "#e8590c", "#17202a"
LINES = ("#1f5fa8", "#9c36b5")
VALUE_SCALE = [[0.0, "#d6604d"], [0.5, "#f7f7f7"], [1.0, "#4393c3"]]  # low (looks fake) red, high (looks real) blue  # manifold: lines of constant z2, of constant z1
FONT = dict(size=16)
HEIGHT = 440
GRID = "#eef1f5"


def _figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain dicts, skipping plotly's validation (about 10x faster to build; the lab
    redraws five figures every refresh while training shares the CPU)."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def _plane(data: list[dict], title: str, extent: float, *, legend: bool = False) -> go.Figure:
    axis = dict(range=[-extent, extent], showgrid=False, zeroline=False, showticklabels=False,
                showline=True, linecolor="#ccd3db", mirror=True)
    layout = dict(
        title=dict(text=title, x=0.02, y=0.97, font=dict(size=19)), height=HEIGHT, font=FONT,
        margin=dict(l=10, r=10, t=44, b=10), showlegend=legend, plot_bgcolor="white",
        legend=dict(orientation="h", x=0.02, y=0.02, bgcolor="rgba(255,255,255,0.8)", font=dict(size=15)),
        xaxis=axis, yaxis=dict(axis, scaleanchor="x", scaleratio=1),
        uirevision="lab")  # keep the user's zoom while the figure updates
    return _figure(data, layout)


def _points(xy: np.ndarray, name: str, color: str, size: float, edge: float = 0.0) -> dict:
    return dict(type="scatter", x=xy[:, 0], y=xy[:, 1], mode="markers", name=name, hoverinfo="skip",
                marker=dict(size=size, color=color, line=dict(width=edge, color="#3d1a00")))


def samples(snap, extent: float) -> go.Figure:
    """Real points (grey) and generated points (orange)."""
    return _plane([_points(snap.real, "real", REAL, 6), _points(snap.fake, "generated", FAKE, 5)],
                  "Real vs generated", extent, legend=True)


def value_map(snap, extent: float) -> go.Figure:
    """D(x) (or the critic f(x)) as a heatmap over the plane, generated points on top."""
    v = snap.value
    r = np.linspace(-extent, extent, v.shape[0])
    if snap.value_label == "D(x)":
        scale = dict(zmin=0.0, zmax=1.0)
    else:  # a critic is defined up to a constant: centre the colours on its mean over the plane
        finite = v[np.isfinite(v)] if np.isfinite(v).any() else np.zeros(1)
        half = float(np.percentile(np.abs(finite - finite.mean()), 99)) or 1.0
        scale = dict(zmin=float(finite.mean()) - half, zmax=float(finite.mean()) + half)
    heat = dict(type="heatmap", x=r, y=r, z=v, colorscale=VALUE_SCALE, **scale, hoverinfo="skip",
                colorbar=dict(thickness=12, len=0.8, tickfont=dict(size=13)))
    title = "Discriminator D(x)" if snap.value_label == "D(x)" else "Critic f(x)"
    return _plane([heat, _points(snap.fake, "generated", FAKE, 5, edge=0.6)], title, extent)


def _polylines(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L, P, 2) polylines as one x and one y array with NaN breaks between lines."""
    gap = np.full((len(lines), 1, 2), np.nan, dtype=lines.dtype)
    flat = np.concatenate([lines, gap], 1).reshape(-1, 2)
    return flat[:, 0], flat[:, 1]


def manifold(snap, extent: float) -> go.Figure:
    """G's image of a grid of noise lines over the real points."""
    lines = snap.manifold
    half = len(lines) // 2 if len(lines) > 1 else len(lines)
    traces = [_points(snap.real, "real", REAL, 5)]
    for part, color, name in ((lines[:half], LINES[0], "z2 fixed"), (lines[half:], LINES[1], "z1 fixed")):
        if len(part):
            x, y = _polylines(part)
            traces.append(dict(type="scatter", x=x, y=y, mode="lines", name=name, hoverinfo="skip",
                               line=dict(color=color, width=1.6)))
    title = "Generator's map of the noise grid" if snap.settings.noise_dim > 1 else "Generator's map of the noise line"
    return _plane(traces, title, extent)


def arrows(snap, extent: float, *, longest: float = 0.6) -> go.Figure:
    """-d(G's loss)/dx at generated points: where the next G update pushes each point.

    Arrows are scaled together so the 95th-percentile length is `longest` plane units."""
    at, push = snap.arrows_at, snap.arrows
    norm = np.linalg.norm(push, axis=1)
    finite = norm[np.isfinite(norm)]
    ref = float(np.percentile(finite, 95)) if finite.size else 0.0
    scale = longest / ref if ref > 0 else 0.0
    tip = at + np.clip(push * scale, -longest * 2, longest * 2)
    d = tip - at
    length = np.linalg.norm(d, axis=1, keepdims=True)
    unit = np.divide(d, length, out=np.zeros_like(d), where=length > 1e-9)
    normal = np.stack([-unit[:, 1], unit[:, 0]], 1)
    head = np.minimum(length, 0.12)
    left, right = tip - head * (unit - 0.5 * normal), tip - head * (unit + 0.5 * normal)
    gap = np.full_like(at, np.nan)
    shaft = np.stack([at, tip, gap], 1).reshape(-1, 2)
    heads = np.stack([left, tip, right, gap], 1).reshape(-1, 2)
    segs = np.concatenate([shaft, heads])
    push_lines = dict(type="scatter", x=segs[:, 0], y=segs[:, 1], mode="lines", name="push", hoverinfo="skip",
                      line=dict(color=ARROW, width=1.4))
    return _plane([_points(snap.real, "real", REAL, 5), _points(at, "generated", FAKE, 6), push_lines],
                  "Where G's next update pushes its points", extent)


def _line_layout(title: str, **extra) -> dict:
    return dict(height=300, font=FONT, margin=dict(l=10, r=10, t=44, b=10), plot_bgcolor="white",
                title=dict(text=title, x=0.02, font=dict(size=19)), uirevision="lab",
                xaxis=dict(title=dict(text="step (G updates)"), showgrid=True, gridcolor=GRID),
                yaxis=dict(showgrid=True, gridcolor=GRID, zerolinecolor="#ccd3db"), **extra)


def curves(snap) -> go.Figure:
    """Both players' losses over training (and the critic's Wasserstein estimate for the WGANs)."""
    c = snap.curves
    names = [("d_loss", "D loss", "#1f5fa8"), ("g_loss", "G loss", FAKE)]
    if snap.value_label != "D(x)":
        names.append(("gap", "W estimate E f(real) − E f(fake)", "#2b8a3e"))
    data = [dict(type="scatter", x=c["step"], y=c[key], mode="lines", name=label, line=dict(color=color, width=2.2))
            for key, label, color in names if key in c and len(c[key])]
    return _figure(data, _line_layout("Losses", legend=dict(orientation="h", y=1.12, x=0.2)))


def coverage_curve(snap) -> go.Figure:
    """Modes covered (mixtures) or the covered fraction of the target, over training."""
    c = snap.coverage_curve
    if "modes_covered" in c:
        y, title, top = c["modes_covered"], "Modes covered", float(c["modes"][-1])
    else:
        y, title, top = c["covered"], "Fraction of the target covered", 1.0
    line = dict(type="scatter", x=c["step"], y=y, mode="lines", line=dict(color="#2b8a3e", width=2.5, shape="hv"))
    layout = _line_layout(title)
    layout["yaxis"]["range"] = [0, top * 1.05]
    return _figure([line], layout)
