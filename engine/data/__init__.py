"""Datasets. Each loader fails with a `DatasetUnavailable` error that says what is missing and how to get it."""
from __future__ import annotations

import os
from pathlib import Path


class DatasetUnavailable(RuntimeError):
    """A dataset could not be found or read; the message names the source and the fix."""


def cache_dir() -> Path:
    """Where converted datasets are cached (`DGM_CACHE_DIR`, default ~/.cache/dgm-explorer)."""
    path = Path(os.environ.get("DGM_CACHE_DIR", Path.home() / ".cache" / "dgm-explorer"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    """Local folder of text/audio/face corpora: `DGM_DATA_DIR`, else ../shared/data beside the checkout."""
    if os.environ.get("DGM_DATA_DIR"):
        return Path(os.environ["DGM_DATA_DIR"])
    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    return shared if shared.is_dir() else None
