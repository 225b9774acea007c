"""The Helmholtz machine: a sigmoid belief net (SBN) with a factorial recognition net, trained by wake-sleep.

References:
- Hinton, Dayan, Frey & Neal (1995), "The wake-sleep algorithm for unsupervised neural networks";
  Dayan, Hinton, Neal & Zemel (1995), "The Helmholtz machine".
- Neal (1992), "Connectionist learning of belief networks" (the sigmoid belief net).
- Bornschein & Bengio (2015), "Reweighted wake-sleep" (RWS: K importance samples from q, self-normalised
  weights in the wake phase of both nets).
- Kingma & Welling (2014), "Auto-Encoding Variational Bayes" (the same width with Gaussian latents, trained by
  the ELBO with the reparameterization gradient: the VAE this page compares with).

Generative net (down): p(h) = prod_j Bernoulli(h_j; sigmoid(c_j)), p(x|h) = prod_i Bernoulli(x_i; sigmoid(W h + b)_i).
Recognition net (up): q(h|x) = prod_j Bernoulli(h_j; sigmoid(R x + d)_j), factorial.
Wake: h ~ q(h|x) for a data digit x, then ascend log p(x, h) (generative weights only).
Sleep: a dream h ~ p(h), x ~ p(x|h), then ascend log q(h|x) (recognition weights only).
RWS: K samples h_k ~ q(h|x), w_k = p(x, h_k) / q(h_k|x) normalised to sum 1; the generative net ascends
sum_k w_k log p(x, h_k) and the recognition net sum_k w_k log q(h_k|x) (its wake phase), plus the sleep phase.
With latent="gaussian", h is real (p(h) = N(0, I), q(h|x) = N(mu(x), diag exp(logvar(x))), same linear nets)
and objective="elbo" trains both nets by the ELBO with reparameterized samples (a VAE of the same width).

log w = log p(x, h) - log q(h|x); ELBO = E_q[log w]; the importance-sampled estimate log (1/k) sum_k w_k
(k = 1000) is a stochastic lower bound of log p(x) that tightens as k grows. All values are nats per image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import Model
from engine.optim import scheduled_adam, scheduled_step
from engine.registry import register

LOG_2PI = math.log(2 * math.pi)
OBJECTIVES = ("ws", "rws", "elbo")
MONITOR_IMAGES, MONITOR_K = 200, 100  # curves over training: IS estimate with k = 100 on 200 validation images


@dataclass(frozen=True)
class HelmholtzConfig:
    n_visible: int = 784
    n_hidden: int = 200
    latent: str = "bernoulli"  # "bernoulli" (a sigmoid belief net) or "gaussian" (the VAE of the same width)
    objective: str = "ws"  # "ws" wake-sleep, "rws" reweighted wake-sleep, "elbo" reparameterized ELBO (gaussian)
    k: int = 1  # samples from q per image in the wake phase (RWS: 5)
    sleep: bool = True  # RWS: also take the sleep-phase recognition update (Bornschein & Bengio's "both")
    image_shape: tuple[int, int] = (28, 28)


def _train(epochs: int, lr: float = 1e-2) -> dict:
    """Adam at `lr` with a cosine decay to 0 over the run (500 steps per epoch of 50,000 training digits)."""
    return {"epochs": epochs, "batch_size": 100, "lr": lr, "total_steps": 500 * epochs}


def bernoulli_log_prob(logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """sum over the last axis of log Bernoulli(values; sigmoid(logits)), nats: (..., N) -> (...)."""
    logits, values = torch.broadcast_tensors(logits, values)
    return -F.binary_cross_entropy_with_logits(logits, values, reduction="none").sum(-1)


@register("helmholtz", HelmholtzConfig)
class HelmholtzMachine(Model):
    """SBN with one stochastic layer and a factorial recognition net (or their Gaussian-latent counterpart)."""

    records_snapshots = True  # the CLI keeps the fixed-noise samples and the curves over training
    presets = {
        "ws": {"config": {"objective": "ws"}, "train": _train(12)},
        "rws": {"config": {"objective": "rws", "k": 5}, "train": _train(6)},
        "vae": {"config": {"latent": "gaussian", "objective": "elbo"}, "train": _train(6)},
        "tiny": {"config": {"n_hidden": 8}, "train": {**_train(1), "max_steps": 20}},
    }

    def __init__(self, config: HelmholtzConfig) -> None:
        super().__init__(config)
        if config.objective not in OBJECTIVES or config.latent not in ("bernoulli", "gaussian"):
            raise ValueError(f"objective must be one of {OBJECTIVES} and latent bernoulli or gaussian")
        if (config.objective == "elbo") != (config.latent == "gaussian"):
            raise ValueError("the reparameterized ELBO needs Gaussian latents; wake-sleep needs Bernoulli ones")
        D, H = config.n_visible, config.n_hidden
        self.prior_logits = nn.Parameter(torch.zeros(H))  # c: p(h_j = 1) = sigmoid(c_j) (unused when Gaussian)
        self.generative = nn.Linear(H, D)  # W (D, H), b (D,): down
        self.recognition = nn.Linear(D, H if config.latent == "bernoulli" else 2 * H)  # R, d: up
        nn.init.normal_(self.generative.weight, std=0.01)
        nn.init.normal_(self.recognition.weight, std=0.01)
        nn.init.zeros_(self.recognition.bias)

    @property
    def gaussian(self) -> bool:
        return self.config.latent == "gaussian"

    def init_from_data(self, x: torch.Tensor) -> None:
        """Generative pixel biases at the log-odds of the training pixel means (a common SBN start)."""
        p = x.mean(0).clamp(1e-3, 1 - 1e-3)
        with torch.no_grad():
            self.generative.bias.copy_(torch.log(p) - torch.log1p(-p))

    # --- the two nets -------------------------------------------------------------------------------
    def recognize(self, x: torch.Tensor) -> torch.Tensor:
        """Up pass: q(h|x)'s logits (B, H), or [mu, logvar] (B, 2H) for Gaussian latents."""
        return self.recognition(x)

    def pixel_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Down pass: the logits of p(x=1|h): (..., H) -> (..., D)."""
        return self.generative(h)

    def sample_q(self, x: torch.Tensor, k: int, *, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """k codes per image from q(h|x) and their log q: (B, D) -> h (k, B, H), log q (k, B).

        Gaussian codes are reparameterized (differentiable in the recognition weights); binary ones are not."""
        out = self.recognize(x)
        H = self.config.n_hidden
        if self.gaussian:
            mu, logvar = out[:, :H], out[:, H:]
            eps = torch.randn((k, *mu.shape), generator=generator, device=x.device)
            h = mu + torch.exp(0.5 * logvar) * eps  # (k, B, H)
            return h, -0.5 * (eps ** 2 + LOG_2PI + logvar).sum(-1)
        u = torch.rand((k, *out.shape), generator=generator, device=x.device)
        h = (u < torch.sigmoid(out)).float()  # (k, B, H)
        return h, bernoulli_log_prob(out, h)

    def log_prior(self, h: torch.Tensor) -> torch.Tensor:
        """log p(h): (..., H) -> (...)."""
        if self.gaussian:
            return -0.5 * (h ** 2 + LOG_2PI).sum(-1)
        return bernoulli_log_prob(self.prior_logits, h)

    def log_joint(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """log p(x, h) = log p(h) + log p(x|h): x (B, D), h (..., B, H) -> (..., B).

        log p(x|h) = x . logits - sum softplus(logits), with x . logits = (x W) . h + x . b computed per image,
        so only the logits and their softplus are (..., B, D) tensors (the IS estimate's cost)."""
        W, b = self.generative.weight, self.generative.bias
        x_dot_logits = (h * (x @ W)).sum(-1) + x @ b  # (..., B)
        return self.log_prior(h) + x_dot_logits - F.softplus(self.pixel_logits(h)).sum(-1)

    def log_q(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """log q(h|x) of given binary codes: x (B, D), h (..., B, H) -> (...,  B) (Bernoulli latents)."""
        return bernoulli_log_prob(self.recognize(x), h)

    def log_weights(self, x: torch.Tensor, k: int, *, generator=None) -> torch.Tensor:
        """log w = log p(x, h) - log q(h|x) for k codes h ~ q(h|x): (B, D) -> (k, B), nats."""
        h, log_q = self.sample_q(x, k, generator=generator)
        return self.log_joint(x, h) - log_q

    @torch.no_grad()
    def dream(self, n: int, *, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The sleep phase's fantasy: h ~ p(h), x ~ p(x|h) (binary pixels): (n, H), (n, D)."""
        H, device = self.config.n_hidden, self.device
        if self.gaussian:
            h = torch.randn(n, H, generator=generator, device=device)
        else:
            h = (torch.rand(n, H, generator=generator, device=device) < torch.sigmoid(self.prior_logits)).float()
        p = torch.sigmoid(self.pixel_logits(h))
        return h, (torch.rand(p.shape, generator=generator, device=device) < p).float()

    # --- bounds and likelihood ----------------------------------------------------------------------
    def elbo(self, x: torch.Tensor, k: int = 1, *, generator=None) -> torch.Tensor:
        """log of the mean of k importance weights per image (B,), nats (k = 1: one-sample ELBO estimate)."""
        return torch.logsumexp(self.log_weights(x, k, generator=generator), 0) - math.log(k)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, *, k: int = 1000, chunk: int = 250, generator=None) -> torch.Tensor:
        """Importance-sampled estimate of log p(x) with k samples from q (a stochastic lower bound): (B,)."""
        parts = [self.log_weights(x, min(chunk, k - i), generator=generator) for i in range(0, k, chunk)]
        return torch.logsumexp(torch.cat(parts), 0) - math.log(k)

    # --- training -----------------------------------------------------------------------------------
    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """The surrogate whose gradient is the family's update (wake-sleep has no single objective):
        ws/rws: -(sum_k w_k log p(x, h_k)) for the generative net, plus -log q(h|x) on dreams (sleep) and, for
        RWS, -(sum_k w_k log q(h_k|x)) (wake); elbo: -ELBO with reparameterized codes."""
        c = self.config
        if c.objective == "elbo":
            elbo = self.log_weights(batch, 1, generator=generator)[0]
            return {"loss": -elbo.mean(), "elbo": elbo.mean().detach()}
        h, log_q = self.sample_q(batch, c.k, generator=generator)
        h = h.detach()
        log_p = self.log_joint(batch, h)  # (k, B)
        log_w = (log_p - log_q).detach()
        weights = torch.softmax(log_w, 0)  # self-normalised importance weights (k = 1: all ones)
        wake_p = (weights * log_p).sum(0).mean()
        loss = -wake_p
        out = {"elbo": log_w.mean().detach(), "wake_log_p": wake_p.detach()}
        if c.objective == "rws":
            wake_q = (weights * self.log_q(batch, h)).sum(0).mean()
            loss = loss - wake_q
            out["wake_log_q"] = wake_q.detach()
        if c.objective == "ws" or c.sleep:
            h_dream, x_dream = self.dream(len(batch), generator=generator)
            sleep_q = self.log_q(x_dream, h_dream).mean()
            loss = loss - sleep_q
            out["sleep_log_q"] = sleep_q.detach()
        return {"loss": loss, **out}

    def make_optimizers(self, *, lr: float = 1e-2, total_steps: int = 0, warmup: int = 0) -> list:
        """One Adam for both nets (the surrogates touch disjoint weights), cosine-decayed over total_steps."""
        return [scheduled_adam(self.parameters(), lr=lr, warmup=warmup, total_steps=total_steps)]

    def train_step(self, batch, optimizers, *, generator=None) -> dict[str, float]:
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        terms = self.loss(batch, generator=generator)
        terms["loss"].backward()
        lr = scheduled_step(opt)
        return {**{k: float(v.detach()) for k, v in terms.items()}, "lr": lr}

    @torch.no_grad()
    def sample(self, n: int, *, generator=None) -> torch.Tensor:
        """n images as pixel probabilities p(x=1|h), h ~ p(h): (n, D)."""
        h, _ = self.dream(n, generator=generator)
        return torch.sigmoid(self.pixel_logits(h))

    # --- monitoring and views -----------------------------------------------------------------------
    @torch.no_grad()
    def monitor(self, x: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Validation curves: the ELBO (mean of 10 one-sample estimates) and the IS estimate with k = 100,
        on the first 500 images of the held-out batch, nats per image."""
        x = x[:MONITOR_IMAGES]
        log_w = self.log_weights(x, MONITOR_K, generator=generator)  # (k, B)
        return {"valid_elbo": float(log_w[:10].mean()),
                "valid_nll_is": float(-(torch.logsumexp(log_w, 0) - math.log(MONITOR_K)).mean())}

    @torch.no_grad()
    def preview(self, n: int = 36) -> np.ndarray:
        """Samples p(x=1|h) from fixed noise (the same every call): numpy (n, H, W)."""
        h, _ = self.dream(n, generator=torch.Generator(device=self.device).manual_seed(0))
        return torch.sigmoid(self.pixel_logits(h)).reshape(n, *self.config.image_shape).cpu().numpy()


@torch.no_grad()
def evaluate(model: HelmholtzMachine, test: torch.Tensor, *, k: int = 1000, seed: int = 0,
             chunk: int = 500, progress=None) -> dict:
    """Test numbers on the given images (the seeded test binarization): the IS estimate of log p(x) with k
    samples from q (mean, its standard error over images), and the ELBO (mean of 10 one-sample estimates per
    image, the first 10 of the same draws), nats per image. `progress(fraction)` is called per chunk."""
    g = torch.Generator(device=model.device).manual_seed(seed)
    log_p, elbo = [], []
    for i in range(0, len(test), chunk):
        x = test[i:i + chunk].to(model.device)
        log_w = torch.cat([model.log_weights(x, min(250, k - j), generator=g) for j in range(0, k, 250)])
        log_p.append((torch.logsumexp(log_w, 0) - math.log(k)).double().cpu())
        elbo.append(log_w[:10].mean(0).double().cpu())
        if progress:
            progress(min(i + chunk, len(test)) / len(test))
    log_p, elbo = torch.cat(log_p), torch.cat(elbo)
    return {"nll_is": -log_p.mean().item(), "nll_is_stderr": (log_p.std() / math.sqrt(len(log_p))).item(),
            "nll_is_k": k, "elbo": elbo.mean().item(), "elbo_stderr": (elbo.std() / math.sqrt(len(elbo))).item(),
            "images": len(log_p), "units": "nats per image"}
