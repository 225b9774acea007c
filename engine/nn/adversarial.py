"""The adversarial losses shared by every GAN in the engine (2-D lab, MNIST, point clouds).

References:
- Goodfellow et al. 2014, "Generative Adversarial Nets": the minimax game and the non-saturating
  generator loss -log D(G(z)).
- Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN": a critic f with E f(x) - E f(G(z)), kept
  Lipschitz by clipping its weights to [-c, c].
- Gulrajani et al. 2017, "Improved Training of Wasserstein GANs": the gradient penalty
  lambda * E (||grad f(x_hat)||_2 - 1)^2 on random points x_hat between real and generated samples.

The discriminator outputs a logit l (D(x) = sigmoid(l)) for the two classic losses and a real-valued
critic score for the two Wasserstein losses. Every loss is a mean over the batch, to be minimized.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("minimax", "non-saturating", "wgan-clip", "wgan-gp")
LABELS = {"minimax": "Original minimax", "non-saturating": "Non-saturating",
          "wgan-clip": "WGAN (weight clipping)", "wgan-gp": "WGAN-GP (gradient penalty)"}


def is_wasserstein(loss: str) -> bool:
    _check(loss)
    return loss.startswith("wgan")


def discriminator_loss(loss: str, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """The discriminator's (critic's) loss on its outputs for real (B,) and generated (B,) samples.

    minimax / non-saturating: -E log D(x) - E log(1 - D(G(z))) = E softplus(-l_real) + E softplus(l_fake).
    wgan-*: E f(G(z)) - E f(x), the negative of the critic's Wasserstein estimate (penalty added apart)."""
    if is_wasserstein(loss):
        return fake_out.mean() - real_out.mean()
    return F.softplus(-real_out).mean() + F.softplus(fake_out).mean()


def generator_loss(loss: str, fake_out: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the discriminator's outputs for generated samples (B,).

    minimax: E log(1 - D(G(z))) = -E softplus(l), which saturates where D rejects the fakes;
    non-saturating: -E log D(G(z)) = E softplus(-l); wgan-*: -E f(G(z))."""
    if is_wasserstein(loss):
        return -fake_out.mean()
    if loss == "minimax":
        return -F.softplus(fake_out).mean()
    return F.softplus(-fake_out).mean()


def discriminator_value(loss: str, out: torch.Tensor) -> torch.Tensor:
    """What the views draw: D(x) = sigmoid(l) in [0, 1] for the classic losses, the critic f(x) otherwise."""
    return out if is_wasserstein(loss) else torch.sigmoid(out)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E (||grad_x f(x_hat)||_2 - 1)^2 with x_hat = e real + (1 - e) fake, e ~ U(0, 1) per example.

    real, fake: (B, ...) of the same shape; the graph is kept so the penalty trains the critic."""
    e = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator, device=real.device)
    x_hat = (e * real.detach() + (1 - e) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


@torch.no_grad()
def clip_weights(critic: nn.Module, c: float) -> None:
    """WGAN's crude Lipschitz constraint: every parameter of the critic clamped to [-c, c] in place."""
    for p in critic.parameters():
        p.clamp_(-c, c)


def _check(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"unknown GAN loss {loss!r}; choose from {', '.join(LOSSES)}")
