"""The 2-D GAN lab's figures, built from an engine.gan_lab.Snapshot (numpy arrays).

The four panels on the plane are drawn here as images (PIL, drawn at twice the size and halved, so
edges are smooth; sent as JPEG): the board redraws every second while training, and four plotly charts of a thousand
SVG markers each kept the browser busy for most of that second on two cores (about 0.9 s per redraw
measured), while swapping four images costs it almost nothing. The two curves stay plotly charts.
Every panel shows the same square of the plane, [-extent, extent]^2, with equal axes.
"""
from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

SIZE = 560  # pixels per panel side (the page shows it at about 450 CSS px: crisp on a projector)
SS = 2  # drawn at SS x SIZE, then reduced
REAL, FAKE, ARROW = (150, 160, 172), (232, 89, 12), (23, 32, 42)
FAKE_EDGE = (80, 30, 0)
LINES = ((31, 95, 168), (156, 54, 181))  # manifold: lines of constant z2, of constant z1
LOW, MID, HIGH = np.array([214, 96, 77]), np.array([247, 247, 247]), np.array([67, 147, 195])  # looks fake..real
FRAME = (204, 211, 219)
FONT = dict(size=16)
GRID = "#eef1f5"
BACKDROP = 250  # real points drawn behind the manifold and the arrows
SPOT = 0.15  # G's image of the noise grid narrower than this (plane units) is ringed: collapse


# --- drawing on the plane --------------------------------------------------------------------------
class Plane:
    """A square canvas for [-extent, extent]^2; world points are (N, 2) arrays, y up."""

    def __init__(self, extent: float, background: Image.Image | None = None) -> None:
        self.extent, self.px = extent, SIZE * SS
        if background is None:
            self.image = Image.new("RGB", (self.px, self.px), "white")
        else:  # smooth up to the panel size, then a cheap nearest-neighbour doubling
            self.image = background.resize((SIZE, SIZE), Image.BILINEAR).resize((self.px, self.px), Image.NEAREST)
        self.draw = ImageDraw.Draw(self.image)

    def to_px(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) world -> (N, 2) pixel coordinates (row 0 at y = +extent)."""
        scale = self.px / (2 * self.extent)
        return np.stack([(xy[:, 0] + self.extent) * scale, (self.extent - xy[:, 1]) * scale], 1)

    def dots(self, xy: np.ndarray, color, radius: float, edge=None) -> None:
        r = radius * SS
        for u, v in self.to_px(xy[np.isfinite(xy).all(1)]):
            self.draw.ellipse((u - r, v - r, u + r, v + r), fill=color, outline=edge, width=SS if edge else 0)

    def polyline(self, xy: np.ndarray, color, width: float) -> None:
        """One line through the points, broken wherever a point is not finite."""
        px, ok = self.to_px(xy), np.isfinite(xy).all(1)
        start = 0
        for end in [*np.flatnonzero(~ok), len(xy)]:
            if end - start >= 2:
                self.draw.line([tuple(p) for p in px[start:end]], fill=color, width=int(width * SS), joint="curve")
            start = end + 1

    def jpeg(self) -> bytes:
        """The panel as JPEG bytes (quality 92, no chroma subsampling: crisp coloured dots; encoding a PNG
        took ten times longer, and the board encodes four panels every second)."""
        self.draw.rectangle((0, 0, self.px - 1, self.px - 1), outline=FRAME, width=2 * SS)
        buf = io.BytesIO()
        self.image.reduce(SS).save(buf, format="JPEG", quality=92, subsampling=0)
        return buf.getvalue()


def value_colors(value: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(R, R) values -> (R, R, 3) uint8 on the red-white-blue scale, lo red, (lo + hi) / 2 white, hi blue."""
    t = np.clip((np.nan_to_num(value, nan=(lo + hi) / 2) - lo) / max(hi - lo, 1e-12), 0, 1)[..., None]
    rgb = np.where(t < 0.5, LOW + (MID - LOW) * (2 * t), MID + (HIGH - MID) * (2 * t - 1))
    return rgb.round().astype(np.uint8)


def value_range(snap) -> tuple[float, float]:
    """D(x) on [0, 1]; a critic (defined up to a constant) centred on its mean over the plane."""
    if snap.value_label == "D(x)":
        return 0.0, 1.0
    v = snap.value[np.isfinite(snap.value)]
    if not v.size:
        return -1.0, 1.0
    half = float(np.percentile(np.abs(v - v.mean()), 99)) or 1.0
    return float(v.mean()) - half, float(v.mean()) + half


# --- the four panels (JPEG bytes) ---------------------------------------------------------------------
def samples(snap, extent: float) -> bytes:
    """Real points (grey) and generated points (orange)."""
    plane = Plane(extent)
    plane.dots(snap.real, REAL, 3.2)
    plane.dots(snap.fake, FAKE, 3.0)
    return plane.jpeg()


def value_map(snap, extent: float) -> bytes:
    """D(x) (or the critic f(x)) as a heatmap over the plane, generated points on top."""
    lo, hi = value_range(snap)
    heat = Image.fromarray(value_colors(snap.value[::-1], lo, hi))  # row 0 of the map is y = -extent
    plane = Plane(extent, heat)
    plane.dots(snap.fake, FAKE, 3.0, edge=FAKE_EDGE)
    return plane.jpeg()


def manifold(snap, extent: float) -> bytes:
    """G's image of a grid of noise lines (first half: z2 fixed, second half: z1 fixed) over the real points."""
    plane = Plane(extent)
    plane.dots(snap.real[:BACKDROP], REAL, 3.0)
    lines = snap.manifold
    half = len(lines) // 2 if len(lines) > 1 else len(lines)
    for i, line in enumerate(lines):
        plane.polyline(line, LINES[0] if i < half else LINES[1], 1.6)
    width = manifold_width(lines)
    if width < SPOT:  # the whole grid in one spot (collapse): ring it so it can be found
        centre = np.nanmean(lines.reshape(-1, 2), 0)[None]
        (u, v), r = plane.to_px(centre)[0], 0.3 * plane.px / (2 * extent)
        plane.draw.ellipse((u - r, v - r, u + r, v + r), outline=LINES[1], width=2 * SS)
    return plane.jpeg()


def manifold_width(lines: np.ndarray) -> float:
    """The larger side of the bounding box of G's image of the noise grid (plane units; nan if not finite)."""
    flat = lines.reshape(-1, 2)
    flat = flat[np.isfinite(flat).all(1)]
    return float((flat.max(0) - flat.min(0)).max()) if len(flat) else float("nan")


def arrow_segments(at: np.ndarray, push: np.ndarray, longest: float) -> tuple[np.ndarray, np.ndarray]:
    """Arrow tips and the two ends of each head: push scaled together so its 95th-percentile length is
    `longest` (capped at twice that). Returns tips (N, 2) and heads (N, 3, 2): left, tip, right."""
    norm = np.linalg.norm(push, axis=1)
    finite = norm[np.isfinite(norm)]
    ref = float(np.percentile(finite, 95)) if finite.size else 0.0
    d = np.clip(push * (longest / ref if ref > 0 else 0.0), -2 * longest, 2 * longest)
    length = np.linalg.norm(d, axis=1, keepdims=True)
    unit = np.divide(d, length, out=np.zeros_like(d), where=length > 1e-9)
    normal = np.stack([-unit[:, 1], unit[:, 0]], 1)
    tip, head = at + d, np.minimum(length, 0.13)
    return tip, np.stack([tip - head * (unit - 0.5 * normal), tip, tip - head * (unit + 0.5 * normal)], 1)


def arrows(snap, extent: float, *, longest: float = 0.6) -> bytes:
    """-d(G's loss)/dx at generated points: where the next G update pushes each point."""
    plane = Plane(extent)
    plane.dots(snap.real[:BACKDROP], REAL, 3.0)
    tips, heads = arrow_segments(snap.arrows_at, snap.arrows, longest)
    for start, tip, head in zip(snap.arrows_at, tips, heads):
        if np.isfinite(tip).all():
            plane.polyline(np.stack([start, tip]), ARROW, 1.3)
            plane.polyline(head, ARROW, 1.3)
    plane.dots(snap.arrows_at, FAKE, 3.2)
    return plane.jpeg()


def board_png(panels: list[bytes]) -> bytes:
    """The four panels (JPEG bytes) as one 2x2 PNG, for download."""
    images = [Image.open(io.BytesIO(p)) for p in panels]
    w, h = images[0].size
    out = Image.new("RGB", (2 * w + 10, 2 * h + 10), "white")
    for i, im in enumerate(images):
        out.paste(im, ((i % 2) * (w + 10), (i // 2) * (h + 10)))
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


# --- the curves (plotly) ----------------------------------------------------------------------------
def draw_pad(extent: float, *, points_per_side: int = 31) -> go.Figure:
    """A square of faint grid points over [-extent, extent]^2 to lasso or box: the user's drawing tool.

    31 x 31 points (a spacing of 0.2 on the lab's plane) stay under plotly's SVG comfort limit of ~1k points."""
    ticks = np.linspace(-extent, extent, points_per_side)
    x, y = np.meshgrid(ticks, ticks)
    fig = go.Figure(go.Scatter(x=x.ravel(), y=y.ravel(), mode="markers", hoverinfo="skip",
                               marker={"size": 5, "color": "#a0aec0"},
                               selected={"marker": {"color": "#dd6b20", "size": 7}},
                               unselected={"marker": {"opacity": 0.5}}))
    axis = {"range": [-extent * 1.05, extent * 1.05], "showgrid": False, "zeroline": False, "showticklabels": False}
    fig.update_layout(height=300, width=300, margin={"l": 5, "r": 5, "t": 5, "b": 5}, dragmode="lasso",
                      xaxis=axis, yaxis={**axis, "scaleanchor": "x"}, plot_bgcolor="white", showlegend=False)
    return fig


def _figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain dicts, skipping plotly's validation (about 10x faster to build)."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def _line_layout(title: str, **extra) -> dict:
    return dict(height=300, font=FONT, margin=dict(l=10, r=10, t=64, b=10), plot_bgcolor="white",
                title=dict(text=title, x=0.02, y=0.97, font=dict(size=19)), uirevision="lab",
                xaxis=dict(title=dict(text="step (G updates)"), showgrid=True, gridcolor=GRID),
                yaxis=dict(showgrid=True, gridcolor=GRID, zerolinecolor="#ccd3db"), **extra)


def curves(snap) -> go.Figure:
    """Both players' losses over training (and the critic's Wasserstein estimate for the WGANs)."""
    c = snap.curves
    names = [("d_loss", "D loss", "#1f5fa8"), ("g_loss", "G loss", "#e8590c")]
    if snap.value_label != "D(x)":
        names.append(("gap", "W estimate", "#2b8a3e"))  # E f(real) - E f(fake), without the penalty
    data = [dict(type="scatter", x=c["step"], y=c[key], mode="lines", name=label, line=dict(color=color, width=2.2))
            for key, label, color in names if key in c and len(c[key])]
    legend = dict(orientation="h", x=0.0, y=1.0, yanchor="bottom", font=dict(size=15))
    return _figure(data, _line_layout("Losses", legend=legend))


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
    layout["xaxis"]["range"] = [0, max(float(c["step"][-1]), 25.0)]
    return _figure([line], layout)
