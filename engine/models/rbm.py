"""Restricted Boltzmann machine with binary visible and hidden units.

References:
- Smolensky (1986); Hinton (2002), "Training products of experts by minimizing contrastive divergence".
- Tieleman (2008), "Training RBMs using approximations to the likelihood gradient" (PCD).
- Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief networks" (AIS, CD-k on MNIST).

Notation follows the lecture: v in {0,1}^D, h in {0,1}^F, weights W (D, F), visible bias b (D,),
hidden bias a (F,), E(v, h) = -v^T W h - b^T v - a^T h. Energies and free energies are in nats.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import Model
from engine.registry import register


def bernoulli(p: torch.Tensor, generator=None) -> torch.Tensor:
    """Binary float samples with P(1) = p (same law as torch.bernoulli, about 3x faster on CPU)."""
    return torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype).lt_(p)


@dataclass(frozen=True)
class RBMConfig:
    n_visible: int = 784
    n_hidden: int = 500
    image_shape: tuple[int, int] = (28, 28)
    init_std: float = 0.01
    sample_steps: int = 1000  # Gibbs steps used by sample()


@register("rbm", RBMConfig)
class RBM(Model):
    """Binary-binary RBM. Conditionals: p(h_j=1|v) = sigma(a_j + v^T W_:j), p(v_i=1|h) = sigma(b_i + W_i: h)."""

    # Training recipes for `python -m engine train rbm --preset NAME`: config fields, then trainer settings.
    presets = {
        "bundled": {"config": {"n_hidden": 500},
                    "train": {"epochs": 150, "batch_size": 100, "lr": 0.05, "k": 1, "persistent": True,
                              "momentum": 0.5, "weight_decay": 1e-4,
                              "lr_decay": True, "matmul": "bf16"}},
        "quick": {"config": {"n_hidden": 100},
                  "train": {"epochs": 1, "batch_size": 100, "lr": 0.05, "k": 1, "persistent": True,
                            "momentum": 0.5, "weight_decay": 1e-4, "matmul": "bf16"}},
        "tiny": {"config": {"n_hidden": 16},
                 "train": {"epochs": 1, "batch_size": 50, "lr": 0.05, "k": 1, "persistent": False}},
    }

    def __init__(self, config: RBMConfig) -> None:
        super().__init__(config)
        self.W = nn.Parameter(torch.randn(config.n_visible, config.n_hidden) * config.init_std)
        self.b = nn.Parameter(torch.zeros(config.n_visible))  # visible bias
        self.a = nn.Parameter(torch.zeros(config.n_hidden))  # hidden bias

    # --- conditionals and energies -------------------------------------------------------------
    def p_h(self, v: torch.Tensor) -> torch.Tensor:
        """p(h=1|v): (B, D) -> (B, F)."""
        return torch.sigmoid(torch.addmm(self.a, v, self.W))

    def p_v(self, h: torch.Tensor) -> torch.Tensor:
        """p(v=1|h): (B, F) -> (B, D)."""
        return torch.sigmoid(torch.addmm(self.b, h, self.W.t()))

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) in nats: (B, D), (B, F) -> (B,)."""
        return -((v @ self.W) * h).sum(-1) - v @ self.b - h @ self.a

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) in nats: (B, D) -> (B,). log p(v) = -F(v) - log Z."""
        return -(v @ self.b) - F.softplus(torch.addmm(self.a, v, self.W)).sum(-1)

    def gibbs_step(self, v: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """One v -> h -> v sweep: returns (new binary v, its mean p(v|h)), both (B, D)."""
        h = bernoulli(self.p_h(v), generator=generator)
        mean = self.p_v(h)
        return bernoulli(mean, generator=generator), mean

    # --- the model contract -------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, generator=None, steps: int | None = None) -> torch.Tensor:
        """n samples after `steps` Gibbs sweeps from uniform noise: (n, D) means p(v=1|h) in [0, 1]."""
        v = bernoulli(torch.full((n, self.config.n_visible), 0.5, device=self.device), generator)
        mean = v
        for _ in range(steps or self.config.sample_steps):
            v, mean = self.gibbs_step(v, generator)
        return mean

    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """CD-1 surrogate: F(data) - F(model sample); its gradient is the negative CD-1 log-likelihood gradient."""
        with torch.no_grad():
            v_model, _ = self.gibbs_step(batch, generator)
        gap = self.free_energy(batch).mean() - self.free_energy(v_model).mean()
        return {"loss": gap, "free_energy_gap": gap.detach()}

    def make_optimizers(self, **hparams) -> list["ContrastiveDivergence"]:
        return [ContrastiveDivergence(self, **hparams)]

    def train_step(self, batch, optimizers, *, generator=None) -> dict[str, float]:
        (cd,) = optimizers
        return cd.step(batch, generator=generator)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Visible biases to the log-odds of mean pixel intensities (Hinton's practical guide). x: (N, D)."""
        mean = x.mean(0).clamp(1e-3, 1 - 1e-3)
        self.b.copy_(torch.log(mean) - torch.log1p(-mean))

    @torch.no_grad()
    def monitor(self, v: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Held-out numbers while training: reconstruction error (MSE per pixel), pseudo-LL (nats/example)."""
        return {"reconstruction_error": float(self.reconstruction_error(v, generator=generator)),
                "pseudo_log_likelihood": float(self.pseudo_log_likelihood(v, generator=generator).mean())}

    @torch.no_grad()
    def preview(self, n: int = 64):
        """The first n filters as images in [0, 1] (symmetric scaling): numpy (n, H, W)."""
        return filters_as_images(self.W[:, :n].t(), self.config.image_shape).numpy()

    # --- views used by the RBM page ------------------------------------------------------------
    @torch.no_grad()
    def gibbs_frames(self, v0: torch.Tensor, steps: int, *, generator=None) -> torch.Tensor:
        """Means p(v|h) after 0..steps sweeps from v0: (B, D) -> (steps + 1, B, D)."""
        frames, v = [v0.clone()], v0
        for _ in range(steps):
            v, mean = self.gibbs_step(v, generator)
            frames.append(mean)
        return torch.stack(frames)

    @torch.no_grad()
    def decompose(self, v: torch.Tensor, k: int, *, baseline: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The slide's p(v|h) = sigma(sum_j p(h_j=1|v) feature_j + b) for one image v (D,).

        Picks the k hidden units most active for v, or, given `baseline` (F,) = their mean activity over
        data, the k most active *beyond* that baseline: the features specific to this image rather than
        units that are on for every digit. Returns `units` (k,), `p` = p(h_j=1|v) (k,), their filters
        `features` (k, D), and the mean-field reconstruction sigma(W p(h|v) + b) `reconstruction` (D,)."""
        p_h = self.p_h(v[None])[0]
        score = p_h if baseline is None else p_h - baseline
        units = score.topk(k).indices
        return {"units": units, "p": p_h[units], "features": self.W[:, units].t(),
                "reconstruction": self.p_v(p_h[None])[0]}

    @torch.no_grad()
    def selectivity(self, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (F,) and standard deviation (F,) of p(h_j=1|v) over a batch of data (B, D)."""
        p = self.p_h(data)
        return p.mean(0), p.std(0)

    @torch.no_grad()
    def gradient_terms(self, v_data: torch.Tensor, v_model: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E_data[v h^T] and E_model[v h^T], each (D, F), with h replaced by p(h|v) (Rao-Blackwellised)."""
        data = v_data.t() @ self.p_h(v_data) / len(v_data)
        model = v_model.t() @ self.p_h(v_model) / len(v_model)
        return data, model

    @torch.no_grad()
    def pseudo_log_likelihood(self, v: torch.Tensor, *, generator=None) -> torch.Tensor:
        """Stochastic pseudo-log-likelihood per example in nats: D * log sigma(F(v~) - F(v)), one random bit flipped."""
        idx = torch.randint(v.shape[1], (v.shape[0],), device=v.device, generator=generator)
        flipped = v.clone()
        rows = torch.arange(v.shape[0], device=v.device)
        flipped[rows, idx] = 1 - flipped[rows, idx]
        return v.shape[1] * F.logsigmoid(self.free_energy(flipped) - self.free_energy(v))

    @torch.no_grad()
    def reconstruction_error(self, v: torch.Tensor, *, generator=None) -> torch.Tensor:
        """Mean squared error per pixel between v and p(v|h), h ~ p(h|v): (B, D) -> scalar."""
        _, mean = self.gibbs_step(v, generator)
        return ((v - mean) ** 2).mean()


def filters_as_images(filters: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Weight vectors (n, D) -> images (n, H, W) in [0, 1]; each scaled symmetrically so 0.5 is zero weight."""
    scale = filters.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)
    return (0.5 + 0.5 * filters / scale).reshape(-1, *shape).float().cpu()


class ContrastiveDivergence:
    """CD-k / PCD-k updates of an RBM with momentum and L2 weight decay (plain SGD, no autograd).

    The gradient is the lecture's E_data[v h^T] - E_model[v h^T]; the model term comes from k Gibbs
    sweeps started at the data (CD-k) or from persistent fantasy chains (PCD, Tieleman 2008).
    `matmul_dtype=torch.bfloat16` runs the three matrix products of a step on bf16 operands with fp32
    accumulation (binary states are exact in bf16); weights, velocities and biases stay fp32.
    """

    def __init__(self, rbm: RBM, *, lr: float = 0.05, k: int = 1, persistent: bool = True,
                 momentum: float = 0.5, weight_decay: float = 1e-4,
                 lr_decay: bool = False,
                 matmul_dtype: torch.dtype = torch.float32) -> None:
        self.rbm, self.base_lr, self.lr, self.k, self.persistent = rbm, lr, lr, k, persistent
        self.momentum, self.weight_decay, self.matmul_dtype = momentum, weight_decay, matmul_dtype
        self.lr_decay = lr_decay
        self.velocity = [torch.zeros_like(p) for p in (rbm.W, rbm.b, rbm.a)]
        self.chain_h: torch.Tensor | None = None  # (B, F) binary hidden states of the fantasy particles

    def set_progress(self, fraction: float) -> None:
        """With lr_decay, the learning rate falls linearly towards 0 over training (PCD needs it to settle).

        Momentum stays fixed: raising it to 0.9 mid-training made PCD diverge on MNIST (tried, 2026-11)."""
        self.lr = self.base_lr * (1 - fraction) if self.lr_decay else self.base_lr

    def _low(self, x: torch.Tensor) -> torch.Tensor:
        """x in the step's matmul dtype (no copy when that is fp32)."""
        return x.to(self.matmul_dtype)

    @torch.no_grad()
    def step(self, v_pos: torch.Tensor, *, generator=None) -> dict[str, float]:
        """One update from a binary batch (B, D); returns the free-energy gap F(data) - F(model) in nats."""
        rbm, B = self.rbm, v_pos.shape[0]
        W = self._low(rbm.W)  # (D, F)
        h_state = self.chain_h
        if h_state is None or not self.persistent or h_state.shape[0] != B:
            h_state = bernoulli(torch.sigmoid(rbm.a + self._low(v_pos) @ W), generator)
        for i in range(self.k):
            v_neg = bernoulli(torch.sigmoid(rbm.b + self._low(h_state) @ W.t()), generator)  # (B, D)
            if i < self.k - 1:
                h_state = bernoulli(torch.sigmoid(rbm.a + self._low(v_neg) @ W), generator)
        both = self._low(torch.cat([v_pos, v_neg]))  # (2B, D), binary: exact in bf16
        pre = rbm.a + both @ W  # (2B, F) hidden pre-activations, fp32
        p_both = torch.sigmoid(pre)
        if self.persistent:
            self.chain_h = bernoulli(p_both[B:], generator)
        free = -(both.float() @ rbm.b) - F.softplus(pre).sum(-1)  # (2B,) free energies before the update
        p_both[B:].neg_()  # rows: +p(h|v_data), -p(h|v_model)
        self._update(both, p_both, v_pos.sum(0) - v_neg.sum(0), p_both.sum(0), B)
        return {"free_energy_gap": float(free[:B].mean() - free[B:].mean())}

    def _update(self, both, signed_h, grad_b_sum, grad_a_sum, B: int) -> None:
        """Momentum SGD ascent on E_data[v h^T] - E_model[v h^T] - weight_decay * W, in place.

        grad_W = both^T @ signed_h / B, (D, F), is accumulated into the velocity without fp32 temporaries."""
        rbm, (vel_W, vel_b, vel_a), rate = self.rbm, self.velocity, self.lr / B
        if self.matmul_dtype == torch.float32:
            vel_W.addmm_(both.t(), signed_h, beta=self.momentum, alpha=rate)
        else:
            vel_W.mul_(self.momentum).add_(both.t() @ self._low(signed_h), alpha=rate)
        if self.weight_decay:
            vel_W.add_(rbm.W, alpha=-self.lr * self.weight_decay)
        vel_b.mul_(self.momentum).add_(grad_b_sum, alpha=rate)
        vel_a.mul_(self.momentum).add_(grad_a_sum, alpha=rate)
        for p, vel in zip((rbm.W, rbm.b, rbm.a), self.velocity):
            p.add_(vel)

    def state_dict(self) -> dict:
        return {"velocity": self.velocity, "chain_h": self.chain_h}

    def load_state_dict(self, state: dict) -> None:
        self.velocity = [v.to(self.rbm.device) for v in state["velocity"]]
        self.chain_h = None if state["chain_h"] is None else state["chain_h"].to(self.rbm.device)
