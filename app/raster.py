"""Scatter plots drawn to PNG on the server, for browser-played animations with many frames: a plotly frame that
swaps one image is cheap to draw, where one that redraws thousands of WebGL markers is not (about 4x slower in
headless Chromium). The image is placed on real plotly axes (see `layout_image`), so ticks and zoom still work."""
from __future__ import annotations

import functools
import io

import numpy as np
import plotly.colors
from PIL import Image, ImageDraw

from app import plots


@functools.lru_cache(maxsize=8)
def colour_table(colorscale: str, n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB samples of a plotly colour scale from its low end to its high end."""
    colours = plotly.colors.sample_colorscale(colorscale, np.linspace(0, 1, n), colortype="tuple")
    return (np.array(colours) * 255).round().astype(np.uint8)


def scatter_png(box: float, size: int, *, points: np.ndarray, values01: np.ndarray, table: np.ndarray,
                lines: np.ndarray | None = None, radius: float = 3.0, line_rgba=(90, 90, 90, 90)) -> bytes:
    """A PNG of the square [-box, box]^2 at `size` x `size` pixels: polylines `lines` (L, P, 2) drawn first,
    then `points` (N, 2) as discs coloured by `values01` (N,) in [0, 1] through `table` (see colour_table)."""
    scale = size / (2 * box)

    def to_pixels(xy: np.ndarray) -> np.ndarray:
        return np.stack([(xy[..., 0] + box) * scale, (box - xy[..., 1]) * scale], -1)

    image = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    if lines is not None:
        overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        pen = ImageDraw.Draw(overlay)
        for line in to_pixels(lines):
            pen.line([tuple(p) for p in line], fill=line_rgba, width=1)
        image = Image.alpha_composite(image, overlay)
    pen = ImageDraw.Draw(image)
    indices = np.clip(np.nan_to_num(values01) * (len(table) - 1), 0, len(table) - 1).astype(int)
    for (x, y), i in zip(to_pixels(points), indices):
        if abs(x) < 4 * size and abs(y) < 4 * size:
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=tuple(int(c) for c in table[i]))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def layout_image(png: bytes, box: float) -> dict:
    """The PNG of `scatter_png` as a plotly layout image covering [-box, box]^2 on the x and y axes, under the
    traces (a layout image, unlike an image trace, keeps the y axis pointing up)."""
    return dict(source=plots.data_uri(png), xref="x", yref="y", x=-box, y=box, sizex=2 * box, sizey=2 * box,
                sizing="stretch",
                xanchor="left", yanchor="top", layer="below")
