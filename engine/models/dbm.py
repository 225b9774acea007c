"""Deep Boltzmann machine with two hidden layers (binary units) on binarized MNIST.

References:
- Salakhutdinov & Hinton (2009), "Deep Boltzmann machines" (AISTATS): greedy pretraining with doubled
  weights, mean-field for the data term, persistent chains for the model term, AIS on the h1-summed model.
- Salakhutdinov & Larochelle (2010), "Efficient learning of deep Boltzmann machines" (the bound's use, recognition).
- Montavon & Mueller (2012), "Deep Boltzmann machines and the centering trick"; Melchior, Fischer & Wiskott
  (2016), "How to center deep Boltzmann machines" (the centred gradient written for uncentred parameters).

The lecture's energy, with biases: E(v, h1, h2) = -v^T W1 h1 - h1^T W2 h2 - b^T v - c^T h1 - d^T h2,
v in {0,1}^D, h1 in {0,1}^F1, h2 in {0,1}^F2; W1 (D, F1), W2 (F1, F2). Every value is in nats.

Since no unit of v or h2 talks to another unit of v or h2, the DBM is an RBM between h1 and the
concatenation [v, h2]: summing h1 out gives log p*(v, h2) = b.v + d.h2 + sum_j softplus(c_j + v.W1_:j + W2_j:.h2),
so log Z comes from the RBM's AIS (engine.metrics.iter_ais) and, for a tiny model, exact enumeration of h1.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from engine.metrics import AISResult, ais, base_rate_bias, exact_log_z_rbm, iter_ais
from engine.models.base import Model
from engine.models.rbm import bernoulli, filters_as_images
from engine.registry import register

BOUND_LOG_ROWS = 256  # rows of the `bound_log` buffer: (joint epoch, cheap-AIS log Z, validation MF bound)


@dataclass(frozen=True)
class DBMConfig:
    n_visible: int = 784
    n_hidden1: int = 500
    n_hidden2: int = 1000
    image_shape: tuple[int, int] = (28, 28)
    init_std: float = 0.01
    mf_steps: int = 10  # mean-field sweeps used by inference and the bound
    sample_steps: int = 1000  # Gibbs sweeps used by sample()
    kept_chains: int = 100  # persistent chains of joint training kept in the checkpoint (`chain_v`, `chain_h2`)


def _entropy(mu: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of factorial Bernoulli(mu), summed over the last axis."""
    return -(torch.special.xlogy(mu, mu) + torch.special.xlogy(1 - mu, 1 - mu)).sum(-1)


# The joint-training settings of the "long" and "continued" stages (see DBM.presets).
_LONG = {"batch_size": 100, "pretrain_epochs": 8, "pretrain_lr": 0.05, "lr": 0.004, "lr_decay_epochs": 50,
         "momentum": 0.5, "weight_decay": 2e-4, "mf_steps": 5, "pcd_steps": 1, "n_chains": 100, "centring": True,
         "h1_bias": "average", "ais_every": 10, "ais_betas": 1000, "ais_runs": 16}


@register("dbm", DBMConfig)
class DBM(Model):
    """Two-layer binary DBM. Conditionals: p(h1|v,h2) = sigma(c + v W1 + h2 W2^T), p(v|h1) = sigma(b + h1 W1^T),
    p(h2|h1) = sigma(d + h1 W2). The pretrained RBM stack (with doubled weights) is kept beside it."""

    presets = {
        # The bundled recipe (validated on a small budget first, see README's DBM section): 8 + 8 pretraining
        # epochs, then 26 joint epochs, the last 13 with a faster learning-rate decay.
        "bundled": {"config": {},
                    "train": {"epochs": 42, "batch_size": 100, "pretrain_epochs": 8, "pretrain_lr": 0.05,
                              "lr": 0.005, "lr_decay_epochs": 20, "late_epoch": 13, "late_decay_epochs": 5,
                              "momentum": 0.5, "weight_decay": 2e-4,
                              "mf_steps": 5, "pcd_steps": 1, "n_chains": 100, "centring": True,
                              "h1_bias": "average", "ais_every": 2, "ais_betas": 1000, "ais_runs": 16}},
        # The long continuation of "bundled": `--resume` from its 42nd epoch to joint epoch 330 with a 1/t decay
        # from 0.004 (tau 50 joint epochs), the bound logged every 10 joint epochs; the final weights are the mean
        # of those after joint epochs 281-330.
        "long": {"config": {}, "train": {**_LONG, "epochs": 346, "average_from": 280}},
        # The second continuation: `--resume` from "long" (its averaged weights, last momentum; 500 fresh chains
        # started from data) to joint epoch 484, the same decay carried on, the final weights the mean of those
        # after joint epochs 331-484. 500 chains instead of 100: in a race from joint epoch 330 on 2 cores, they
        # gained as much per hour and twice as much per epoch (README's DBM section).
        "continued": {"config": {}, "train": {**_LONG, "epochs": 500, "n_chains": 500, "average_from": 330}},
        "validate": {"config": {},
                     "train": {"epochs": 14, "batch_size": 100, "pretrain_epochs": 2, "pretrain_lr": 0.05,
                               "lr": 0.005, "lr_decay_epochs": 30, "momentum": 0.5, "weight_decay": 2e-4,
                               "mf_steps": 5, "pcd_steps": 5, "n_chains": 100, "centring": True,
                               "h1_bias": "average", "ais_every": 2, "ais_betas": 1000, "ais_runs": 16}},
        "quick": {"config": {"n_hidden1": 100, "n_hidden2": 200},
                  "train": {"epochs": 3, "batch_size": 100, "pretrain_epochs": 1, "pretrain_lr": 0.05,
                            "lr": 0.005, "momentum": 0.5, "weight_decay": 2e-4, "mf_steps": 5, "pcd_steps": 1,
                            "n_chains": 100, "centring": True, "ais_every": 1, "ais_betas": 300, "ais_runs": 8}},
        "tiny": {"config": {"n_hidden1": 16, "n_hidden2": 16},
                 "train": {"epochs": 3, "batch_size": 50, "pretrain_epochs": 1, "lr": 0.005, "pcd_steps": 1,
                           "n_chains": 50, "ais_every": 1, "ais_betas": 200, "ais_runs": 8}},
    }

    def __init__(self, config: DBMConfig) -> None:
        super().__init__(config)
        D, F1, F2, s = config.n_visible, config.n_hidden1, config.n_hidden2, config.init_std
        self.W1 = nn.Parameter(torch.randn(D, F1) * s)
        self.W2 = nn.Parameter(torch.randn(F1, F2) * s)
        self.b = nn.Parameter(torch.zeros(D))
        self.c = nn.Parameter(torch.zeros(F1))
        self.d = nn.Parameter(torch.zeros(F2))
        # The greedy stack: RBM 1 (v-h1, h1 sees 2 v W1) and RBM 2 (h1-h2, h1 sees 2 h2 W2^T), before joint training.
        self.register_buffer("rbm1_W", torch.randn(D, F1) * s)
        self.register_buffer("rbm1_b", torch.zeros(D))
        self.register_buffer("rbm1_c", torch.zeros(F1))
        self.register_buffer("rbm2_W", torch.randn(F1, F2) * s)
        self.register_buffer("rbm2_c", torch.zeros(F1))
        self.register_buffer("rbm2_d", torch.zeros(F2))
        # Centring offsets (Montavon & Mueller 2012): data means of v, h1, h2; zero without centring.
        self.register_buffer("offset_v", torch.zeros(D))
        self.register_buffer("offset_h1", torch.zeros(F1))
        self.register_buffer("offset_h2", torch.zeros(F2))
        # Training log: rows (joint epoch >= 1, cheap-AIS log Z, mean MF bound on 1,000 validation digits); 0 = unused.
        self.register_buffer("bound_log", torch.zeros(BOUND_LOG_ROWS, 3))
        # The first `kept_chains` persistent chains' states (v, h2) at the last joint update (the model term).
        self.register_buffer("chain_v", torch.zeros(config.kept_chains, D))
        self.register_buffer("chain_h2", torch.zeros(config.kept_chains, F2))
        self.register_buffer("phase", torch.zeros(1, dtype=torch.int64))  # 0, 1: pretraining RBM 1, 2; 2: joint
        self._log_z_cheap: float | None = None  # the last cheap-AIS log Z, valid while no update has followed it
        self._updates = 0  # joint updates made by this process (the monitor reports the bound only at an AIS point)
        self._log_z_at = -1

    # --- conditionals --------------------------------------------------------------------------
    def p_h1(self, v: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """p(h1=1|v, h2): (B, D), (B, F2) -> (B, F1)."""
        return torch.sigmoid(self.c + v @ self.W1 + h2 @ self.W2.t())

    def p_v(self, h1: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.b, h1, self.W1.t()))

    def p_h2(self, h1: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.d, h1, self.W2))

    def energy(self, v, h1, h2) -> torch.Tensor:
        """E(v, h1, h2) in nats: (B, D), (B, F1), (B, F2) -> (B,)."""
        return (-((v @ self.W1) * h1).sum(-1) - ((h1 @ self.W2) * h2).sum(-1)
                - v @ self.b - h1 @ self.c - h2 @ self.d)

    def rbm_view(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The DBM as an RBM with visible [v, h2] and hidden h1: W (D + F2, F1), visible bias (D + F2,), hidden bias (F1,)."""
        return torch.cat([self.W1, self.W2.t()]), torch.cat([self.b, self.d]), self.c

    def log_p_star_h1(self, v: torch.Tensor, h1: torch.Tensor) -> torch.Tensor:
        """log sum_h2 exp(-E(v, h1, h2)) = b.v + c.h1 + v W1 h1 + sum_k softplus(d_k + h1.W2_:k): (B, D), (B, F1) -> (B,)."""
        return (v * self.b).sum(-1) + h1 @ self.c + ((v @ self.W1) * h1).sum(-1) + F.softplus(h1 @ self.W2 + self.d).sum(-1)

    # --- mean-field inference ------------------------------------------------------------------
    def mf_init(self, v: torch.Tensor, v_in: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The bottom-up start of mean field (the doubling): mu1 = sigma(c + 2 v W1), mu2 = sigma(d + mu1 W2).
        The factor 2 stands in for the top-down input h2 W2^T that h1 will receive (Salakhutdinov & Hinton 2009).
        v_in: v W1 if already computed."""
        mu1 = torch.sigmoid(self.c + 2 * (v @ self.W1 if v_in is None else v_in))
        return mu1, self.p_h2(mu1)

    def mf_sweep(self, v_in: torch.Tensor, mu2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One sweep: mu1 <- sigma(c + v W1 + mu2 W2^T), then mu2 <- sigma(d + mu1 W2). v_in = v W1 (precomputed)."""
        mu1 = torch.sigmoid(self.c + v_in + mu2 @ self.W2.t())
        return mu1, self.p_h2(mu1)

    def mean_field(self, v: torch.Tensor, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mu1 (B, F1), mu2 (B, F2) after `steps` sweeps from the doubled bottom-up start."""
        v_in = v @ self.W1
        mu1, mu2 = self.mf_init(v, v_in)
        for _ in range(self.config.mf_steps if steps is None else steps):
            mu1, mu2 = self.mf_sweep(v_in, mu2)
        return mu1, mu2

    def bound_unnormalized(self, v, mu1, mu2) -> torch.Tensor:
        """E_q[-E(v, h)] + H(q) for factorial q(h1, h2) = Bern(mu1) Bern(mu2): (B,). Minus log Z gives the
        variational lower bound on log p(v)."""
        return (v @ self.b + mu1 @ self.c + mu2 @ self.d + ((v @ self.W1) * mu1).sum(-1)
                + ((mu1 @ self.W2) * mu2).sum(-1) + _entropy(mu1) + _entropy(mu2))

    @torch.no_grad()
    def mean_field_frames(self, v: torch.Tensor, steps: int,
                          missing: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Mean field for one image v (D,), frame 0 = the bottom-up start and frame t = after t sweeps:
        mu1 (T+1, F1), mu2 (T+1, F2), unnormalized bound (T+1,), read-out sigma(b + mu1 W1^T) (T+1, D), the
        top-down part of h1's input mu2 W2^T (T+1, F1) and the bottom-up part v W1 (F1,) of the last frame.

        missing: optional bool mask (D,) of unobserved pixels. They start at 0 and join the mean field as
        variables (after each sweep mu_v = sigma(b + mu1 W1^T) there), so the bound is on the observed pixels'
        log p*; "v" (T+1, D) holds the pixels each frame used."""
        v = v.reshape(1, -1).to(self.W1.dtype).clone()
        if missing is not None:
            missing = missing.reshape(1, -1).bool()
            v[missing] = 0
        v_in = v @ self.W1
        mu1, mu2 = self.mf_init(v, v_in)
        m1, m2, vs = [mu1], [mu2], [v]
        for _ in range(steps):
            mu1, mu2 = self.mf_sweep(v_in, mu2)
            if missing is not None:
                v = torch.where(missing, self.p_v(mu1), v)
                v_in = v @ self.W1
            m1.append(mu1)
            m2.append(mu2)
            vs.append(v)
        mu1, mu2, vs = torch.cat(m1), torch.cat(m2), torch.cat(vs)
        W1, W2, b, c, d = (t.double() for t in (self.W1, self.W2, self.b, self.c, self.d))  # the bound in float64
        v64, m1_64, m2_64 = vs.double(), mu1.double(), mu2.double()
        bound = (v64 @ b + m1_64 @ c + m2_64 @ d + ((v64 @ W1) * m1_64).sum(-1) + ((m1_64 @ W2) * m2_64).sum(-1)
                 + _entropy(m1_64) + _entropy(m2_64))
        if missing is not None:  # the missing pixels' own entropy (their energy terms are in the sum above)
            bound = bound + _entropy(torch.where(missing, v64, torch.zeros_like(v64)))
        return {"mu1": mu1, "mu2": mu2, "bound": bound, "v": vs, "reconstruction": self.p_v(mu1),
                "top_down": mu2 @ self.W2.t(), "bottom_up": v_in[0]}

    # --- likelihood ----------------------------------------------------------------------------
    def exact_log_z(self) -> float:
        """Exact log Z by enumerating h1 (F1 <= 20), with v and h2 summed analytically."""
        return exact_log_z_rbm(*self.rbm_view())

    def exact_log_p_star(self, v: torch.Tensor) -> torch.Tensor:
        """Exact log sum_{h1,h2} exp(-E(v, h1, h2)) by enumerating h1 (F1 <= 20): (B, D) -> (B,) float64."""
        F1 = self.config.n_hidden1
        if F1 > 20:
            raise ValueError(f"exact enumeration needs at most 20 units in h1, got {F1}")
        codes = torch.arange(2 ** F1, device=v.device)
        h1 = ((codes[:, None] >> torch.arange(F1, device=v.device)) & 1).double()  # (2^F1, F1)
        W1, W2, b, c, d = (t.detach().double() for t in (self.W1, self.W2, self.b, self.c, self.d))
        v = v.double()
        terms = (v @ b)[:, None] + (h1 @ c)[None] + v @ W1 @ h1.t() + F.softplus(h1 @ W2 + d).sum(-1)[None]
        return torch.logsumexp(terms, 1)

    @torch.no_grad()
    def importance_log_p_star(self, v: torch.Tensor, k: int, *, generator=None,
                              mu1: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Importance-sampled log sum_h exp(-E(v, h)) over h1 ~ q = Bern(mu1) (mean-field marginal), h2 summed
        exactly: log (1/k) sum_s p*(v, h1_s) / q(h1_s). v (B, D) -> "log_p_star" (B,), "ess" (B,) effective
        sample size (sum w)^2 / sum w^2, "log_w" (k, B)."""
        if mu1 is None:
            mu1, _ = self.mean_field(v)
        mu1 = mu1.clamp(1e-6, 1 - 1e-6)
        log_mu, log_1mu = mu1.log(), torch.log1p(-mu1)
        log_w, chunk = [], max(1, 100_000 // (len(v) * mu1.shape[1]))
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            h1 = bernoulli(mu1.expand(n, *mu1.shape), generator)  # (n, B, F1)
            log_q = (h1 * log_mu + (1 - h1) * log_1mu).sum(-1)
            log_w.append(self.log_p_star_h1(v.expand(n, *v.shape), h1).double() - log_q.double())
        log_w = torch.cat(log_w)
        est = torch.logsumexp(log_w, 0) - math.log(k)
        ess = torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))
        return {"log_p_star": est, "ess": ess, "log_w": log_w}

    def base_rates(self, data: torch.Tensor) -> torch.Tensor:
        """Visible biases of the AIS base model over [v, h2]: log-odds of the pixel means and of the data's
        mean-field mu2 means (Salakhutdinov & Hinton's choice of base rates). data (N, D) -> (D + F2,)."""
        with torch.no_grad():
            _, mu2 = self.mean_field(data.to(self.device).float())
        return torch.cat([base_rate_bias(data.cpu()), base_rate_bias(mu2.double().cpu())])

    @torch.no_grad()
    def ais_log_z(self, base: torch.Tensor, *, n_runs: int, n_betas: int, generator=None,
                  dtype: torch.dtype = torch.float32) -> AISResult:
        """AIS estimate of log Z on the h1-summed model (an RBM over [v, h2]); matrix products in `dtype`."""
        W, b, a = self.rbm_view()
        return ais(W.cpu(), b.cpu(), a.cpu(), base, n_runs=n_runs, n_betas=n_betas, generator=generator, dtype=dtype)

    @torch.no_grad()
    def mf_bound(self, v: torch.Tensor, log_z: float, steps: int | None = None) -> torch.Tensor:
        """Per-image variational lower bound on log p(v) in nats (B,), given an estimate of log Z."""
        mu1, mu2 = self.mean_field(v, steps)
        return self.bound_unnormalized(v, mu1, mu2) - log_z

    # --- sampling ------------------------------------------------------------------------------
    def gibbs_sweep(self, v, h2, generator=None, p_h1: torch.Tensor | None = None):
        """h1 ~ p(h1|v, h2), then v ~ p(v|h1) and h2 ~ p(h2|h1) (one block each). Returns (v, h1, h2, mean of v).
        p_h1: p(h1|v, h2) if already computed."""
        h1 = bernoulli(self.p_h1(v, h2) if p_h1 is None else p_h1, generator)
        mean = self.p_v(h1)
        return bernoulli(mean, generator), h1, bernoulli(self.p_h2(h1), generator), mean

    @torch.no_grad()
    def gibbs_run(self, n: int, steps: int, *, keep: tuple[int, ...] = (), generator=None,
                  start: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """n chains for `steps` sweeps from uniform noise (or from visible states `start` (n, D)); returns the
        final binary v "states" and means p(v|h1) "means" (n, D), and at each step in `keep` the same pair
        stacked as "kept_states"/"kept_means" (len(keep), n, D)."""
        D = self.config.n_visible
        v = bernoulli(torch.full((n, D), 0.5, device=self.device), generator) if start is None else start.float()
        h2 = bernoulli(torch.full((n, self.config.n_hidden2), 0.5, device=self.device), generator)
        if start is not None:
            _, mu2 = self.mean_field(v)
            h2 = bernoulli(mu2, generator)
        mean, ks, km = v, [], []
        for t in range(1, steps + 1):
            v, _, h2, mean = self.gibbs_sweep(v, h2, generator)
            if t in keep:
                ks.append(v)
                km.append(mean)
        out = {"states": v, "means": mean}
        if keep:
            out.update(kept_states=torch.stack(ks), kept_means=torch.stack(km))
        return out

    # --- the model contract -------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, generator=None, steps: int | None = None) -> torch.Tensor:
        """n samples after `steps` Gibbs sweeps from noise: (n, D) means p(v=1|h1) in [0, 1]."""
        return self.gibbs_run(n, steps or self.config.sample_steps, generator=generator)["means"]

    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """The negative mean-field bound without log Z (the data term the learner ascends)."""
        with torch.no_grad():
            mu1, mu2 = self.mean_field(batch)
        value = -self.bound_unnormalized(batch, mu1, mu2).mean()
        return {"loss": value}

    def make_optimizers(self, **hparams) -> list["DBMLearning"]:
        return [DBMLearning(self, **hparams)]

    def train_step(self, batch, optimizers, *, generator=None) -> dict[str, float]:
        (learner,) = optimizers
        return learner.step(batch, generator=generator)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Visible biases (DBM and RBM 1) to the log-odds of the mean pixel intensities. x: (N, D)."""
        mean = x.mean(0).clamp(1e-3, 1 - 1e-3)
        logit = torch.log(mean) - torch.log1p(-mean)
        self.b.copy_(logit)
        self.rbm1_b.copy_(logit)

    @torch.no_grad()
    def monitor(self, v: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Held-out numbers: the MF bound with the latest cheap-AIS log Z (joint phase), reconstruction errors."""
        phase = int(self.phase)
        if phase == 0:
            h = bernoulli(torch.sigmoid(self.rbm1_c + 2 * v @ self.rbm1_W), generator)
            return {"rbm1_reconstruction_error": float(((v - torch.sigmoid(self.rbm1_b + h @ self.rbm1_W.t())) ** 2).mean())}
        if phase == 1:
            h1 = bernoulli(torch.sigmoid(self.rbm1_c + 2 * v @ self.rbm1_W), generator)
            h2 = bernoulli(torch.sigmoid(self.rbm2_d + h1 @ self.rbm2_W), generator)
            rec = torch.sigmoid(self.rbm2_c + 2 * h2 @ self.rbm2_W.t())
            return {"rbm2_reconstruction_error": float(((h1 - rec) ** 2).mean())}
        mu1, mu2 = self.mean_field(v)
        out = {"mf_reconstruction_error": float(((v - self.p_v(mu1)) ** 2).mean())}
        if self._log_z_cheap is not None and self._log_z_at == self._updates:  # log Z of these very weights
            out["valid_bound_cheap_ais"] = float(self.bound_unnormalized(v, mu1, mu2).mean() - self._log_z_cheap)
        return out

    @torch.no_grad()
    def preview(self, n: int = 64):
        """The first n first-layer filters (DBM's W1 once joint training has begun, else RBM 1's): numpy (n, H, W)."""
        W = self.W1 if int(self.phase) == 2 else self.rbm1_W
        return filters_as_images(W[:, :n].t(), self.config.image_shape).numpy()

    def bound_history(self) -> list[tuple[int, float, float]]:
        """The logged (joint epoch, cheap-AIS log Z, validation MF bound) rows."""
        rows = self.bound_log[self.bound_log[:, 0] > 0]
        return [(int(e), float(z), float(bd)) for e, z, bd in rows.tolist()]

    # --- the pretrained stack ------------------------------------------------------------------
    @torch.no_grad()
    def compose(self, h1_bias: str = "average") -> None:
        """The DBM from the greedy stack: W1 = RBM 1's, W2 = RBM 2's (each had one side doubled in pretraining),
        b = RBM 1's visible bias, d = RBM 2's top bias, and c = the average of the two RBMs' h1 biases
        ("average") or RBM 1's ("first")."""
        self.W1.copy_(self.rbm1_W)
        self.W2.copy_(self.rbm2_W)
        self.b.copy_(self.rbm1_b)
        self.d.copy_(self.rbm2_d)
        self.c.copy_((self.rbm1_c + self.rbm2_c) / 2 if h1_bias == "average" else self.rbm1_c)
        self.phase.fill_(2)

    @torch.no_grad()
    def stack_up(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The greedy stack's bottom-up pass (a DBN's recognition, no top-down input): q(h1|v) with RBM 1's
        doubled input and q(h2|h1) = sigma(d + q1 W2) from RBM 2. (B, D) -> (B, F1), (B, F2)."""
        q1 = torch.sigmoid(self.rbm1_c + 2 * v @ self.rbm1_W)
        return q1, torch.sigmoid(self.rbm2_d + q1 @ self.rbm2_W)

    @torch.no_grad()
    def stack_down(self, q1: torch.Tensor) -> torch.Tensor:
        """The stack's generative read-out p(v|h1) from RBM 1: (B, F1) -> (B, D)."""
        return torch.sigmoid(self.rbm1_b + q1 @ self.rbm1_W.t())


class DBMLearning:
    """The whole recipe as one 'optimizer' the Trainer steps, epoch by epoch:

    1. epochs [0, P): RBM 1 by CD-1 with h1 seeing 2 v W (the doubled bottom-up input);
    2. epochs [P, 2P): RBM 2 by CD-1 on h1 ~ RBM 1's doubled up-pass, with h1 seeing 2 h2 W2^T;
    3. then the DBM composed from both (`DBM.compose`) and trained jointly: the data term from mean field
       (`mf_steps` sweeps), the model term from `n_chains` persistent Gibbs chains (`pcd_steps` sweeps per
       update); momentum SGD with weight decay; with `centring`, gradients of the centred energy
       (offsets = data means of v, h1, h2; h offsets follow the batches' mean-field means) mapped back to the
       uncentred parameters (Melchior et al. 2016, algorithm 1). The learning rate decays as lr / (1 + t / tau),
       t the joint epoch (from 0), tau = `lr_decay_epochs`, or `late_decay_epochs` from joint epoch `late_epoch` on
       (when set: a faster decay at the end, so the persistent chains can keep up).
    Every `ais_every` joint epochs the last batch is followed by a cheap AIS (`ais_betas`, `ais_runs`) whose
    log Z the model's monitor uses for the validation bound; the row is kept in `DBM.bound_log`."""

    def __init__(self, dbm: DBM, *, pretrain_epochs: int = 10, pretrain_lr: float = 0.05, lr: float = 0.005,
                 lr_decay_epochs: float = 30.0, momentum: float = 0.5, weight_decay: float = 2e-4,
                 mf_steps: int = 5, pcd_steps: int = 1, n_chains: int = 100, centring: bool = True,
                 offset_rate: float = 0.01, h1_bias: str = "average", ais_every: int = 5, ais_betas: int = 1000,
                 ais_runs: int = 16, recompose: bool = False, late_epoch: int = 0, late_decay_epochs: float = 0.0,
                 average_from: int = 0, verbose: bool = True) -> None:
        self.dbm = dbm
        self.pretrain_epochs, self.pretrain_lr, self.base_lr = pretrain_epochs, pretrain_lr, lr
        self.lr_decay_epochs, self.momentum, self.weight_decay = lr_decay_epochs, momentum, weight_decay
        self.mf_steps, self.pcd_steps, self.n_chains, self.centring = mf_steps, pcd_steps, n_chains, centring
        self.offset_rate, self.h1_bias = offset_rate, h1_bias
        self.ais_every, self.ais_betas, self.ais_runs, self.verbose = ais_every, ais_betas, ais_runs, verbose
        self.recompose = recompose  # warm start: compose the DBM afresh from the kept RBM stack, new offsets
        self.late_epoch, self.late_decay_epochs = late_epoch, late_decay_epochs  # from joint epoch late_epoch: faster decay
        self.average_from = average_from  # > 0: training ends on the mean of the weights after joint epochs > this
        self.average_sum: list[torch.Tensor] | None = None
        self.averaged = 0  # epoch-end weights summed into average_sum
        self.epochs_started, self.epoch, self.steps_in_epoch, self.steps_per_epoch = 0, 0, 0, 0
        self.lr = lr
        self.velocity: list[torch.Tensor] | None = None
        self.chains: tuple[torch.Tensor, torch.Tensor] | None = None  # persistent (v, h2) of the joint phase
        self.chain_p_h1: torch.Tensor | None = None  # p(h1|v, h2) of the chains' current state
        self.base: torch.Tensor | None = None  # AIS base rates over [v, h2]

    # --- schedule ------------------------------------------------------------------------------
    def set_progress(self, fraction: float) -> None:
        """Called by the Trainer at the start of every epoch; counts epochs and switches phases."""
        if self.epochs_started == 1 and not self.steps_per_epoch:
            self.steps_per_epoch = self.steps_in_epoch
        self.epoch, self.epochs_started, self.steps_in_epoch = self.epochs_started, self.epochs_started + 1, 0
        P, dbm = self.pretrain_epochs, self.dbm
        phase = 0 if self.epoch < P else 1 if self.epoch < 2 * P else 2
        if phase != int(dbm.phase) or self.velocity is None:
            if phase == 2 and (int(dbm.phase) != 2 or (self.recompose and self.epoch == 0)):
                dbm.compose(self.h1_bias)
                for offset in (dbm.offset_v, dbm.offset_h1, dbm.offset_h2):
                    offset.zero_()
                dbm.bound_log.zero_()
            dbm.phase.fill_(phase)
            self.velocity = None
        joint = self.epoch - 2 * P
        tau = self.late_decay_epochs if self.late_decay_epochs and joint >= self.late_epoch else self.lr_decay_epochs
        self.lr = self.pretrain_lr if phase < 2 else self.base_lr / (1 + max(joint, 0) / tau)

    def _params(self, phase: int) -> list[torch.Tensor]:
        d = self.dbm
        return ([d.rbm1_W, d.rbm1_b, d.rbm1_c] if phase == 0 else [d.rbm2_W, d.rbm2_c, d.rbm2_d] if phase == 1
                else [d.W1, d.W2, d.b, d.c, d.d])

    # --- one update ----------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, v: torch.Tensor, *, generator=None) -> dict[str, float]:
        dbm, phase = self.dbm, int(self.dbm.phase)
        if self.velocity is None:
            self.velocity = [torch.zeros_like(p) for p in self._params(phase)]
        self.steps_in_epoch += 1
        if phase == 0:
            out = self._rbm_step(v, dbm.rbm1_W, dbm.rbm1_b, dbm.rbm1_c, double_hidden=True, generator=generator)
        elif phase == 1:
            h1 = bernoulli(torch.sigmoid(dbm.rbm1_c + 2 * v @ dbm.rbm1_W), generator)
            out = self._rbm_step(h1, dbm.rbm2_W, dbm.rbm2_c, dbm.rbm2_d, double_hidden=False, generator=generator)
        else:
            out = self._joint_step(v, generator)
            if self.steps_per_epoch and self.steps_in_epoch == self.steps_per_epoch:
                joint = self.epoch - 2 * self.pretrain_epochs + 1  # joint epochs completed after this step
                if self.ais_every and (joint % self.ais_every == 0 or joint == 1):
                    self._cheap_ais(joint)
                if self.average_from and joint > self.average_from:
                    self._accumulate_average()
        return out

    # --- averaged weights (Polyak averaging of the epoch ends) ---------------------------------
    def _accumulate_average(self) -> None:
        params = self._params(2)
        if self.average_sum is None:
            self.average_sum = [torch.zeros_like(p) for p in params]
        for total, p in zip(self.average_sum, params):
            total.add_(p)
        self.averaged += 1

    @torch.no_grad()
    def finish(self) -> None:
        """Called by the Trainer when training ends: with `average_from`, the DBM takes the mean of the weights
        and biases it had after each joint epoch past `average_from` (the persistent chains' noise averages out).
        The resume state (chains, momentum) still belongs to the last weights: a later --resume starts from the
        averaged weights with them."""
        if self.averaged:
            for p, total in zip(self._params(2), self.average_sum):
                p.copy_(total / self.averaged)
            self.dbm._log_z_cheap = None  # the last cheap log Z was for the last weights, not their mean

    def _rbm_step(self, x, W, bv, bh, *, double_hidden: bool, generator) -> dict[str, float]:
        """CD-1 on an RBM whose one side gets its input twice: RBM 1 (double_hidden: p(h|x) = sigma(bh + 2 x W))
        or RBM 2 (p(x|h) = sigma(bv + 2 h W^T)). W (n_x, n_h)."""
        up, down = (2.0, 1.0) if double_hidden else (1.0, 2.0)
        ph = torch.sigmoid(bh + up * (x @ W))
        h = bernoulli(ph, generator)
        x_neg = bernoulli(torch.sigmoid(bv + down * (h @ W.t())), generator)
        ph_neg = torch.sigmoid(bh + up * (x_neg @ W))
        B = len(x)
        grads = [(x.t() @ ph - x_neg.t() @ ph_neg) / B - self.weight_decay * W,
                 (x - x_neg).mean(0), (ph - ph_neg).mean(0)]
        for p, vel, g in zip((W, bv, bh), self.velocity, grads):
            vel.mul_(self.momentum).add_(g, alpha=self.lr)
            p.add_(vel)
        return {"reconstruction_error": float(((x - x_neg) ** 2).mean())}

    def _joint_step(self, v: torch.Tensor, generator) -> dict[str, float]:
        dbm, B = self.dbm, len(v)
        if self.chains is None or len(self.chains[0]) != self.n_chains:
            self._start(v, generator)
        mu1, mu2 = dbm.mean_field(v, self.mf_steps)  # the data term (variational)
        vn, h2n = self.chains  # the model term (persistent chains)
        h1n = self.chain_p_h1
        for _ in range(self.pcd_steps):
            vn, _, h2n, _ = dbm.gibbs_sweep(vn, h2n, generator, p_h1=h1n)
            h1n = dbm.p_h1(vn, h2n)  # Rao-Blackwellised h1 of the chains (and the next sweep's p(h1|v, h2))
        self.chains, self.chain_p_h1 = (vn, h2n), h1n
        dbm._updates += 1
        K = min(len(vn), len(dbm.chain_v))
        dbm.chain_v[:K] = vn[:K]
        dbm.chain_h2[:K] = h2n[:K]
        ov, o1, o2 = dbm.offset_v, dbm.offset_h1, dbm.offset_h2
        vc, m1c, m2c = v - ov, mu1 - o1, mu2 - o2
        nvc, n1c, n2c = vn - ov, h1n - o1, h2n - o2
        N, lr = len(vn), self.lr
        vel_W1, vel_W2, vel_b, vel_c, vel_d = self.velocity
        # velocity <- momentum * velocity + lr * gradient, the weight gradients accumulated in place:
        # g_W1 = vc' m1c / B - nvc' n1c / N - wd W1 (and likewise for W2), without temporaries the size of W
        for vel, W, (x, y), (xn, yn) in ((vel_W1, dbm.W1, (vc, m1c), (nvc, n1c)), (vel_W2, dbm.W2, (m1c, m2c), (n1c, n2c))):
            vel.mul_(self.momentum).add_(W, alpha=-lr * self.weight_decay)
            vel.addmm_(x.t(), y, alpha=lr / B).addmm_(xn.t(), yn, alpha=-lr / N)
        for vel, g in ((vel_b, v.mean(0) - vn.mean(0)), (vel_c, mu1.mean(0) - h1n.mean(0)),
                       (vel_d, mu2.mean(0) - h2n.mean(0))):
            vel.mul_(self.momentum).add_(g, alpha=lr)
        dbm.W1.add_(vel_W1)
        dbm.W2.add_(vel_W2)
        # centred bias steps mapped to the uncentred parameters: b = b' - W1 o1, c = c' - W1^T ov - W2 o2, d = d' - W2^T o1
        dbm.b.add_(vel_b - vel_W1 @ o1)
        dbm.c.add_(vel_c - vel_W1.t() @ ov - vel_W2 @ o2)
        dbm.d.add_(vel_d - vel_W2.t() @ o1)
        if self.centring:
            o1.lerp_(mu1.mean(0), self.offset_rate)
            o2.lerp_(mu2.mean(0), self.offset_rate)
        return {"mf_h1_mean": float(mu1.mean()), "chain_pixel_mean": float(vn.mean())}

    def _start(self, v: torch.Tensor, generator) -> None:
        """Persistent chains from data (bottom-up states) and, with centring, the offsets from data means."""
        dbm = self.dbm
        idx = torch.arange(self.n_chains, device=v.device) % len(v)
        vs = v[idx]
        mu1, mu2 = dbm.mean_field(vs)
        self.chains = (vs.clone(), bernoulli(mu2, generator))
        self.chain_p_h1 = dbm.p_h1(*self.chains)
        if self.centring and not bool(dbm.offset_h1.any()):
            from engine.data import mnist  # local: the data module is only needed while training
            pixels = mnist.images("train").mean(0) if v.shape[1] == 784 else v.mean(0)
            dbm.offset_v.copy_(pixels.to(v.device))  # the data's pixel means
            m1, m2 = dbm.mean_field(v)
            dbm.offset_h1.copy_(m1.mean(0))
            dbm.offset_h2.copy_(m2.mean(0))

    def _cheap_ais(self, joint_epoch: int) -> None:
        """log Z by a short AIS on the current weights (seeded), kept for the monitor and `bound_log`."""
        from engine.data import mnist  # local: the data module is only needed while training
        dbm = self.dbm
        if self.base is None:
            self.base = dbm.base_rates(mnist.binarized("train", seed=1)[:5000])
        res = dbm.ais_log_z(self.base, n_runs=self.ais_runs, n_betas=self.ais_betas,
                            generator=torch.Generator().manual_seed(joint_epoch))
        dbm._log_z_cheap, dbm._log_z_at = res.log_z, dbm._updates
        valid = mnist.binarized("valid")[:1000].to(dbm.device)
        bound = float(dbm.mf_bound(valid, res.log_z).mean())
        row = int((dbm.bound_log[:, 0] > 0).sum())
        if row < BOUND_LOG_ROWS:
            dbm.bound_log[row] = torch.tensor([joint_epoch, res.log_z, bound])
        if self.verbose:
            sys.stderr.write(f"\nDBM joint epoch {joint_epoch}: cheap AIS log Z {res.log_z:.2f} "
                             f"(+-{res.log_z_std:.3f}, {self.ais_runs} runs x {self.ais_betas} betas), "
                             f"validation MF bound {bound:.2f} nats\n")

    # --- resume --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"velocity": self.velocity, "chains": self.chains, "base": self.base, "average_sum": self.average_sum,
                "counters": torch.tensor([self.epochs_started, self.steps_per_epoch, self.averaged, self.average_from])}

    def load_state_dict(self, state: dict) -> None:
        dev = self.dbm.device
        self.velocity = None if state["velocity"] is None else [v.to(dev) for v in state["velocity"]]
        self.chains = None if state["chains"] is None else tuple(c.to(dev) for c in state["chains"])
        self.chain_p_h1 = None if self.chains is None else self.dbm.p_h1(*self.chains)
        self.base = state["base"]
        self.epochs_started, self.steps_per_epoch, *rest = (int(x) for x in state["counters"])
        # The running average carries over only to a run with the same `average_from` (a continuation of the same
        # stage); a new stage starts its own. States written before `average_from` was kept start afresh too.
        same_stage = len(rest) == 2 and rest[1] == self.average_from and state.get("average_sum") is not None
        self.averaged = rest[0] if same_stage else 0
        self.average_sum = [t.to(dev) for t in state["average_sum"]] if same_stage else None


# --- the test log-likelihood, as the CLI's eval and the card report it ---------------------------------
PAPER_BOUND = -84.62  # Salakhutdinov & Hinton (2009), 2-layer DBM 784-500-1000, MNIST (their fixed binarization)


@torch.no_grad()
def iter_evaluation(model: DBM, *, n_runs: int = 100, n_betas: int = 14500, mf_steps: int = 30,
                    is_k: int = 1000, is_images: int = 500, seed: int = 0) -> Iterator[dict]:
    """The test log-likelihood of a DBM on the seeded test binarization, each number labelled:
    AIS estimate of log Z (h1 summed out; base rates from 10,000 training digits), the mean-field variational
    lower bound per image (`mf_steps` sweeps, all 10,000 test digits), and an importance-sampled estimate over
    h1 (q = the mean-field marginal of h1, h2 summed exactly, `is_k` samples) on the first `is_images`, with its
    effective sample size. Yields {"progress", "stage"}; the last dict holds "result"."""
    from engine.data import mnist
    model = model.cpu().eval()
    test = mnist.binarized("test")
    base = model.base_rates(mnist.binarized("train", seed=1)[:10_000])
    g = torch.Generator().manual_seed(seed)
    W, b, a = model.rbm_view()
    for update in iter_ais(W, b, a, base, n_runs=n_runs, n_betas=n_betas, generator=g, dtype=torch.float32,
                           report_every=500):
        if "result" not in update:
            yield {"progress": 0.85 * update["progress"], "stage": "AIS", "log_z": update["log_z"]}
    res: AISResult = update["result"]
    bound_terms = torch.cat([model.bound_unnormalized(x, *model.mean_field(x, mf_steps)).double()
                             for x in test.split(1000)])
    bound = bound_terms - res.log_z
    yield {"progress": 0.87, "stage": "mean-field bound"}
    log_p, ess = [], []
    for i in range(0, is_images, 50):
        x = test[i:i + 50]
        mu1, _ = model.mean_field(x, mf_steps)
        out = model.importance_log_p_star(x, is_k, generator=g, mu1=mu1)
        log_p.append(out["log_p_star"] - res.log_z)
        ess.append(out["ess"])
        yield {"progress": 0.87 + 0.13 * min(i + 50, is_images) / is_images, "stage": "importance sampling"}
    log_p, ess = torch.cat(log_p), torch.cat(ess)
    n = len(test)
    yield {"progress": 1.0, "result": {
        "log_z": {"estimate": res.log_z, "std_error": res.log_z_std, "interval_3se": list(res.log_z_interval),
                  "log_z_base": res.log_z_base, "n_runs": res.n_runs, "n_betas": res.n_betas,
                  "betas": "0..0.5 (3.4%), 0.5..0.9 (27.6%), 0.9..1 (69.0%) of the temperatures",
                  "base": "base-rate model over [v, h2]: pixel log-odds and log-odds of the mean-field mu2 means of "
                          "10,000 training digits", "matmul": "float32 (log weights accumulated in float64)"},
        "mf_bound": {"mean": bound.mean().item(), "stderr": (bound.std() / math.sqrt(n)).item(),
                     "stderr_with_log_z": math.hypot((bound.std() / math.sqrt(n)).item(), res.log_z_std),
                     "sweeps": mf_steps, "images": n},
        "is_estimate": {"mean": log_p.mean().item(), "stderr": (log_p.std() / math.sqrt(len(log_p))).item(),
                        "bound_on_same_images": bound[:len(log_p)].mean().item(), "k": is_k, "images": len(log_p),
                        "ess_mean": ess.mean().item(), "ess_median": ess.median().item(),
                        "ess_min": ess.min().item(),
                        "proposal": "q(h1) = product of Bernoulli(mu1), the mean-field marginal; h2 summed exactly"},
        "split": mnist.describe(), "units": "nats per image", "paper_bound": PAPER_BOUND,
        "rbm_reference": _bundled_rbm_log_likelihood()}}


def _bundled_rbm_log_likelihood() -> float | None:
    """The bundled RBM's (rbm-mnist) AIS test log-likelihood on the same test binarization, if installed."""
    from engine import checkpoint
    from pathlib import Path
    folder = Path(__file__).resolve().parents[2] / "assets" / "checkpoints" / "rbm-mnist"
    return checkpoint.read_metrics(folder).get("test_log_likelihood", {}).get("test_log_likelihood")
