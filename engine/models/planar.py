"""Planar flows fitted by reverse KL to an unnormalized 2-D energy.

Reference: Rezende & Mohamed (2015), "Variational Inference with Normalizing Flows", ICML: planar flows
(Section 4.1), the u-hat reparameterization (Appendix A.1), the energies U1..U4 (Table 1) and the
annealed free energy with beta_t = min(1, 0.01 + t/10000) (Section 6.1).

q_K is the density of x = f_K(...f_1(z0)), z0 ~ N(0, I). Training minimizes the free energy
F = E_q[log q(x) + U(x)] = KL(q || p) - log Z >= -log Z, estimated with the batch of base draws z0
(the "data" of reverse KL is noise: the target is only known through U). Early steps weigh U by beta < 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.data import energies2d
from engine.models.base import Model
from engine.nn.flows import PlanarFlow as PlanarStack
from engine.registry import register


@dataclass(frozen=True)
class PlanarConfig:
    target: str = "u1"  # energy: u1, u2, u3 or u4
    layers: int = 8  # K
    anneal_steps: int = 10_000  # beta_t = min(1, 0.01 + t / anneal_steps); 0 = no annealing
    init_scale: float = 0.01  # std of the initial u and w
    seed: int = 0  # initial weights


def _train(steps: int, batch: int, lr: float) -> dict:
    per_epoch = min(steps, 1000)
    return {"epochs": steps // per_epoch, "steps_per_epoch": per_epoch, "batch_size": batch, "lr": lr,
            "decay_steps": steps}


# The bundled runs: K = 2, 8, 32 on each target. The paper anneals over 10,000 of 500,000 steps; our runs
# are 4,000-8,000 steps, so beta reaches 1 halfway through.
PRESETS = {"tiny": {"config": {"layers": 2, "anneal_steps": 10}, "train": _train(1000, 64, 1e-2)}}
for _t in energies2d.NAMES:
    for _k, _steps in ((2, 4000), (8, 8000), (32, 8000)):
        PRESETS[f"{_t}-k{_k}"] = {"config": {"target": _t, "layers": _k, "anneal_steps": _steps // 2},
                                  "train": _train(_steps, 512, 1e-2 if _k < 32 or _t == "u2" else 3e-3)}
# Learning rates: 3e-3 left U2 at KL 0.166 (K=8) and 0.138 (K=32); 1e-2 reached 0.039 and 0.004. The other
# K=32 runs keep 3e-3 (their targets were met; not retried with 1e-2).


@register("planar", PlanarConfig)
class PlanarFlow(Model):
    """K planar layers over N(0, I_2), trained on the annealed free energy of energy `config.target`."""

    presets = PRESETS

    def __init__(self, config: PlanarConfig) -> None:
        super().__init__(config)
        if config.layers < 1 or config.anneal_steps < 0 or config.target not in energies2d.NAMES:
            raise ValueError(f"invalid planar flow config {config}: layers >= 1, anneal_steps >= 0, "
                             f"target in {energies2d.NAMES}")
        self.register_buffer("steps", torch.zeros(1, dtype=torch.long))  # training steps taken (annealing)
        g = torch.Generator().manual_seed(config.seed)
        self.flow = PlanarStack(config.layers, 2, init_scale=config.init_scale, generator=g)

    # --- the target ---------------------------------------------------------------------------------
    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return energies2d.energy(self.config.target, x)

    @property
    def log_z(self) -> float:
        return energies2d.LOG_Z[self.config.target]

    def beta(self) -> float:
        """The annealing weight of U at the current step."""
        if self.config.anneal_steps == 0:
            return 1.0
        return min(1.0, 0.01 + int(self.steps) / self.config.anneal_steps)

    # --- the contract -------------------------------------------------------------------------------
    def sample(self, n: int, *, generator=None) -> torch.Tensor:
        with torch.no_grad():
            return self.flow.sample_with_log_prob(n, generator=generator)[0]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log q_K(x) by inverting every layer (1-D root finds): (N, 2) -> (N,) nats."""
        return self.flow.log_prob(x)

    def loss(self, batch: torch.Tensor) -> dict:
        """batch: base draws z0 (N, 2). loss = E[log q + beta U]; also F (beta = 1) and KL = F + log Z."""
        x, logdet = self.flow(batch)
        log_q = self.flow.base_log_prob(batch) - logdet  # (N,)
        u = self.energy(x)
        free = (log_q + u).mean()
        return {"loss": (log_q + self.beta() * u).mean(), "free_energy": free, "kl": free + self.log_z,
                "beta": torch.tensor(self.beta())}

    def make_optimizers(self, **hparams) -> list[torch.optim.Optimizer]:
        """Adam with lr decayed by a cosine over `decay_steps` (to 5% of lr); no decay when not given."""
        self._lr, self._decay = hparams.get("lr", 1e-3), hparams.get("decay_steps")
        return [torch.optim.Adam(self.parameters(), lr=self._lr)]

    def train_step(self, batch: torch.Tensor, optimizers, *, generator=None) -> dict[str, float]:
        (opt,) = optimizers
        if getattr(self, "_decay", None):
            fraction = min(1.0, int(self.steps) / self._decay)
            for group in opt.param_groups:
                group["lr"] = self._lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * fraction)))
        out = super().train_step(batch, optimizers)
        self.steps += 1
        return out

    def batch_source(self, batch_size: int, steps: int, points: torch.Tensor | None = None):
        """One epoch of `steps` training batches without a dataset: fresh (batch_size, 2) draws from N(0, I)."""
        def batches(generator: torch.Generator):
            for _ in range(steps):
                yield torch.randn(batch_size, 2, generator=generator)
        return batches

    # --- the page's views ---------------------------------------------------------------------------
    def preview(self, n: int = 20_000, bins: int = 120) -> np.ndarray:
        """A (bins, bins) histogram of n samples over [-LIMIT, LIMIT]^2 (rows z2, columns z1), as a density."""
        x = self.sample(n, generator=torch.Generator().manual_seed(0)).double().numpy()
        limit = energies2d.LIMIT
        hist, _, _ = np.histogram2d(x[:, 1], x[:, 0], bins=bins, range=[[-limit, limit], [-limit, limit]])
        return (hist / (n * (2 * limit / bins) ** 2)).astype(np.float32)

    def layers_geometry(self) -> list[dict]:
        """Per layer: w (2,), b, u_hat (2,) and w^T u_hat, as floats (for drawing the fixed lines)."""
        with torch.no_grad():
            u_hat, w, b = self.flow.u_hat(), self.flow.w, self.flow.b
            return [{"w": w[k].tolist(), "b": float(b[k]), "u_hat": u_hat[k].tolist(), "wu": float(w[k] @ u_hat[k])}
                    for k in range(len(w))]


def free_energy_estimate(model: PlanarFlow, n: int = 100_000, *, seed: int = 0, chunk: int = 20_000) -> dict:
    """Monte-Carlo F = E_q[log q + U] from n samples in float64, with its standard error, and
    KL(q || p) = F + log Z (nats)."""
    g = torch.Generator().manual_seed(seed)
    flow = model.flow.double()
    values = []
    with torch.no_grad():
        for i in range(0, n, chunk):
            x, log_q = flow.sample_with_log_prob(min(chunk, n - i), generator=g, dtype=torch.float64)
            values.append(log_q + model.energy(x))
    model.flow.float()
    v = torch.cat(values)
    free, se = v.mean().item(), (v.std() / math.sqrt(len(v))).item()
    return {"free_energy": free, "stderr": se, "kl": free + model.log_z, "log_z": model.log_z, "samples": n}


def grid_densities(model: PlanarFlow, n: int = 401, limit: float = energies2d.LIMIT) -> dict:
    """log q_K (exact, by inverting each layer) and log p = -U - log Z on an n x n grid over
    [-limit, limit]^2 in float64: {"log_q": (n, n), "log_p": (n, n), "axis": (n,), "area": cell area}."""
    points, area = energies2d.grid(n, limit)
    flow = model.flow.double()
    with torch.no_grad():
        log_q = torch.cat([flow.log_prob(p) for p in points.split(40_000)])
    model.flow.float()
    log_p = -model.energy(points) - model.log_z
    return {"log_q": log_q.reshape(n, n), "log_p": log_p.reshape(n, n),
            "axis": torch.linspace(-limit, limit, n, dtype=torch.float64), "area": area}


def grid_kl(model: PlanarFlow, n: int = 601, limit: float = 8.0) -> dict:
    """KL(q || p) by the rectangle rule on a grid, and the mass of q that the grid holds."""
    d = grid_densities(model, n, limit)
    q = d["log_q"].exp()
    return {"kl": (q * (d["log_q"] - d["log_p"])).sum().item() * d["area"],
            "mass": q.sum().item() * d["area"], "grid": n, "limit": limit}


def evaluate(model: PlanarFlow, *, samples: int = 100_000, seed: int = 0) -> dict:
    """The bundled numbers: Monte-Carlo F and KL = F + log Z (with its standard error) and, as a check,
    the KL by the rectangle rule on an 801 x 801 grid over [-8, 8]^2 with q from the exact inverse."""
    mc, grid = free_energy_estimate(model, samples, seed=seed), grid_kl(model)
    return {"reverse_kl": {**mc, "grid_kl": grid["kl"], "grid_mass": grid["mass"], "grid": "601 x 601 over [-8, 8]^2",
                           "target": model.config.target, "layers": model.config.layers,
                           "log_z_method": "rectangle rule, 1201 x 1201 grid over [-6, 6]^2, float64",
                           "unit": "nats"}}
