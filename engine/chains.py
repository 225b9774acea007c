"""Equilibrium chains kept beside a checkpoint: the model's own samples, drawn once by the CLI.

Views that need the model term of a Boltzmann machine's gradient (E_model[v h]) want samples at equilibrium,
which takes about 1,000 Gibbs sweeps from noise for the bundled RBM (after 250 its chains still overstate the
gradient). `python -m engine chains FOLDER` draws them once and writes `chains.safetensors`: "v" (n, D) uint8
binary visible states, with the weights' fingerprint, the sweeps and the seed as metadata. A file whose
fingerprint no longer matches model.safetensors (the model was retrained) is ignored, like a missing or corrupt one.
Safetensors only: nothing here is ever unpickled.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine.checkpoint import atomic_write, fingerprint

FILE = "chains.safetensors"


@torch.no_grad()
def draw(model, n: int = 500, sweeps: int = 1000, seed: int = 0) -> torch.Tensor:
    """n binary visible states (n, D) float32: Gibbs chains run `sweeps` sweeps from noise, the last means sampled."""
    g = torch.Generator().manual_seed(seed)
    means = model.sample(n, generator=g, steps=sweeps)
    return (means > torch.rand(means.shape, generator=g)).float()


def save(folder: str | Path, states: torch.Tensor, *, sweeps: int, seed: int) -> Path:
    """Write the states (n, D) in {0, 1} beside the checkpoint in `folder`, tied to its current weights."""
    path = Path(folder) / FILE
    meta = {"weights": fingerprint(folder), "sweeps": str(sweeps), "seed": str(seed)}
    tensors = {"v": states.detach().cpu().to(torch.uint8).contiguous()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return path


def load(folder: str | Path) -> tuple[torch.Tensor, dict] | None:
    """(states (n, D) float32, metadata) if `folder` has chains for its current weights; None if it has none,
    they are corrupt, or they belong to other weights."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            states = f.get_tensor("v").float()
        if meta.get("weights") != fingerprint(folder) or states.ndim != 2:
            return None
        return states, meta
    except (SafetensorError, OSError, ValueError, KeyError):
        return None
