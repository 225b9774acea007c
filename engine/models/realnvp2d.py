"""A 2-D Real NVP fitted by maximum likelihood to point data.

Reference: Dinh, Sohl-Dickstein & Bengio (2017), "Density estimation using Real NVP", ICLR (affine
coupling layers with alternating masks; exact log-likelihood by the change of variables).

x = f(z), z ~ N(0, I_2). Training maximizes log p(x) = log N(f^-1(x)) + log|det df^-1/dx| over the
points: the inverse is the density direction, the forward the sampling direction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.data import toy2d
from engine.models.base import Model
from engine.nn.flows import AffineCoupling, Flow
from engine.registry import register

DATASETS = {"moons": "Two moons", "rings": "Two rings", "points": "Your points"}


def draw(dataset: str, n: int, *, generator=None, points: torch.Tensor | None = None) -> torch.Tensor:
    """n training points (n, 2) of a named set; "points" draws minibatches (with replacement) from `points`."""
    if dataset == "moons":
        return toy2d.moons(n, generator)
    if dataset == "rings":
        return toy2d.rings(n, generator)
    if dataset == "points":
        if points is None:
            raise ValueError("dataset 'points' needs the user's points")
        return points[torch.randint(len(points), (n,), generator=generator)]
    raise ValueError(f"unknown point set {dataset!r}; choose from {', '.join(DATASETS)}")


@dataclass(frozen=True)
class RealNVP2DConfig:
    dataset: str = "moons"  # what it was trained on (moons, rings or points)
    couplings: int = 8  # affine coupling layers, masks alternating between x1 and x2
    hidden: int = 64  # units in each of the two hidden layers of every coupling's MLP
    seed: int = 0  # initial weights


PRESETS = {
    "tiny": {"config": {"couplings": 2, "hidden": 8},
             "train": {"epochs": 1, "steps_per_epoch": 20, "batch_size": 64, "lr": 1e-3}},
    "moons": {"config": {"dataset": "moons"},
              "train": {"epochs": 4, "steps_per_epoch": 1000, "batch_size": 256, "lr": 2e-3}},
    "rings": {"config": {"dataset": "rings"},
              "train": {"epochs": 4, "steps_per_epoch": 1000, "batch_size": 256, "lr": 2e-3}},
}


@register("realnvp2d", RealNVP2DConfig)
class RealNVP2D(Model):
    """Alternating affine couplings over N(0, I_2); log_prob by the exact inverse."""

    presets = PRESETS

    def __init__(self, config: RealNVP2DConfig) -> None:
        super().__init__(config)
        if config.couplings < 1 or config.hidden < 1 or config.dataset not in DATASETS:
            raise ValueError(f"invalid realnvp2d config {config}: couplings >= 1, hidden >= 1, "
                             f"dataset in {list(DATASETS)}")
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the global RNG
            torch.manual_seed(config.seed)
            masks = [torch.tensor([1.0, 0.0]) if i % 2 == 0 else torch.tensor([0.0, 1.0])
                     for i in range(config.couplings)]
            self.flow = Flow([AffineCoupling(m, hidden=config.hidden) for m in masks], 2)

    def sample(self, n: int, *, generator=None) -> torch.Tensor:
        with torch.no_grad():
            return self.flow.sample_with_log_prob(n, generator=generator)[0]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) (N, 2) -> (N,) nats."""
        return self.flow.log_prob(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = f^-1(x): the data mapped back to the Gaussian, (N, 2)."""
        return self.flow.inverse(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.flow(z)[0]

    def loss(self, batch: torch.Tensor) -> dict:
        """Negative mean log-likelihood of the points (nats per point)."""
        nll = -self.log_prob(batch).mean()
        return {"loss": nll, "nll": nll}

    def batch_source(self, batch_size: int, steps: int, points: torch.Tensor | None = None):
        """One epoch of `steps` batches (batch_size, 2): fresh draws from the named set, or from `points`."""
        if self.config.dataset == "points" and points is None:
            raise ValueError("this flow is fitted to the user's points: pass them")

        def batches(generator: torch.Generator):
            for _ in range(steps):
                yield draw(self.config.dataset, batch_size, generator=generator, points=points)
        return batches


def density_grid(model: RealNVP2D, n: int = 301, limit: float = 4.0) -> dict:
    """log p(x) by the exact inverse on an n x n grid over [-limit, limit]^2 (rows x2, columns x1), float64."""
    r = torch.linspace(-limit, limit, n, dtype=torch.float64)
    x2, x1 = torch.meshgrid(r, r, indexing="ij")
    flow = model.flow.double()
    with torch.no_grad():
        log_p = flow.log_prob(torch.stack([x1.reshape(-1), x2.reshape(-1)], 1)).reshape(n, n)
    model.flow.float()
    return {"log_p": log_p, "axis": r, "area": (2 * limit / (n - 1)) ** 2}


def evaluate(model: RealNVP2D, *, n: int = 20_000, seed: int = 1234) -> dict:
    """Mean negative log-likelihood (nats per point) on n fresh points of the training set's distribution,
    and the mass of the density on a 601 x 601 grid over [-6, 6]^2 (should be 1)."""
    g = torch.Generator().manual_seed(seed)
    x = draw(model.config.dataset, n, generator=g)
    with torch.no_grad():
        nll = -model.log_prob(x).double()
    grid = density_grid(model, 601, 6.0)
    return {"test_nll": {"nll": nll.mean().item(), "stderr": (nll.std() / math.sqrt(n)).item(), "points": n,
                         "seed": seed, "dataset": model.config.dataset, "unit": "nats per point",
                         "grid_mass": (grid["log_p"].exp().sum() * grid["area"]).item()}}
