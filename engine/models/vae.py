"""Variational autoencoder (VAE) and importance-weighted autoencoder (IWAE) with Bernoulli pixels.

References:
- Kingma & Welling (2014), "Auto-Encoding Variational Bayes".
- Rezende, Mohamed & Wierstra (2014), "Stochastic Backpropagation and Approximate Inference in Deep
  Generative Models".
- Burda, Grosse & Salakhutdinov (2016), "Importance Weighted Autoencoders": the bound L_k, the
  784-200-200-50 tanh architecture, active units, and NLL estimated with k = 5000.

p(z) = N(0, I), p(x|z) = Bernoulli(sigmoid(decoder(z))), q(z|x) = N(mu(x), diag(exp(logvar(x)))).
log w = log p(x|z) + log p(z) - log q(z|x) with z ~ q(z|x); L_k = E[log (1/k) sum_i w_i] (k = 1: the
ELBO). The same class trains as a VAE (k = 1) or an IWAE (k > 1). All values are in nats per image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import Model
from engine.nn.mlp import mlp
from engine.registry import register

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class VAEConfig:
    n_visible: int = 784
    hidden: tuple[int, ...] = (200, 200)
    latent: int = 50
    k: int = 1  # samples in the training objective: 1 = ELBO (VAE), > 1 = L_k (IWAE)
    image_shape: tuple[int, int] = (28, 28)


def _train(epochs: int) -> dict:
    return {"epochs": epochs, "batch_size": 100, "lr": 1e-3}


@register("vae", VAEConfig)
class VAE(Model):
    """Gaussian encoder q(z|x), Bernoulli decoder p(x|z), standard normal prior."""

    # The bundled checkpoints: the VAE for the likelihood target (150 epochs), the same-budget comparison
    # of k = 1, 5, 50 (30 epochs each), and the 2-D / 20-D models behind the latent views.
    presets = {
        "vae": {"config": {"latent": 50, "k": 1}, "train": _train(150)},
        "vae-e30": {"config": {"latent": 50, "k": 1}, "train": _train(30)},
        "iwae5": {"config": {"latent": 50, "k": 5}, "train": _train(30)},
        "iwae50": {"config": {"latent": 50, "k": 50}, "train": _train(30)},
        "latent2": {"config": {"hidden": (500, 500), "latent": 2}, "train": _train(60)},
        "latent20": {"config": {"hidden": (500, 500), "latent": 20}, "train": _train(30)},
        "tiny": {"config": {"hidden": (16,), "latent": 2}, "train": _train(1)},
    }

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        h = config.hidden
        self.encoder = mlp((config.n_visible, *h), activation="tanh", final="tanh")
        self.to_mu = nn.Linear(h[-1], config.latent)
        self.to_logvar = nn.Linear(h[-1], config.latent)
        self.decoder = mlp((config.latent, *reversed(h), config.n_visible), activation="tanh")  # logits

    # --- encoder and decoder ------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): (B, D) -> mean (B, d) and log-variance (B, d)."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities p(x=1|z): (..., d) -> (..., D)."""
        return torch.sigmoid(self.decoder(z))

    def log_weights(self, x: torch.Tensor, k: int, *, generator=None) -> torch.Tensor:
        """log w_i = log p(x, z_i) - log q(z_i|x) for k reparameterised samples z_i ~ q(z|x): (B, D) -> (k, B)."""
        mu, logvar = self.encode(x)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn((k, *mu.shape), generator=generator, device=x.device)
        z = mu + std * eps  # (k, B, d)
        logits = self.decoder(z)  # (k, B, D)
        log_px_z = (logits * x).sum(-1) - F.softplus(logits).sum(-1)  # Bernoulli log-likelihood, (k, B)
        log_pz = -0.5 * (z ** 2 + LOG_2PI).sum(-1)
        log_qz = -0.5 * (eps ** 2 + LOG_2PI + logvar).sum(-1)
        return log_px_z + log_pz - log_qz

    # --- bounds and likelihood ----------------------------------------------------------------
    def elbo(self, x: torch.Tensor, k: int = 1, *, generator=None) -> torch.Tensor:
        """L_k per image (B,), nats: log of the mean of k importance weights (k = 1: the ELBO)."""
        return torch.logsumexp(self.log_weights(x, k, generator=generator), 0) - math.log(k)

    def elbo_terms(self, x: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """The ELBO split as on the slide: E_q[log p(x|z)] (one sample) and KL(q(z|x) || p(z)) (exact). (B,) each."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=x.device)
        recon = -F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(-1)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)
        return {"reconstruction": recon, "kl": kl, "elbo": recon - kl}

    @torch.no_grad()
    def bound_estimates(self, x: torch.Tensor, k: int, repeats: int, *, generator=None,
                        max_rows: int = 20_000) -> torch.Tensor:
        """`repeats` independent estimates of L_k for each image: (B, D) -> (repeats, B), nats.

        Samples are drawn in groups of at most `max_rows` (k x B x group) so memory stays small."""
        group = max(1, max_rows // (k * len(x)))
        out = []
        for start in range(0, repeats, group):
            n = min(group, repeats - start)
            log_w = self.log_weights(x, k * n, generator=generator).reshape(n, k, len(x))
            out.append(torch.logsumexp(log_w, 1) - math.log(k))
        return torch.cat(out)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, *, k: int = 5000, chunk: int = 500, generator=None) -> torch.Tensor:
        """Importance-sampled estimate of log p(x) with k samples from q (a stochastic lower bound, L_k). (B,)"""
        parts = [self.log_weights(x, min(chunk, k - i), generator=generator) for i in range(0, k, chunk)]
        return torch.logsumexp(torch.cat(parts), 0) - math.log(k)

    # --- the model contract -------------------------------------------------------------------
    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """-ELBO (k = 1, with the exact KL) or -L_k (k > 1), averaged over the batch."""
        if self.config.k == 1:
            terms = self.elbo_terms(batch, generator=generator)
            return {"loss": -terms["elbo"].mean(), "elbo": terms["elbo"].mean().detach(),
                    "reconstruction": terms["reconstruction"].mean().detach(), "kl": terms["kl"].mean().detach()}
        bound = self.elbo(batch, self.config.k, generator=generator).mean()
        return {"loss": -bound, f"iwae_{self.config.k}_bound": bound.detach()}

    def train_step(self, batch, optimizers, *, generator=None) -> dict[str, float]:
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        terms = self.loss(batch, generator=generator)
        terms["loss"].backward()
        opt.step()
        return {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def sample(self, n: int, *, generator=None) -> torch.Tensor:
        """n images as pixel probabilities p(x=1|z), z ~ N(0, I): (n, D)."""
        z = torch.randn(n, self.config.latent, generator=generator, device=self.device)
        return self.decode(z)

    # --- monitoring and views -----------------------------------------------------------------
    @torch.no_grad()
    def monitor(self, x: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Held-out ELBO and its two terms (nats per image) on a validation batch."""
        terms = self.elbo_terms(x, generator=generator)
        return {f"valid_{name}": float(v.mean()) for name, v in terms.items()}

    @torch.no_grad()
    def preview(self, n: int = 36):
        """Samples from fixed latent codes (the same every call, so training progress shows): numpy (n, H, W)."""
        z = torch.randn(n, self.config.latent, generator=torch.Generator().manual_seed(0)).to(self.device)
        return self.decode(z).reshape(n, *self.config.image_shape).cpu().numpy()

    @torch.no_grad()
    def active_units(self, x: torch.Tensor, threshold: float = 1e-2) -> int:
        """Burda et al.'s activity: unit u is active when Cov_x(E_q[z_u|x]) > threshold. x: (N, D)."""
        mu, _ = self.encode(x)
        return int((mu.var(0) > threshold).sum())


def latent_path(z0: torch.Tensor, z1: torch.Tensor, steps: int, *, kind: str = "linear") -> torch.Tensor:
    """Codes from z0 to z1 (each (d,)) in `steps` points: (steps, d).

    "linear": (1 - t) z0 + t z1. "spherical" (slerp, White 2016): along the great circle, scaling the
    norm linearly, which keeps intermediate codes at a typical distance from the origin under N(0, I)."""
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device)[:, None]
    if kind == "linear":
        return (1 - t) * z0 + t * z1
    if kind != "spherical":
        raise ValueError(f"unknown interpolation {kind!r}; use 'linear' or 'spherical'")
    n0, n1 = z0.norm(), z1.norm()
    u0, u1 = z0 / n0, z1 / n1
    omega = torch.arccos((u0 @ u1).clamp(-1 + 1e-7, 1 - 1e-7))
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return direction * ((1 - t) * n0 + t * n1)
