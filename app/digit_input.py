"""One digit from the user: a test digit by index, an uploaded picture, or strokes drawn on a 28x28 pad.

The pad is a plotly grid of 784 cells: each lasso or box adds ink to the cells inside it; the strokes are
then softened and centred like an MNIST digit (app.uploads). Digits come back as (784,) grey levels k/256.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app.resources import mnist_test
from app.uploads import BadUpload, fit_digit, to_mnist

SIDE = 28
SOURCES = ["test digit", "upload", "draw"]


def as_8bit(image: np.ndarray) -> torch.Tensor:
    """(28, 28) or (784,) in [0, 1] -> (784,) float tensor of grey levels k/256, k in 0..255 (MNIST's storage)."""
    levels = np.clip(np.round(np.asarray(image, dtype=np.float64).reshape(-1) * 256), 0, 255)
    return torch.from_numpy((levels / 256).astype(np.float32))


def digit(key: str, label: str, default: int) -> torch.Tensor | None:
    """A grey digit (784,) from the test set, an upload or the drawing pad; None (with a message) if the
    upload is unusable or nothing is drawn yet."""
    source = st.radio(label, SOURCES, horizontal=True, key=f"{key}_src")
    if source == "test digit":
        images, labels, _ = mnist_test()
        index = st.number_input("Test digit (0 to 9,999)", 0, len(images) - 1, default, key=f"{key}_idx")
        st.caption(f"Test digit {index}: a {int(labels[index])}")
        return images[index]
    if source == "upload":
        return _upload(key)
    return _drawing(key)


def _upload(key: str) -> torch.Tensor | None:
    upload = st.file_uploader("PNG or JPEG of one digit", type=["png", "jpg", "jpeg"], key=f"{key}_up")
    if upload is None:
        st.info("Upload a picture of one digit (dark on light or light on dark).")
        return None
    try:
        return as_8bit(to_mnist(upload.getvalue()))
    except BadUpload as e:
        st.error(f"Could not use {upload.name}: {e}.")
        return None


# --- the drawing pad ------------------------------------------------------------------------------
def _drawing(key: str) -> torch.Tensor | None:
    ink_key = f"{key}_ink"
    st.session_state.setdefault(ink_key, np.zeros((SIDE, SIDE), dtype=np.float32))
    st.caption("Lasso thin strokes (or box small rectangles) on the pad; each one adds ink.")
    st.plotly_chart(pad(st.session_state[ink_key]), key=f"{key}_pad", on_select=lambda: _add_ink(key),
                    selection_mode=("lasso", "box"), config={"displayModeBar": False}, width="content")
    st.button("Clear the pad", key=f"{key}_clear",
              on_click=lambda: st.session_state.update({ink_key: np.zeros((SIDE, SIDE), dtype=np.float32)}))
    ink = st.session_state[ink_key]
    if ink.sum() < 3:
        st.info("Draw a digit on the pad: it needs at least three cells of ink.")
        return None
    return as_8bit(fit_digit(soften(ink)))


def pad(ink: np.ndarray) -> go.Figure:
    """The 28x28 pad: one square marker per cell, white where there is ink, on black like MNIST."""
    rows, cols = np.divmod(np.arange(SIDE * SIDE), SIDE)
    fig = go.Figure(go.Scatter(
        x=cols, y=-rows, mode="markers", hoverinfo="skip",
        marker={"symbol": "square", "size": 9, "color": ink.reshape(-1), "cmin": 0, "cmax": 1,
                "colorscale": [[0, "#1a202c"], [1, "#ffffff"]], "line": {"width": 0}},
        selected={"marker": {"color": "#dd6b20"}}, unselected={"marker": {"opacity": 1}}))
    axis = {"showgrid": False, "zeroline": False, "showticklabels": False}
    fig.update_layout(height=300, width=300, margin={"l": 5, "r": 5, "t": 5, "b": 5}, dragmode="lasso",
                      xaxis={**axis, "range": [-1, SIDE]}, yaxis={**axis, "range": [-SIDE, 1], "scaleanchor": "x"},
                      plot_bgcolor="#1a202c", showlegend=False)
    return fig


def _add_ink(key: str) -> None:
    """The cells inside the new lasso or box get full ink."""
    selection = st.session_state[f"{key}_pad"].selection or {}
    ink = st.session_state[f"{key}_ink"].copy()
    for index in cells(selection):
        ink[divmod(index, SIDE)] = 1.0
    st.session_state[f"{key}_ink"] = ink


def cells(selection: dict) -> list[int]:
    """Cell indices (row * 28 + col) of a plotly selection's points."""
    return [int(p["point_index"]) for p in selection.get("points", [])
            if 0 <= int(p.get("point_index", -1)) < SIDE * SIDE]


def soften(ink: np.ndarray) -> np.ndarray:
    """Binary strokes (28, 28) -> anti-aliased strokes in [0, 1]: a 3x3 binomial blur, renormalized."""
    padded = np.pad(ink.astype(np.float64), 1)
    kernel = np.array([1.0, 2.0, 1.0]) / 4
    rows = sum(w * padded[i:i + SIDE, :] for i, w in enumerate(kernel))
    blurred = sum(w * rows[:, j:j + SIDE] for j, w in enumerate(kernel))
    return np.clip(np.maximum(ink, blurred / blurred.max()), 0, 1)
