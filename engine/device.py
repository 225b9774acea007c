"""Device choice and thread caps. Nothing else in the engine names a device."""
from __future__ import annotations

import os

import torch


def pick(preferred: str | None = None) -> torch.device:
    """The best available device: `preferred` if given, else cuda > mps > cpu."""
    if preferred:
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def background_threads() -> int:
    """Intra-op threads for a background job: leave one core to the interactive sessions."""
    override = os.environ.get("DGM_JOB_THREADS")
    if override:
        return max(1, int(override))
    return max(1, (os.cpu_count() or 2) - 1)


def cap_threads(n: int) -> None:
    """Cap torch's intra-op threads for the whole process (torch.set_num_threads is process-wide).

    The app calls this once at start-up with `background_threads()`, so a training job never takes
    every core from the people dragging sliders."""
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
