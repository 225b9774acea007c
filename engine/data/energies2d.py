"""The four 2-D unnormalized target densities p(z) = exp(-U(z)) / Z of Rezende & Mohamed (2015), Table 1.

Reference: Rezende & Mohamed (2015), "Variational Inference with Normalizing Flows", ICML, Table 1 and
Figure 3.

U2, U3 and U4 do not decay along z1 (they are periodic in z1), so exp(-U) is not normalizable on the
plane. We add a wall, zero inside |z1| <= 4 and 1/2 ((|z1| - 4) / 0.2)^2 outside, to every target; it
changes nothing where the paper's figures are drawn and makes Z finite. U3 and U4 are minus a log of a
sum of exponentials, computed with logsumexp so far-out points do not underflow to log 0.
"""
from __future__ import annotations

import math

import torch

WALL_AT, WALL_WIDTH = 4.0, 0.2
LIMIT = 6.0  # the plane drawn and integrated over: [-LIMIT, LIMIT]^2 holds all but ~1e-9 of every target
NAMES = ("u1", "u2", "u3", "u4")
LABELS = {"u1": "U1 (ring)", "u2": "U2 (wave)", "u3": "U3 (split wave)", "u4": "U4 (step wave)"}


def _w1(z1):
    return torch.sin(2 * math.pi * z1 / 4)


def _w2(z1):
    return 3 * torch.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)


def _w3(z1):
    return 3 * torch.sigmoid((z1 - 1) / 0.3)


def _neg_logsumexp(*terms):
    return -torch.logsumexp(torch.stack(terms, 0), 0)


def wall(z: torch.Tensor) -> torch.Tensor:
    """0 for |z1| <= 4, else 1/2 ((|z1| - 4) / 0.2)^2: (N, 2) -> (N,)."""
    excess = (z[:, 0].abs() - WALL_AT).clamp(min=0)
    return 0.5 * (excess / WALL_WIDTH) ** 2


def energy(name: str, z: torch.Tensor) -> torch.Tensor:
    """U(z) for target `name` in "u1".."u4", including the wall: (N, 2) -> (N,) nats."""
    z1, z2 = z[:, 0], z[:, 1]
    if name == "u1":
        ring = 0.5 * ((z.norm(dim=1) - 2) / 0.4) ** 2
        u = ring + _neg_logsumexp(-0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2)
    elif name == "u2":
        u = 0.5 * ((z2 - _w1(z1)) / 0.4) ** 2
    elif name == "u3":
        u = _neg_logsumexp(-0.5 * ((z2 - _w1(z1)) / 0.35) ** 2, -0.5 * ((z2 - _w1(z1) + _w2(z1)) / 0.35) ** 2)
    elif name == "u4":
        u = _neg_logsumexp(-0.5 * ((z2 - _w1(z1)) / 0.4) ** 2, -0.5 * ((z2 - _w1(z1) + _w3(z1)) / 0.35) ** 2)
    else:
        raise ValueError(f"unknown energy {name!r}; choose from {', '.join(NAMES)}")
    return u + wall(z)


def grid(n: int = 1201, limit: float = LIMIT, dtype=torch.float64) -> tuple[torch.Tensor, float]:
    """(n*n, 2) points of a square grid over [-limit, limit]^2 (row-major, z2 rows, z1 columns) and the
    area of one cell."""
    r = torch.linspace(-limit, limit, n, dtype=dtype)
    z2, z1 = torch.meshgrid(r, r, indexing="ij")
    step = 2 * limit / (n - 1)
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], 1), step * step


def log_z(name: str, n: int = 1201, limit: float = LIMIT) -> float:
    """log Z = log of the integral of exp(-U) by the rectangle rule on an n x n grid, in float64."""
    points, area = grid(n, limit)
    return (torch.logsumexp(-energy(name, points), 0) + math.log(area)).item()


LOG_Z = {"u1": 1.8775, "u2": 2.1429, "u3": 2.7025, "u4": 2.7715}  # log_z(name) to 4 decimals; tested
