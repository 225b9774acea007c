"""A GAN on points in the plane: the 2-D lab's model, small enough to train live and to look inside.

References:
- Goodfellow et al. 2014, "Generative Adversarial Nets": the minimax game, the non-saturating loss.
- Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN": the critic, weight clipping, RMSprop, n_critic = 5.
- Gulrajani et al. 2017, "Improved Training of Wasserstein GANs": the gradient penalty, Adam with
  betas (0.5, 0.9), and the toy experiments this lab follows (8 Gaussians, 25 Gaussians, ReLU MLPs,
  penalty weight 0.1 on 2-D data).
- Metz et al. 2017, "Unrolled Generative Adversarial Networks": mode collapse on the ring of 8 Gaussians.

G: noise z ~ N(0, I_d) (B, d) -> point x (B, 2). D: point (B, 2) -> a logit (minimax, non-saturating) or a
critic score (wgan-clip, wgan-gp). The losses come from engine.nn.adversarial; this file arranges the
alternating updates and the views: D over the plane, G's image of a noise grid, and -d(G's loss)/dx.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from engine.models.base import Model
from engine.nn import adversarial as adv
from engine.nn.mlp import ACTIVATIONS, mlp
from engine.registry import register

BETAS = (0.5, 0.9)  # Adam's betas for both players (Gulrajani et al.)


@dataclass(frozen=True)
class GAN2DConfig:
    noise_dim: int = 2
    g_hidden: tuple[int, ...] = (128, 128, 128)
    d_hidden: tuple[int, ...] = (128, 128, 128)
    activation: str = "relu"
    loss: str = "wgan-gp"  # one of engine.nn.adversarial.LOSSES
    g_lr: float = 1e-3
    d_lr: float = 1e-3
    d_steps: int = 5  # discriminator (critic) updates per generator update
    clip: float = 0.01  # wgan-clip: critic weights clamped to [-clip, clip]
    gp_weight: float = 0.1  # wgan-gp: lambda

    def __post_init__(self) -> None:
        if self.noise_dim < 1 or self.d_steps < 1:
            raise ValueError(f"noise_dim and d_steps must be at least 1, got {self.noise_dim}, {self.d_steps}")
        if any(h < 1 for h in (*self.g_hidden, *self.d_hidden)):
            raise ValueError(f"hidden widths must be positive, got {self.g_hidden} and {self.d_hidden}")
        if self.loss not in adv.LOSSES or self.activation not in ACTIVATIONS:
            raise ValueError(f"loss must be one of {adv.LOSSES} and activation one of {tuple(ACTIVATIONS)}")
        if min(self.g_lr, self.d_lr, self.clip) <= 0 or self.gp_weight < 0:
            raise ValueError("learning rates and the clip value must be positive, the penalty weight >= 0")


def _recipe(loss: str, d_steps: int, lr: float, **config) -> dict:
    return {"config": {"loss": loss, "d_steps": d_steps, "g_lr": lr, "d_lr": lr, **config},
            "train": {"batch_size": 256}}


@register("gan2d", GAN2DConfig)
class GAN2D(Model):
    """Generator and discriminator MLPs on 2-D points, trained by alternating updates."""

    presets = {
        "wgan-gp": _recipe("wgan-gp", 5, 1e-3),
        "non-saturating": _recipe("non-saturating", 1, 1e-3),
        "tiny": _recipe("wgan-gp", 2, 1e-3, g_hidden=(8,), d_hidden=(8,)),
    }

    def __init__(self, config: GAN2DConfig) -> None:
        super().__init__(config)
        act = config.activation
        self.g_net = mlp((config.noise_dim, *config.g_hidden, 2), activation=act)
        self.d_net = mlp((2, *config.d_hidden, 1), activation=act)

    @property
    def wasserstein(self) -> bool:
        return adv.is_wasserstein(self.config.loss)

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """PyTorch's default Linear initialisation, drawn from `generator` (same seed, same networks)."""
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)

    # --- the two players ------------------------------------------------------------------------
    def noise(self, n: int, *, generator=None) -> torch.Tensor:
        """z ~ N(0, I): (n, noise_dim)."""
        return torch.randn(n, self.config.noise_dim, generator=generator, device=self.device)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): (B, noise_dim) -> (B, 2)."""
        return self.g_net(z)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """D's raw output, a logit or a critic score: (B, 2) -> (B,)."""
        return self.d_net(x).squeeze(-1)

    def d_terms(self, real: torch.Tensor, fake: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """D's loss (with the gradient penalty for wgan-gp) and what it reports; real, fake (B, 2)."""
        loss, out_real, out_fake = self.config.loss, self.critic(real), self.critic(fake)
        d_loss = adv.discriminator_loss(loss, out_real, out_fake)
        terms = {"d_loss": d_loss, "gap": out_real.mean() - out_fake.mean()}  # gap: wgan's W estimate
        if loss == "wgan-gp":
            terms["penalty"] = adv.gradient_penalty(self.critic, real, fake, generator=generator)
            terms["d_loss"] = d_loss + self.config.gp_weight * terms["penalty"]
        if not self.wasserstein:
            terms["d_real"], terms["d_fake"] = out_real.sigmoid().mean(), out_fake.sigmoid().mean()
        return terms

    def step_discriminator(self, real: torch.Tensor, optimizer, *, generator=None) -> dict[str, float]:
        """One update of D on a real batch (B, 2) against as many fresh generated points; G is not changed."""
        with torch.no_grad():
            fake = self.generate(self.noise(len(real), generator=generator))
        optimizer.zero_grad(set_to_none=True)
        terms = self.d_terms(real, fake, generator=generator)
        terms["d_loss"].backward()
        optimizer.step()
        if self.config.loss == "wgan-clip":
            adv.clip_weights(self.d_net, self.config.clip)
        return {k: float(v.detach()) for k, v in terms.items()}

    def step_generator(self, n: int, optimizer, *, generator=None) -> dict[str, float]:
        """One update of G on n fresh noise vectors against the current D; D's weights are not changed."""
        optimizer.zero_grad(set_to_none=True)
        g_loss = adv.generator_loss(self.config.loss, self.critic(self.generate(self.noise(n, generator=generator))))
        g_loss.backward()
        optimizer.step()
        return {"g_loss": float(g_loss.detach())}

    # --- the model contract ---------------------------------------------------------------------
    def make_optimizers(self, **hparams) -> list[torch.optim.Optimizer]:
        """[D's optimizer, G's optimizer]: RMSprop for wgan-clip (Arjovsky et al.), else Adam(0.5, 0.9).

        hparams may override the config's d_lr and g_lr."""
        d_lr, g_lr = hparams.get("d_lr", self.config.d_lr), hparams.get("g_lr", self.config.g_lr)
        if self.config.loss == "wgan-clip":
            return [torch.optim.RMSprop(self.d_net.parameters(), lr=d_lr),
                    torch.optim.RMSprop(self.g_net.parameters(), lr=g_lr)]
        return [torch.optim.Adam(self.d_net.parameters(), lr=d_lr, betas=BETAS),
                torch.optim.Adam(self.g_net.parameters(), lr=g_lr, betas=BETAS)]

    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """D's loss on a real batch (B, 2) and as many generated points, with gradients reaching both
        players (through the generated points), plus G's loss for the record. Training uses train_step."""
        fake = self.generate(self.noise(len(batch), generator=generator))
        terms = self.d_terms(batch, fake, generator=generator)
        g_loss = adv.generator_loss(self.config.loss, self.critic(fake))
        return {"loss": terms.pop("d_loss"), "g_loss": g_loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    def train_step(self, batch, optimizers, *, generator=None, d_steps: int | None = None) -> dict[str, float]:
        """config.d_steps (or `d_steps`) updates of D on `batch`, then one update of G."""
        opt_d, opt_g = optimizers
        for _ in range(d_steps or self.config.d_steps):
            d = self.step_discriminator(batch, opt_d, generator=generator)
        return {**d, **self.step_generator(len(batch), opt_g, generator=generator)}

    @torch.no_grad()
    def sample(self, n: int, *, generator=None) -> torch.Tensor:
        """n generated points: (n, 2)."""
        return self.generate(self.noise(n, generator=generator))

    # --- what the lab draws ---------------------------------------------------------------------
    @torch.no_grad()
    def value_map(self, extent: float, resolution: int) -> torch.Tensor:
        """D(x) in [0, 1] (or the critic f(x)) on a resolution^2 grid over [-extent, extent]^2: (R, R),
        rows from y = -extent up, columns from x = -extent right."""
        r = torch.linspace(-extent, extent, resolution, device=self.device)
        yy, xx = torch.meshgrid(r, r, indexing="ij")
        grid = torch.stack([xx, yy], -1).reshape(-1, 2)
        return adv.discriminator_value(self.config.loss, self.critic(grid)).reshape(resolution, resolution)

    @torch.no_grad()
    def manifold(self, lines: int = 15, points: int = 60, span: float = 2.5) -> torch.Tensor:
        """G's image of a grid of lines in noise space: (2 * lines, points, 2) polylines in the plane.

        The grid spans [-span, span] in z1 and z2 (the first `lines` rows hold z2 fixed, the rest z1);
        other noise coordinates are 0, so for noise_dim > 2 this is the slice through the origin. With
        1-D noise G's image is one curve, returned as (1, points, 2)."""
        t = torch.linspace(-span, span, points, device=self.device)
        if self.config.noise_dim == 1:
            return self.generate(t[:, None])[None]
        levels = torch.linspace(-span, span, lines, device=self.device)
        a, b = levels[:, None].expand(lines, points), t[None].expand(lines, points)
        rows = torch.stack([b, a], -1)  # z2 fixed per line, z1 varies
        z = torch.zeros(2 * lines, points, self.config.noise_dim, device=self.device)
        z[..., :2] = torch.cat([rows, rows.flip(-1)])
        return self.generate(z)

    def generator_gradients(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Generated points x = G(z) (N, 2) and -d(G's loss)/dx at each (N, 2): where G's update pushes
        each point (per point, not divided by the batch size)."""
        x = self.generate(z).detach().requires_grad_(True)
        loss = adv.generator_loss(self.config.loss, self.critic(x)) * len(x)
        (grad,) = torch.autograd.grad(loss, x)
        return x.detach(), -grad
