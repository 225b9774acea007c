"""Page furniture shared by every page: header, downloads, URL-shareable controls, friendly errors."""
from __future__ import annotations

import io
import json
import zipfile
from typing import Sequence

import streamlit as st


def header(title: str, idea: str, *formulas: str) -> None:
    """A page's title, its one-paragraph idea and the slide's formulas."""
    st.title(title)
    st.markdown(idea)
    for formula in formulas:
        st.latex(formula)


def view_selector(labels: dict[str, str], *, key: str) -> str:
    """The page's views as a segmented control, one idea per screen, shared by URL as ?view=...

    labels: view id -> button label, in display order; the first is the default. Returns the chosen id."""
    ids = list(labels)
    view = st.segmented_control("View", ids, format_func=labels.get, key=key, required=True,
                                default=url_choice("view", ids, ids[0]), label_visibility="collapsed")
    share(view=view)
    st.divider()
    return view


def url_choice(key: str, options: Sequence[str], default: str) -> str:
    """The value of query parameter `key` if it is one of `options`, else `default` (with a visible note)."""
    raw = st.query_params.get(key)
    if raw is None:
        return default
    if raw in options:
        return raw
    st.warning(f"The link asks for {key}={raw!r}, which is not one of {', '.join(options)}; showing {default!r}.")
    del st.query_params[key]
    return default


def url_int(key: str, low: int, high: int, default: int) -> int:
    """Integer query parameter `key` within [low, high], else `default` (with a visible note)."""
    raw = st.query_params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        st.warning(f"The link asks for {key}={raw!r}; it must be a whole number from {low} to {high}. Showing {default}.")
        del st.query_params[key]
        return default
    return value


def share(**params) -> None:
    """Write the current view's settings into the URL so it can be shared."""
    for key, value in params.items():
        if st.query_params.get(key) != str(value):
            st.query_params[key] = str(value)


def download_png(data: bytes, file_name: str, *, key: str, label: str = "Download PNG") -> None:
    st.download_button(label, data, file_name=file_name, mime="image/png", key=key, on_click="ignore",
                       icon=":material/download:")


def download_zip(files: dict[str, bytes], file_name: str, *, key: str, label: str = "Download ZIP",
                 help: str | None = None) -> None:
    """One download of several files (name -> bytes), stored uncompressed in a ZIP."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    st.download_button(label, buffer.getvalue(), file_name=file_name, mime="application/zip", key=key,
                       on_click="ignore", icon=":material/download:", help=help)


def download_json(data: dict, file_name: str, *, key: str, label: str = "Download JSON") -> None:
    st.download_button(label, json.dumps(data, indent=2), file_name=file_name, mime="application/json",
                       key=key, on_click="ignore", icon=":material/download:")


def download_csv(rows: list[dict], file_name: str, *, key: str, label: str = "Download CSV") -> None:
    """Rows of numbers (one dict per row, same keys) as a CSV file."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = [",".join(keys)] + [",".join(str(row.get(k, "")) for k in keys) for row in rows]
    st.download_button(label, "\n".join(lines) + "\n", file_name=file_name, mime="text/csv", key=key,
                       on_click="ignore", icon=":material/download:")


def image(data: bytes, *, caption: str | None = None, width: int | str = "content") -> None:
    st.image(data, caption=caption, width=width, output_format="PNG")
