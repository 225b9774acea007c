"""Seconds per epoch of RBM training: this engine's ContrastiveDivergence vs scikit-learn's BernoulliRBM.

What it measures: one epoch of PCD-1 (persistent contrastive divergence, one Gibbs step), 500 hidden
units, batches of 100 taken in order, learning rate 0.05, no momentum and no weight decay, on the
50,000 binarized MNIST training images (`engine.data.mnist.binarized("train", seed=1)`), for
- the engine (`engine/models/rbm.py`) with fp32 matmuls and with bf16 matmul operands (fp32 accumulation),
- `sklearn.neural_network.BernoulliRBM` (the same algorithm) on float32 data, and on float64 data.
All four run side by side in this one process, one case after the other: a short warm-up (10 batches),
then 3 timed epochs, then a one-second pause. Cases are not interleaved batch by batch or epoch by
epoch: torch's OpenMP threads and OpenBLAS's threads each keep spinning for a while after their last
call, and interleaving made every case 30-60% slower, each library stealing cores from the other.
The table gives the best and the median of the 3 epochs, and the ratios use the best. The secondary
sklearn float64 line is timed once, to keep the whole run under about a minute.
The target is the engine at least 2x faster than sklearn on float32 (ratio sklearn_f32 / engine >= 2).

Threads: torch uses torch.get_num_threads() intra-op threads; sklearn/numpy use their BLAS threads as
set up by the environment (this script does not change OPENBLAS_*/OMP_* variables), printed below.

Run from the repository root: `make bench`, or `PYTHONPATH=. .venv/bin/python bench/rbm_vs_sklearn.py`
(equivalently `.venv/bin/python -m bench.rbm_vs_sklearn`); `engine` is imported from the checkout.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch

from engine import api
from engine.data import mnist

N_HIDDEN, BATCH, LR, REPEATS = 500, 100, 0.05, 3
TARGET = 2.0
FIRST_ROUND_ONLY = {"sklearn float64"}  # timed once


def engine_epoch(x: torch.Tensor, matmul_dtype: torch.dtype, n_rows: int | None = None) -> float:
    """Seconds for one PCD-1 epoch of a fresh 500-hidden RBM over x (N, 784) in order."""
    model = api.build("rbm", n_hidden=N_HIDDEN)
    opts = model.make_optimizers(lr=LR, k=1, persistent=True, momentum=0.0, weight_decay=0.0,
                                 matmul_dtype=matmul_dtype)
    g = torch.Generator().manual_seed(0)
    n = n_rows or len(x)
    start = time.perf_counter()
    for i in range(0, n - BATCH + 1, BATCH):
        model.train_step(x[i:i + BATCH], opts, generator=g)
    return time.perf_counter() - start


def sklearn_epoch(x: np.ndarray) -> float:
    """Seconds for one epoch of sklearn's BernoulliRBM (PCD-1, batches in order) over x (N, 784)."""
    from sklearn.neural_network import BernoulliRBM
    rbm = BernoulliRBM(n_components=N_HIDDEN, batch_size=BATCH, n_iter=1, learning_rate=LR, random_state=0)
    start = time.perf_counter()
    rbm.fit(x)
    return time.perf_counter() - start


def measure(cases: dict) -> dict[str, list[float]]:
    """Each case in turn: warm up, REPEATS timed epochs (1 for FIRST_ROUND_ONLY), pause. name -> seconds."""
    times = {}
    for name, (run, warmup) in cases.items():
        warmup()
        times[name] = [run() for _ in range(1 if name in FIRST_ROUND_ONLY else REPEATS)]
        time.sleep(1.0)  # let this library's spinning worker threads go idle before the next case
    return times


def blas_threads() -> str:
    from threadpoolctl import threadpool_info
    return ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info()
                     if i["user_api"] == "blas") or "unknown"


def main() -> None:
    x = mnist.binarized("train", seed=1)  # (50000, 784) float32 in {0, 1}
    x32 = x.numpy()
    x64 = x32.astype(np.float64)
    small = 10 * BATCH  # warm-ups: 10 batches
    cases = {
        "engine fp32": (lambda: engine_epoch(x, torch.float32), lambda: engine_epoch(x, torch.float32, small)),
        "engine bf16": (lambda: engine_epoch(x, torch.bfloat16), lambda: engine_epoch(x, torch.bfloat16, small)),
        "sklearn float32": (lambda: sklearn_epoch(x32), lambda: sklearn_epoch(x32[:small])),
        "sklearn float64": (lambda: sklearn_epoch(x64), lambda: sklearn_epoch(x64[:small])),
    }
    print(f"PCD-1, {N_HIDDEN} hidden, batch {BATCH}, lr {LR}, one epoch of {len(x):,} binarized MNIST images")
    print(f"torch {torch.__version__}: {torch.get_num_threads()} threads; "
          f"sklearn/numpy BLAS as set by the environment: {blas_threads()}")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (other work skews timings)")
    times = measure(cases)
    best = {name: min(t) for name, t in times.items()}
    print(f"\n{'':18}{'best s/epoch':>14}{'median':>10}")
    for name, t in times.items():
        note = "  (1 epoch)" if len(t) == 1 else ""
        print(f"{name:18}{best[name]:14.2f}{statistics.median(t):10.2f}{note}")
    print()
    for engine in ("engine bf16", "engine fp32"):
        ratio = best["sklearn float32"] / best[engine]
        verdict = "meets" if ratio >= TARGET else "misses"
        print(f"sklearn_f32 / {engine.replace(' ', '_')}: {ratio:5.2f}x  ({verdict} the {TARGET:.0f}x target)")


if __name__ == "__main__":
    main()
