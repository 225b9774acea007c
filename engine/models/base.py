"""The model contract every family follows (see ARCHITECTURE.md).

Required: `self.config` (a frozen dataclass), `sample(n, *, generator)`, `loss(batch) -> dict`,
`train_step(batch, optimizers) -> dict`. Optional abilities are plain methods that pages check
with `hasattr`: `log_prob`, `elbo`, `free_energy`, `encode`/`decode`.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.optim import scheduled_step


class Model(nn.Module):
    """Base class: holds the config and gives the default one-optimizer training step."""

    model_type: str = ""  # set by @register

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # Every family defines: sample(n, *, generator=None) -> Tensor and loss(batch) -> dict.

    def make_optimizers(self, **hparams) -> list[torch.optim.Optimizer]:
        """Adam on all parameters; families with their own update rule override this."""
        return [torch.optim.Adam(self.parameters(), lr=hparams.get("lr", 1e-3))]

    def train_step(self, batch: torch.Tensor, optimizers, *, generator=None) -> dict[str, float]:
        """One gradient step on `loss(batch)["loss"]` (at the scheduled rate when the optimizer comes from
        engine.optim.scheduled_adam); returns every reported term as a float."""
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        terms = self.loss(batch)
        terms["loss"].backward()
        scheduled_step(opt) if "base_lr" in opt.param_groups[0] else opt.step()
        return {k: float(v.detach()) for k, v in terms.items()}
