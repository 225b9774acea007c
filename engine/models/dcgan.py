"""A small DCGAN for 28x28 MNIST, trained with any loss of engine.nn.adversarial.

References:
- Goodfellow et al. (2014), "Generative Adversarial Nets": the game and the non-saturating loss.
- Radford, Metz & Chintala (2016), "Unsupervised Representation Learning with Deep Convolutional
  Generative Adversarial Networks" (DCGAN): strided (transposed) convolutions, BatchNorm in the
  generator, LeakyReLU(0.2) in the discriminator, Adam with lr 2e-4 and beta1 = 0.5.
- Arjovsky, Chintala & Bottou (2017), "Wasserstein GAN".
- Gulrajani et al. (2017), "Improved Training of Wasserstein GANs" (WGAN-GP): no BatchNorm in the
  critic (the penalty is per example; layer norm or none instead), lambda = 10, five critic steps per
  generator step, Adam with lr 1e-4 and betas (0, 0.9) or (0.5, 0.9).

Generator G: z (B, latent) ~ N(0, I) -> linear -> (B, 2w, 7, 7) -> transposed conv -> (B, w, 14, 14)
-> transposed conv -> (B, 1, 28, 28) -> (tanh + 1) / 2, grey levels in [0, 1].
Discriminator / critic D: image in [0, 1] -> 2x - 1 -> conv (B, w, 14, 14) -> conv (B, 2w, 7, 7)
-> linear -> (B,) logit (classic losses) or critic score (Wasserstein losses).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import Model
from engine.nn import adversarial
from engine.registry import register

PREVIEW_SEED = 0  # the fixed noise batch behind the snapshots and the page's grid
PREVIEW_SIZE = 64


@dataclass(frozen=True)
class DCGANConfig:
    latent: int = 64
    g_width: int = 32  # w: the generator has 2w channels at 7x7 and w at 14x14
    d_width: int = 32  # the critic has w channels at 14x14 and 2w at 7x7
    loss: str = "non-saturating"  # one of engine.nn.adversarial.LOSSES
    critic_norm: str = "none"  # "none" or "layer" (never BatchNorm: WGAN-GP's penalty is per example)
    n_critic: int = 1  # critic steps per generator step
    gp_weight: float = 10.0  # lambda of the gradient penalty (wgan-gp)
    clip: float = 0.01  # weight clipping bound (wgan-clip)
    n_visible: int = 784
    image_shape: tuple[int, int] = (28, 28)


class BatchNorm(nn.Module):
    """Batch normalization over dim 1 of (B, C) or (B, C, H, W) with running statistics for eval mode
    (Ioffe & Szegedy 2015); nn.BatchNorm's integer batch counter is left out, so every stored tensor is
    a float. momentum: weight of the current batch in the running averages."""

    def __init__(self, channels: int, *, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps)


class Generator(nn.Module):
    """z (B, latent) -> images (B, 1, 28, 28) in [0, 1]."""

    def __init__(self, latent: int, w: int) -> None:
        super().__init__()
        self.w = w
        self.fc = nn.Sequential(nn.Linear(latent, 2 * w * 49, bias=False), BatchNorm(2 * w * 49), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), BatchNorm(w), nn.ReLU(),  # (B, w, 14, 14)
            nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())  # (B, 1, 28, 28)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, 2 * self.w, 7, 7)  # (B, 2w, 7, 7)
        return (self.up(h) + 1) / 2


class Critic(nn.Module):
    """Images (B, 784) or (B, 1, 28, 28) in [0, 1] -> (B,) logit or critic score."""

    def __init__(self, w: int, norm: str) -> None:
        super().__init__()
        if norm not in ("none", "layer"):
            raise ValueError(f"critic_norm must be 'none' or 'layer', got {norm!r}")
        normed = nn.GroupNorm(1, 2 * w) if norm == "layer" else nn.Identity()  # GroupNorm(1, C): layer norm over C, H, W
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 4, 2, 1), normed, nn.LeakyReLU(0.2),  # (B, 2w, 7, 7)
            nn.Flatten(), nn.Linear(2 * w * 49, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(2 * x.reshape(-1, 1, 28, 28) - 1).squeeze(1)


def _train(epochs: int, lr_g: float, lr_d: float, betas: tuple[float, float], batch_size: int = 64) -> dict:
    return {"epochs": epochs, "batch_size": batch_size, "lr_g": lr_g, "lr_d": lr_d,
            "beta1": betas[0], "beta2": betas[1]}


@register("dcgan", DCGANConfig)
class DCGAN(Model):
    """Generator and discriminator (critic) in one module; `sample` runs the generator only."""

    dataset = "mnist-grey"
    records_snapshots = True  # the CLI saves the fixed-noise grid during training (engine/snapshots.py)
    presets = {
        "dcgan": {"config": {"loss": "non-saturating"}, "train": _train(12, 2e-4, 2e-4, (0.5, 0.999))},
        "wgan-gp": {"config": {"loss": "wgan-gp", "critic_norm": "layer", "n_critic": 5},
                    "train": _train(8, 2e-4, 2e-4, (0.5, 0.9), batch_size=32)},
        "tiny": {"config": {"latent": 4, "g_width": 4, "d_width": 4, "loss": "wgan-gp", "n_critic": 2},
                 "train": _train(1, 2e-4, 2e-4, (0.5, 0.9), batch_size=16)},
    }

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config)
        adversarial.is_wasserstein(config.loss)  # raises ValueError on an unknown loss
        if config.n_critic < 1:
            raise ValueError(f"n_critic must be at least 1, got {config.n_critic}")
        self.generator = Generator(config.latent, config.g_width)
        self.critic = Critic(config.d_width, config.critic_norm)
        self.critic_steps = 0  # counts train_step calls; the generator steps on every n_critic-th

    # --- generator ------------------------------------------------------------------------------
    def noise(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I): (n, latent), drawn on the generator's device (the CPU without one), then moved."""
        device = generator.device if generator is not None else "cpu"
        return torch.randn(n, self.config.latent, generator=generator, device=device).to(self.device)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): (B, latent) -> (B, 784) grey levels in [0, 1] (BatchNorm as in the current mode)."""
        return self.generator(z.to(self.device)).flatten(1)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, 784) in [0, 1] from G in eval mode (BatchNorm with its running statistics)."""
        was_training = self.training
        self.eval()
        x = self.decode(self.noise(n, generator=generator))
        self.train(was_training)
        return x

    # --- losses ---------------------------------------------------------------------------------
    def critic_terms(self, real: torch.Tensor, fake: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """The critic's loss on a real (B, 784) and a generated (B, 784) batch, with the penalty for
        wgan-gp; also the critic's Wasserstein estimate E f(x) - E f(G(z)) (or, for the classic losses,
        the mean D(x) and D(G(z)))."""
        cfg = self.config
        real_out, fake_out = self.critic(real), self.critic(fake)
        d_loss = adversarial.discriminator_loss(cfg.loss, real_out, fake_out)
        gp = (adversarial.gradient_penalty(self.critic, real, fake, generator=generator)
              if cfg.loss == "wgan-gp" else torch.zeros((), device=real.device))
        value = lambda out: adversarial.discriminator_value(cfg.loss, out).mean()  # noqa: E731
        return {"loss": d_loss + cfg.gp_weight * gp, "d_loss": d_loss, "gp": gp,
                "g_loss": adversarial.generator_loss(cfg.loss, fake_out),
                "wasserstein": real_out.mean() - fake_out.mean(), "d_real": value(real_out), "d_fake": value(fake_out)}

    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """The critic's objective on `batch` against a fresh generated batch, with G in the graph (so
        both networks get gradients; train_step detaches G for the critic's update)."""
        fake = self.decode(self.noise(len(batch), generator=generator))
        return self.critic_terms(batch, fake, generator=generator)

    def make_optimizers(self, **hp) -> list[torch.optim.Optimizer]:
        """[generator's Adam, critic's Adam] with lr_g, lr_d and betas (beta1, beta2)."""
        betas = (hp.get("beta1", 0.5), hp.get("beta2", 0.999))
        return [torch.optim.Adam(self.generator.parameters(), lr=hp.get("lr_g", hp.get("lr", 2e-4)), betas=betas),
                torch.optim.Adam(self.critic.parameters(), lr=hp.get("lr_d", hp.get("lr", 2e-4)), betas=betas)]

    def train_step(self, batch, optimizers, *, generator=None) -> dict[str, float]:
        """One critic step on `batch`; every n_critic-th call also one generator step on fresh noise."""
        opt_g, opt_d = optimizers
        with torch.no_grad():
            fake = self.decode(self.noise(len(batch), generator=generator))
        terms = self.critic_terms(batch, fake, generator=generator)
        opt_d.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt_d.step()
        if self.config.loss == "wgan-clip":
            adversarial.clip_weights(self.critic, self.config.clip)
        self.critic_steps += 1
        if self.critic_steps % self.config.n_critic == 0:
            out = self.critic(self.decode(self.noise(len(batch), generator=generator)))
            g_loss = adversarial.generator_loss(self.config.loss, out)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
        return {k: float(v.detach()) for k, v in terms.items()}

    # --- snapshots ------------------------------------------------------------------------------
    @torch.no_grad()
    def preview(self, n: int = PREVIEW_SIZE):
        """G on the fixed noise batch (seed PREVIEW_SEED), eval mode: numpy (n, 28, 28) in [0, 1]."""
        images = self.sample(n, generator=torch.Generator().manual_seed(PREVIEW_SEED))
        return images.reshape(n, *self.config.image_shape).cpu().numpy()

    @torch.no_grad()
    def recalibrate(self, n_batches: int = 50, batch_size: int = 256, *, seed: int = 0) -> None:
        """Re-estimate the generator's BatchNorm running statistics as plain averages over fresh noise
        batches, so eval-mode samples match what G produces in training mode at its final weights."""
        g = torch.Generator().manual_seed(seed)
        bns = [m for m in self.generator.modules() if isinstance(m, BatchNorm)]
        self.generator.train()
        for i in range(n_batches):
            for m in bns:
                m.momentum = 1 / (i + 1)  # running average = mean over the batches so far
            self.generator(self.noise(batch_size, generator=g))
        for m in bns:
            m.momentum = 0.1
        self.eval()
