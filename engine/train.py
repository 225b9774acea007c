"""One plain training loop, written as a generator of metric dicts.

The CLI prints the stream and the app's job panel draws it; both consume the same `Trainer.run()`.
Every yielded dict has "step", "epoch", "progress" (0..1) and "examples_per_s"; training terms
are averaged over the logging window; "monitor" metrics (held-out batch) and "preview" (a small
numpy array of images) come at each log point; the dict with "epoch_end" is a safe resume point.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

Batches = Callable[[torch.Generator], Iterable[torch.Tensor]]  # one epoch of batches


@dataclass
class Trainer:
    model: torch.nn.Module
    batches: Batches
    epochs: int
    hparams: dict = field(default_factory=dict)
    seed: int = 0
    log_every: int = 100
    steps_per_epoch: int | None = None  # for a progress fraction within an epoch
    monitor_batch: torch.Tensor | None = None  # held-out batch for model.monitor(), if the model has it
    max_steps: int | None = None  # stop (as at an epoch end) after this many steps, mid-epoch if need be
    cancel: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.optimizers = self.model.make_optimizers(**self.hparams)
        self.generator = torch.Generator().manual_seed(self.seed)  # data order and binarization (CPU)
        self.device = next(self.model.parameters()).device
        self.model_generator = torch.Generator(device=self.device).manual_seed(self.seed + 1)  # sampling inside steps
        self.epoch, self.step = 0, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "rng": self.generator.get_state(),
                "model_rng": self.model_generator.get_state(),
                "optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.step = state["epoch"], state["step"]
        self.generator.set_state(state["rng"])
        self.model_generator.set_state(state["model_rng"])
        for opt, opt_state in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)

    def run(self) -> Iterator[dict]:
        """Train from the current epoch to `epochs`; stops early (model intact) when `cancel` is set."""
        self.model.train()
        start, window, seen = time.perf_counter(), [], 0
        while self.epoch < self.epochs:
            for opt in self.optimizers:
                if hasattr(opt, "set_progress"):
                    opt.set_progress(self.epoch / self.epochs)
            for batch in self.batches(self.generator):
                if self.cancel.is_set():
                    self.model.eval()
                    yield {**self._counters(seen, start), "cancelled": True}
                    return
                batch = batch.to(self.device, non_blocking=True)
                window.append(self.model.train_step(batch, self.optimizers, generator=self.model_generator))
                self.step, seen = self.step + 1, seen + len(batch)
                if self.max_steps and self.step >= self.max_steps:
                    self.model.eval()
                    yield {**self._counters(seen, start), **_mean(window), **self._monitor(), "epoch_end": True}
                    return
                if self.step % self.log_every == 0:
                    yield {**self._counters(seen, start), **_mean(window), **self._monitor()}
                    window = []
            self.epoch += 1
            yield {**self._counters(seen, start), **_mean(window), **self._monitor(), "epoch_end": True}
            window = []
        for opt in self.optimizers:  # a learning rule may end on other weights (the DBM's averaged ones)
            if hasattr(opt, "finish"):
                opt.finish()
        self.model.eval()

    def _counters(self, seen: int, start: float) -> dict:
        elapsed = time.perf_counter() - start
        total = (self.steps_per_epoch or 0) * self.epochs
        total = min(total, self.max_steps) if self.max_steps and total else total
        progress = self.step / total if total else self.epoch / max(self.epochs, 1)
        return {"step": self.step, "epoch": self.epoch, "progress": min(progress, 1.0),
                "elapsed_s": elapsed, "examples_per_s": seen / max(elapsed, 1e-9)}

    def _monitor(self) -> dict:
        out: dict = {}
        if self.monitor_batch is not None and hasattr(self.model, "monitor"):
            generator = torch.Generator(device=self.device).manual_seed(self.step)
            out.update(self.model.monitor(self.monitor_batch.to(self.device), generator=generator))
        if hasattr(self.model, "preview"):
            out["preview"] = self.model.preview()
        return out


def _mean(window: list[dict]) -> dict:
    keys = window[0].keys() if window else []
    return {k: float(np.mean([w[k] for w in window])) for k in keys}
