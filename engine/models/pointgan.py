"""A GAN on raw 3-D point clouds: an MLP generator z -> (N, 3) and a PointNet critic, trained as a WGAN-GP.

References:
- Achlioptas, Diamanti, Mitliagkas & Guibas (2018), "Learning Representations and Generative Models for
  3D Point Clouds": the raw point-cloud GAN (r-GAN) with a fully connected generator and a PointNet
  discriminator; of their GANs the Wasserstein GAN with gradient penalty trained most stably. Their
  metrics: coverage (COV-CD) and minimum matching distance (MMD-CD) under the Chamfer distance.
- Qi, Su, Mo & Guibas (2017), "PointNet: Deep Learning on Point Sets for 3D Classification and
  Segmentation": a shared per-point MLP followed by a max over points, so the output does not depend on
  the order of the points.
- Gulrajani et al. (2017), "Improved Training of Wasserstein GANs": the gradient penalty and the
  n_critic = 5, Adam(1e-4, betas (0.5, 0.9)) recipe (loss math in engine.nn.adversarial).

Shapes: z (B, latent) ~ N(0, I); G(z) (B, N, 3) in the units of engine.data.shapes3d; the critic maps
(B, N, 3) to one real score per cloud (B,).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.data import shapes3d
from engine.models.base import Model
from engine.nn import adversarial
from engine.registry import register


POOLS = ("max", "max+mean")


@dataclass(frozen=True)
class PointGANConfig:
    n_points: int = shapes3d.N_POINTS
    latent: int = 32
    generator_hidden: tuple[int, ...] = (128, 256, 512)
    point_features: tuple[int, ...] = (32, 128)  # the critic's shared per-point MLP
    critic_hidden: tuple[int, ...] = (128,)  # the critic's head after the pool
    pool: str = "max+mean"  # "max" (PointNet) or "max+mean" (see PointNetCritic)
    loss: str = "wgan-gp"  # any of engine.nn.adversarial.LOSSES
    n_critic: int = 3  # critic updates per generator update
    gp_weight: float = 10.0
    clip: float = 0.01  # only for loss "wgan-clip"


def _layers(sizes: tuple[int, ...], *, final: bool) -> list[nn.Module]:
    """Linear layers sizes[0] -> ... -> sizes[-1] with LeakyReLU(0.2) between (and after the last if final)."""
    out: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        out.append(nn.Linear(a, b))
        if final or i < len(sizes) - 2:
            out.append(nn.LeakyReLU(0.2))
    return out


class PointNetCritic(nn.Module):
    """Shared per-point MLP, a symmetric pool over points, then an MLP head: (B, N, 3) -> (B,).

    pool "max" is PointNet's; "max+mean" concatenates the mean of the per-point features as well, so every
    point (not only the few that win a max) gets a gradient: the mean part is a kernel mean embedding of
    the cloud's points, as in a kernel two-sample test."""

    def __init__(self, point_features: tuple[int, ...], hidden: tuple[int, ...], pool: str = "max") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; choose from {', '.join(POOLS)}")
        self.pool = pool
        self.per_point = nn.Sequential(*_layers((3, *point_features), final=True))
        width = point_features[-1] * (2 if pool == "max+mean" else 1)
        self.head = nn.Sequential(*_layers((width, *hidden, 1), final=False))

    def forward(self, clouds: torch.Tensor) -> torch.Tensor:
        h = self.per_point(clouds)  # (B, N, F): the same MLP on every point
        pooled = h.max(1).values  # (B, F): order of the points does not matter
        if self.pool == "max+mean":
            pooled = torch.cat([pooled, h.mean(1)], 1)  # (B, 2F)
        return self.head(pooled)[:, 0]  # (B,)


class DecayingAdam(torch.optim.Adam):
    """Adam whose learning rate the Trainer lowers linearly with the fraction of training done:
    lr(p) = lr_0 (1 - (1 - final_fraction) p). Big steps while the shapes form, small ones to settle them."""

    def __init__(self, params, *, lr: float, betas: tuple[float, float], final_fraction: float = 1.0) -> None:
        super().__init__(params, lr=lr, betas=betas)
        for group in self.param_groups:
            group["start_lr"], group["final_fraction"] = lr, final_fraction

    def set_progress(self, fraction: float) -> None:
        for group in self.param_groups:
            group["lr"] = group["start_lr"] * (1 - (1 - group["final_fraction"]) * fraction)


@register("pointgan", PointGANConfig)
class PointGAN(Model):
    """r-GAN of Achlioptas et al.: G is an MLP from z to all N x 3 coordinates at once; D is a PointNet."""

    dataset = "shapes3d"
    presets = {
        # the bundled model: 3 critic steps of 32 clouds per generator step (batch 96 = 3 x 32), Adam at
        # 1e-3 falling linearly to 1e-4 (at 1e-4 throughout, 500 steps gave only blobs); the bundled
        # checkpoint ran 18 epochs, then was resumed to 26 (its card says how)
        "bundled": {"config": {}, "train": {"epochs": 26, "batch_size": 96, "lr": 1e-3, "beta1": 0.5,
                                             "beta2": 0.9, "final_lr_fraction": 0.1}},
        "tiny": {"config": {"n_points": 32, "latent": 4, "generator_hidden": (16,), "point_features": (8,),
                            "critic_hidden": (8,), "n_critic": 2, "pool": "max"},
                 "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3}},
    }

    def __init__(self, config: PointGANConfig) -> None:
        adversarial.is_wasserstein(config.loss)  # raises ValueError on an unknown loss
        super().__init__(config)
        self.generator = nn.Sequential(*_layers((config.latent, *config.generator_hidden, config.n_points * 3),
                                                final=False))
        self.critic = PointNetCritic(config.point_features, config.critic_hidden, config.pool)
        self._spread_initial_points()

    @torch.no_grad()
    def _spread_initial_points(self) -> None:
        """Start G so that different z give clearly different, spread-out clouds: He (Kaiming) initialization
        for the LeakyReLU layers and zero biases, the last layer scaled by 0.5 (points spread about 0.7 per
        coordinate, clouds of different z about 0.5 apart). With PyTorch's default initialization every z
        gave nearly the same cloud (0.03 apart), and training collapsed onto one shape at a time."""
        layers = [m for m in self.generator if isinstance(m, nn.Linear)]
        for layer in layers:
            nn.init.kaiming_normal_(layer.weight, a=0.2, nonlinearity="leaky_relu")
            nn.init.zeros_(layer.bias)
        layers[-1].weight.mul_(0.5)

    # --- generator ------------------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): (B, latent) -> (B, N, 3)."""
        return self.generator(z).reshape(len(z), self.config.n_points, 3)

    def noise(self, n: int, *, generator=None) -> torch.Tensor:
        """z ~ N(0, I): (n, latent)."""
        return torch.randn(n, self.config.latent, generator=generator, device=self.device)

    @torch.no_grad()
    def sample(self, n: int, *, generator=None) -> torch.Tensor:
        """n generated clouds: (n, N, 3)."""
        return self.decode(self.noise(n, generator=generator))

    # --- the game -------------------------------------------------------------------------------
    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """The discriminator's loss on real (B, N, 3) and generated clouds, plus the gradient penalty
        (wgan-gp); "wasserstein" is the critic's estimate E f(real) - E f(fake)."""
        loss = self.config.loss
        real_out, fake_out = self.critic(real), self.critic(fake)
        terms = {"critic_loss": adversarial.discriminator_loss(loss, real_out, fake_out),
                 "wasserstein": (real_out.mean() - fake_out.mean()).detach()}
        total = terms["critic_loss"]
        if loss == "wgan-gp":
            terms["gradient_penalty"] = adversarial.gradient_penalty(self.critic, real, fake, generator=generator)
            total = total + self.config.gp_weight * terms["gradient_penalty"]
        terms["loss"] = total
        return terms

    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """The critic's objective on a batch of real clouds (B, N, 3) against as many generated ones.
        The generated clouds are not detached, so gradients reach both networks."""
        fake = self.decode(self.noise(len(batch), generator=generator))
        terms = self.critic_loss(batch, fake, generator=generator)
        return {k: v if k == "loss" else v.detach() for k, v in terms.items()}

    def make_optimizers(self, **hparams) -> list[torch.optim.Optimizer]:
        """[Adam for G, Adam for the critic], lr 1e-4 and betas (0.5, 0.9) unless told otherwise; with
        `final_lr_fraction` f < 1 the learning rate falls linearly over training to f times its start."""
        lr, betas = hparams.get("lr", 1e-4), (hparams.get("beta1", 0.5), hparams.get("beta2", 0.9))
        final = hparams.get("final_lr_fraction", 1.0)
        return [DecayingAdam(self.generator.parameters(), lr=lr, betas=betas, final_fraction=final),
                DecayingAdam(self.critic.parameters(), lr=lr, betas=betas, final_fraction=final)]

    def train_step(self, batch, optimizers, *, generator=None) -> dict[str, float]:
        """One GAN iteration: the batch (B, N, 3) is split into n_critic parts, one critic update on each
        (against fresh generated clouds), then one generator update on as many clouds as one part."""
        opt_g, opt_d = optimizers
        parts = batch.tensor_split(min(self.config.n_critic, len(batch)))
        for real in parts:
            opt_d.zero_grad(set_to_none=True)
            with torch.no_grad():
                fake = self.decode(self.noise(len(real), generator=generator))
            terms = self.critic_loss(real, fake, generator=generator)
            terms["loss"].backward()
            opt_d.step()
            if self.config.loss == "wgan-clip":
                adversarial.clip_weights(self.critic, self.config.clip)
        opt_g.zero_grad(set_to_none=True)
        self.critic.requires_grad_(False)
        g_loss = adversarial.generator_loss(self.config.loss, self.critic(
            self.decode(self.noise(len(parts[0]), generator=generator))))
        g_loss.backward()
        opt_g.step()
        self.critic.requires_grad_(True)
        out = {k: float(v.detach()) for k, v in terms.items() if k != "loss"}
        return {"loss": float(terms["loss"].detach()), **out, "generator_loss": float(g_loss.detach())}

    # --- monitoring -----------------------------------------------------------------------------
    @torch.no_grad()
    def monitor(self, x: torch.Tensor, *, generator=None) -> dict[str, float]:
        """On held-out real clouds (B, N, 3): the critic's Wasserstein estimate against as many generated
        clouds, and how many of the five shapes 100 generated clouds cover (nearest-template labels)."""
        fake = self.decode(self.noise(len(x), generator=generator))
        labels, _ = shapes3d.classify(fake[:100].cpu())
        return {"valid_wasserstein": float(self.critic(x).mean() - self.critic(fake).mean()),
                "valid_shapes_covered": float(len(set(labels) - {shapes3d.UNCLEAR})),
                "valid_unclear": labels.count(shapes3d.UNCLEAR) / max(len(labels), 1)}

    @torch.no_grad()
    def preview(self, n: int = 8):
        """Clouds from fixed noise (the same every call): numpy (n, N, 3)."""
        z = torch.randn(n, self.config.latent, generator=torch.Generator().manual_seed(0)).to(self.device)
        return self.decode(z).cpu().numpy()


# --- finding latents and evaluating ---------------------------------------------------------------
@torch.no_grad()
def latents_by_shape(model: PointGAN, *, n_candidates: int = 96, seed: int = 0) -> dict[str, dict]:
    """Draw n_candidates noise vectors (seeded) and keep, for each shape, the candidate whose cloud is
    closest to that shape's template among those whose nearest template it is:
    {shape: {"z": (latent,), "distance": float, "clear": bool, "count": int}}. "clear" says the distance is
    within the classifier's bound (else the classifier calls the cloud unclear); "count" is how many
    candidates have that shape as their nearest template. Shapes that are no candidate's nearest are left out."""
    z = torch.randn(n_candidates, model.config.latent, generator=torch.Generator().manual_seed(seed))
    d = shapes3d.template_distances(model.decode(z.to(model.device)).cpu())  # (n, 5)
    nearest = d.argmin(1)
    found = {}
    for k, name in enumerate(shapes3d.SHAPES):
        idx = (nearest == k).nonzero()[:, 0]
        if len(idx):
            best = int(idx[d[idx, k].argmin()])
            found[name] = {"z": z[best], "distance": float(d[best, k]),
                           "clear": float(d[best, k]) <= shapes3d.UNCLEAR_DISTANCE, "count": len(idx)}
    return found


@torch.no_grad()
def evaluate(model: PointGAN, *, n_classify: int = 1000, n_match: int = 200, seed: int = 0) -> dict:
    """Measured quality of a point-cloud GAN against fresh real clouds (all seeded):

    - shapes: nearest-template labels of n_classify generated clouds (fractions per shape, how many of
      the five appear in at least 1% of them, the "unclear" fraction), and the same classifier's accuracy
      on n_classify real clouds;
    - fidelity: mean Chamfer distance from each of n_match generated clouds to its nearest cloud in a
      reference set of n_match real clouds, against the same from n_match other real clouds (the floor);
    - Achlioptas et al.'s COV-CD (fraction of reference clouds that are some generated cloud's nearest
      neighbour) and MMD-CD (mean over reference clouds of the distance to the nearest generated one),
      with the same numbers for the other real clouds."""
    g = torch.Generator().manual_seed(seed)
    n = model.config.n_points
    fake = model.decode(torch.randn(max(n_classify, n_match), model.config.latent, generator=g).to(model.device)).cpu()
    real, real_labels = shapes3d.dataset(n_classify, n_points=n, seed=seed + 1)
    labels, dist = shapes3d.classify(fake[:n_classify])
    real_pred, real_dist = shapes3d.classify(real)
    fractions = {s: labels.count(s) / len(labels) for s in (*shapes3d.SHAPES, shapes3d.UNCLEAR)}
    reference, _ = shapes3d.dataset(n_match, n_points=n, seed=seed + 2)
    other, _ = shapes3d.dataset(n_match, n_points=n, seed=seed + 3)
    d_fake = shapes3d.pairwise_chamfer(fake[:n_match], reference)  # (G, R)
    d_real = shapes3d.pairwise_chamfer(other, reference)
    return {
        "shapes": {"fractions": fractions, "covered": sum(fractions[s] >= 0.01 for s in shapes3d.SHAPES),
                   "of": len(shapes3d.SHAPES), "unclear": fractions[shapes3d.UNCLEAR],
                   "mean_template_distance": float(dist.mean()), "real_mean_template_distance": float(real_dist.mean()),
                   "classifier_accuracy_on_real": sum(p == shapes3d.SHAPES[int(k)] for p, k in zip(real_pred, real_labels))
                   / len(real_pred), "clouds": n_classify},
        "chamfer": {"generated_to_nearest_real": float(d_fake.min(1).values.mean()),
                    "real_to_nearest_real": float(d_real.min(1).values.mean()),
                    "cov_generated": _coverage(d_fake), "cov_real": _coverage(d_real),
                    "mmd_generated": float(d_fake.min(0).values.mean()), "mmd_real": float(d_real.min(0).values.mean()),
                    "clouds": n_match},
        "units": "Chamfer distance: mean squared nearest-neighbour distance both ways, in the data's units "
                 "(shapes about 1.8 across); template distances on clouds normalized to unit RMS radius",
    }


def _coverage(d: torch.Tensor) -> float:
    """Fraction of reference clouds (columns) that are the nearest neighbour of at least one row."""
    return len(set(d.argmin(1).tolist())) / d.shape[1]
