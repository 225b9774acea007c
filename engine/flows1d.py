"""Change of variables in one dimension: a monotone map x = f(z) of z ~ N(0, 1) that a user shapes.

f(z) = slope * z + sum_i a_i tanh((z - c_i) / width), slope > 0 and a_i >= 0, so f' > 0: strictly
increasing, hence invertible. The pushed-forward density is p_X(x) = p_Z(f^-1(x)) |d f^-1/dx|
= p_Z(z) / f'(z) at z = f^-1(x) (found by the same safeguarded Newton root find as the planar layers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.nn.flows import root_monotone

CENTRES = (-1.5, 0.0, 1.5)


@dataclass(frozen=True)
class MonotoneMap:
    slope: float = 0.4  # > 0
    steps: tuple[float, ...] = (1.0, 0.0, 1.0)  # a_i >= 0, one per centre in CENTRES
    width: float = 0.3  # of every tanh step, > 0

    def __post_init__(self) -> None:
        if self.slope <= 0 or self.width <= 0 or any(a < 0 for a in self.steps):
            raise ValueError("a monotone map needs slope > 0, width > 0 and every step >= 0")

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = f(z) and f'(z) (> 0), elementwise, float64."""
        z = z.double()
        c = torch.tensor(CENTRES, dtype=torch.float64)
        a = torch.tensor(self.steps, dtype=torch.float64)
        h = torch.tanh((z[..., None] - c) / self.width)  # (..., 3)
        x = self.slope * z + (a * h).sum(-1)
        slope = self.slope + (a * (1 - h * h)).sum(-1) / self.width
        return x, slope

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """z = f^-1(x): f(z) - x is increasing and |f(z) - slope z| <= sum a_i bounds the root."""
        x = x.double()
        spread = sum(self.steps)
        low, high = (x - spread) / self.slope - 1e-9, (x + spread) / self.slope + 1e-9

        def g(z, index):
            fz, dfz = self.forward(z)
            return fz - x[index], dfz
        return root_monotone(g, low, high)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """p_X(x) = p_Z(f^-1(x)) / f'(f^-1(x)), the change-of-variables formula."""
        z = self.inverse(x)
        return torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / self.forward(z)[1]

    def push(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples of x = f(z), z ~ N(0, 1)."""
        return self.forward(torch.randn(n, generator=generator, dtype=torch.float64))[0]
