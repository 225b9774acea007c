"""Training snapshots: the fixed-noise sample grid at chosen steps, and the training curves.

A model that sets `records_snapshots = True` and has `preview()` (numpy (n, H, W) in [0, 1]) gets,
from the CLI's `train`, a `snapshots.safetensors` beside its checkpoint: "images" (S, n, H, W) uint8
grey levels 0..255 and "steps" (S,) int64, taken more densely early in training, when the grid changes
fastest. The curves (the logged training terms per log point) go into metrics.json under "curves".
Safetensors only: nothing here is ever unpickled.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.checkpoint import CheckpointError, atomic_write

FILE = "snapshots.safetensors"
CURVE_KEYS = ("d_loss", "g_loss", "wasserstein", "gp", "d_real", "d_fake", "valid_elbo", "valid_nll_is")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] -> uint8 0..255 (rounded)."""
    return np.clip(np.rint(np.asarray(images, dtype=np.float32) * 255), 0, 255).astype(np.uint8)


class SnapshotRecorder:
    """Collects snapshots and curves from a Trainer's stream of metric dicts.

    A preview is kept at step 0 (from `model`) and at each log point whose step has reached the next
    due step; after a kept snapshot at step s the next is due at max(s + min_gap, s * growth), so early
    training is sampled densely (about 20-30 snapshots over a few thousand steps with the defaults)."""

    def __init__(self, model, *, min_gap: int = 100, growth: float = 1.15) -> None:
        self.min_gap, self.growth = min_gap, growth
        self.steps: list[int] = [0]
        self.images: list[np.ndarray] = [to_uint8(model.preview())]
        self.curves: dict[str, list[float]] = {"step": []}
        self.next_due = min_gap

    def restore(self, folder: str | Path, curves: dict | None) -> None:
        """Continue the snapshots and curves of an earlier run saved in `folder` (training resumed)."""
        try:
            steps, images = load_snapshots(folder)
        except CheckpointError:
            return
        self.steps, self.images = [int(s) for s in steps], list(images)
        self.curves = {k: list(v) for k, v in (curves or {"step": []}).items()}
        self.next_due = max(self.steps[-1] + self.min_gap, int(self.steps[-1] * self.growth))

    def update(self, m: dict) -> None:
        """Record the curves of a log point and keep its preview when a snapshot is due."""
        if "preview" not in m or m.get("cancelled"):
            return
        step = int(m["step"])
        if not self.curves["step"] or self.curves["step"][-1] != step:
            self.curves["step"].append(step)
            for key in CURVE_KEYS:
                if key in m:
                    self.curves.setdefault(key, []).append(float(m[key]))
        if step >= self.next_due:
            self.keep(step, m["preview"])

    def keep(self, step: int, preview: np.ndarray) -> None:
        """Keep `preview` as the snapshot of `step` (replacing one already kept at that step)."""
        if self.steps and step == self.steps[-1]:
            self.images[-1] = to_uint8(preview)
            return
        self.steps.append(step)
        self.images.append(to_uint8(preview))
        self.next_due = max(step + self.min_gap, int(step * self.growth))

    def save(self, folder: str | Path) -> Path:
        return save_snapshots(folder, self.steps, np.stack(self.images))


def save_snapshots(folder: str | Path, steps, images: np.ndarray) -> Path:
    """Write snapshots.safetensors atomically: steps (S,) int64, images (S, n, H, W) uint8."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(steps):
        raise ValueError(f"snapshots need uint8 images (S, n, H, W) and S steps; got {images.dtype} "
                         f"{images.shape} and {len(steps)} steps")
    tensors = {"steps": torch.tensor(list(steps), dtype=torch.int64), "images": torch.from_numpy(images.copy())}
    atomic_write(folder / FILE, lambda tmp: save_file(tensors, tmp))
    return folder / FILE


def load_snapshots(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps (S,) int64, images (S, n, H, W) uint8) from a checkpoint folder; CheckpointError when the
    file is missing, corrupt, or does not hold what it should."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise CheckpointError(f"no {FILE} in {folder}: this checkpoint was trained without snapshots")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated: {e}") from e
    steps, images = tensors.get("steps"), tensors.get("images")
    if (steps is None or images is None or images.dtype != torch.uint8 or images.dim() != 4
            or steps.dim() != 1 or len(steps) != len(images) or len(steps) == 0):
        raise CheckpointError(f"{path} does not hold snapshots (uint8 'images' (S, n, H, W) and 'steps' (S,))")
    return steps.numpy(), images.numpy()
