"""Shared, read-only resources: bundled models and datasets, loaded once per server (st.cache_resource).

Cached models are put in eval mode and never trained or mutated; a user's own model lives in
st.session_state instead.
"""
from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st
import torch

from engine import api, chains


def configure_torch() -> None:
    """Once per process: leave a core free for interactive sessions while background jobs run."""
    api.cap_threads(api.background_threads())


@st.cache_resource(show_spinner="Loading the bundled model…")
def bundled_model(name: str):
    model = api.load(name)
    model.requires_grad_(False)
    return model


@st.cache_resource(show_spinner=False)
def bundled_metrics(name: str) -> dict:
    return api.read_metrics(api.resolve(name))


@st.cache_resource(show_spinner=False)
def bundled_fingerprint(name: str) -> str:
    return api.fingerprint(api.resolve(name))


@st.cache_resource(show_spinner=False)
def bundled_chains(name: str) -> tuple[torch.Tensor, dict] | None:
    """The equilibrium chains kept beside bundled checkpoint `name` (engine.chains): binary states (n, D) and
    their metadata ("sweeps", "seed"), or None when it keeps none for its current weights."""
    return chains.load(api.resolve(name))


def loadable(name: str) -> bool:
    """Whether bundled checkpoint `name` loads; if not, an st.error says why and the caller leaves it out."""
    try:
        bundled_model(name)
        return True
    except api.CheckpointError as e:
        st.error(f"The bundled checkpoint {name!r} cannot be loaded and is left out: {e}")
        return False


def bundled_names(model_type: str | None = None) -> list[str]:
    """Bundled checkpoint names, optionally only those of one registered family."""
    names = []
    for name, folder in api.bundled().items():
        if model_type is None or api.checkpoint.read_config(folder)[0] == model_type:
            names.append(name)
    return names


@st.cache_resource(show_spinner="Loading MNIST…")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grey images (N, 784), labels (N,), seeded binarization (N, 784)) of the MNIST test split.

    Raises api.DatasetUnavailable with a clear message when MNIST is not installed."""
    return api.mnist.images("test"), api.mnist.labels("test"), api.mnist.binarized("test")


@st.cache_resource(show_spinner=False)
def mnist_train_sample(n: int = 2000) -> torch.Tensor:
    """The first n training images, binarized with the engine's seeded binarization: (n, 784)."""
    return api.mnist.binarized("train", seed=1)[:n]


def require_mnist() -> None:
    """Pages that need MNIST call this first: a clear message, and the page stops there, when it is missing."""
    try:
        mnist_test()
    except api.DatasetUnavailable as e:
        st.error(f"MNIST is not available, so this page cannot run. {e}")
        st.stop()


def checkpoint_zip(model, card, meta: dict) -> bytes:
    """A model trained on a page as a zip of config.json + model.safetensors + README.md (written by `card(model,
    metrics)`), loadable with `python -m engine eval <folder>`; `meta` is the training job's settings."""
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = {"training": {**meta, "preset": "app", "device": "cpu"}}
        api.save(model, tmp, card=card(model, metrics), metrics=metrics)
        with zipfile.ZipFile(buf, "w") as z:
            for f in Path(tmp).iterdir():
                z.write(f, f.name)
    return buf.getvalue()
