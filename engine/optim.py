"""Adam with a linear warm-up and a cosine decay whose counters live in the optimizer's param group, so they are
saved with its state dict and survive a resume (Loshchilov & Hutter 2017, "SGDR", for the cosine shape)."""
from __future__ import annotations

import math

import torch


def warmup_cosine(base: float, step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `total` steps (constant if total is 0)."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    if total:
        return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return base


def scheduled_adam(params, *, lr: float, warmup: int = 0, total_steps: int = 0, **extra) -> torch.optim.Adam:
    """Adam whose first param group carries base_lr, warmup, total_steps, the steps done, and any `extra` keys."""
    opt = torch.optim.Adam(params, lr=lr)
    opt.param_groups[0].update(base_lr=lr, warmup=warmup, total_steps=total_steps, done=0, **extra)
    return opt


def scheduled_step(opt: torch.optim.Optimizer) -> float:
    """opt.step() at the learning rate the schedule gives for this step; returns that rate."""
    group = opt.param_groups[0]
    group["lr"] = warmup_cosine(group["base_lr"], group["done"], group["warmup"], group["total_steps"])
    opt.step()
    group["done"] += 1
    return group["lr"]
