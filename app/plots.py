"""Figures: crisp image grids (PNG), heatmaps, curves and browser-side animations. Inputs are numpy/torch arrays."""
from __future__ import annotations

import base64
import io

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
from PIL import Image

FONT = dict(size=18)
DIVERGING = "RdBu_r"


def to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def grid(images, *, cols: int | None = None, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile images (N, H, W) in [0, 1] into one (rows*(H+pad)+pad, cols*(W+pad)+pad) array."""
    images = to_numpy(images)
    n, h, w = images.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value, dtype=np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = im
    return out


def png(image, *, scale: int = 4) -> bytes:
    """A (H, W) array in [0, 1] as PNG bytes, upscaled by `scale` with nearest neighbour (crisp pixels)."""
    image = np.clip(to_numpy(image), 0, 1)
    pil = Image.fromarray((image * 255).round().astype(np.uint8), mode="L")
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def grid_png(images, *, cols: int | None = None, scale: int = 4, pad: int = 2) -> bytes:
    return png(grid(images, cols=cols, pad=pad), scale=scale)


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), font=FONT)
    return fig


def heatmaps(maps, titles: list[str], *, symmetric: bool = True, height: int = 360,
             colorscale: str = DIVERGING) -> go.Figure:
    """Side-by-side heatmaps (K, H, W) with one shared colour scale (centred on 0 when symmetric)."""
    maps = to_numpy(maps)
    limit = float(np.abs(maps).max()) or 1.0
    fig = px.imshow(maps, facet_col=0, facet_col_spacing=0.02, color_continuous_scale=colorscale,
                    zmin=-limit if symmetric else None, zmax=limit if symmetric else None, aspect="equal")
    for i, title in enumerate(titles):
        fig.layout.annotations[i].text = title
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    return _layout(fig, height)


def animation(frames, *, labels: list[str] | None = None, height: int = 520, cols: int | None = None,
              name: str = "step", start: int = 0) -> go.Figure:
    """A browser-side animation of image grids: frames (T, N, H, W) in [0, 1] -> plotly figure with a slider
    (its readout "name=label"), showing frame `start` first."""
    frames = to_numpy(frames)
    tiled = np.stack([grid(f, cols=cols) for f in frames])  # (T, GH, GW)
    fig = px.imshow(tiled, animation_frame=0, color_continuous_scale="gray", zmin=0, zmax=1,
                    binary_string=True, labels={"animation_frame": name})
    if labels:
        for step, label in zip(fig.layout.sliders[0].steps, labels):
            step.label = label
    if start:
        fig.data[0].source = fig.frames[start].data[0].source
        fig.layout.sliders[0].active = start
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    fig.layout.updatemenus[0].buttons[0].args[1]["frame"]["duration"] = 120
    fig.layout.updatemenus[0].buttons[0].args[1]["transition"]["duration"] = 0
    return _layout(fig, height)


def curves(history: list[dict], keys: list[str], *, x: str = "step", height: int = 260,
           y_title: str = "") -> go.Figure:
    """Line chart of selected metrics over training: one small panel per key."""
    fig = go.Figure()
    rows = [h for h in history if all(k in h for k in (x, *keys))]
    for key in keys:
        fig.add_trace(go.Scatter(x=[r[x] for r in rows], y=[r[key] for r in rows], mode="lines+markers",
                                 name=key.replace("_", " ")))
    fig.update_layout(xaxis_title=x, yaxis_title=y_title, showlegend=len(keys) > 1,
                      legend=dict(orientation="h", y=1.15))
    return _layout(fig, height)


def bars(labels: list[str], values, *, title: str = "", height: int = 300, range_=(0, 1)) -> go.Figure:
    fig = go.Figure(go.Bar(x=labels, y=to_numpy(values), marker_color="#2b6cb0",
                           text=[f"{v:.2f}" for v in to_numpy(values)], textposition="outside"))
    fig.update_layout(title=title, yaxis_range=list(range_))
    return _layout(fig, height)


def data_uri(png_bytes: bytes) -> str:
    """PNG bytes as a data: URI (a plotly image's source)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode()


def signed_png(image, *, limit: float, scale: int = 4) -> bytes:
    """A signed (H, W) array as an RGB PNG: blue below 0, white at 0, red above, saturated at +-limit;
    NaN cells (padding between tiles) are light grey. Upscaled by `scale` with nearest neighbour."""
    image = to_numpy(image).astype(np.float64)
    gap = np.isnan(image)
    t = np.clip(np.nan_to_num(image) / (limit or 1.0), -1, 1)[..., None]
    white, red, blue = np.array([1.0, 1.0, 1.0]), np.array([0.70, 0.09, 0.17]), np.array([0.13, 0.40, 0.67])
    rgb = np.where(t >= 0, white + t * (red - white), white - t * (blue - white))
    rgb[gap] = 0.88
    pil = Image.fromarray((rgb * 255).round().astype(np.uint8), mode="RGB")
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
