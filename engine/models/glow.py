"""A multi-scale Glow on 8-bit MNIST: exact log-likelihood of dequantized digits, sampling with a
temperature, and exact encode/decode to a latent per level.

References:
- Kingma & Dhariwal (2018), "Glow: Generative Flow with Invertible 1x1 Convolutions", NeurIPS (the step
  actnorm -> invertible 1x1 conv -> affine coupling, the learned split prior, temperature sampling).
- Dinh, Sohl-Dickstein & Bengio (2017), "Density estimation using Real NVP", ICLR (multi-scale
  architecture, uniform dequantization, the logit transform and its place in the bits/dim).
- Theis, van den Oord & Bethge (2016), "A note on the evaluation of generative models", ICLR (the
  dequantized density bounds the 8-bit likelihood: log P(k) >= E_u log p((k + u)/256) - D log 256).

Data: MNIST grey levels are stored exactly as k/256, k in 0..255 (checked: 256 x is an integer for
every pixel of every split). An image x becomes k = round(256 x) (clamped to 255, so a binary 1.0 is
k = 255), then y = (k + u)/256, u ~ U[0, 1) (dequantization), then v = logit(alpha + (1 - 2 alpha) y),
then the flow to standard normal latents. log p(x) in nats per image =
    log N(eps) + priors' log-det  ("prior": the learned conditional priors of the splits)
  + log-det of actnorm, 1x1 convs and couplings  ("flow")
  + log-det of the logit transform  ("logit")
  - D log 256  (the 8-bit bin width: from the density on [0, 1]^D to the probability of the bin).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.data import mnist
from engine.models.base import Model
from engine.optim import scheduled_adam, scheduled_step
from engine.nn.glow import Coupling, Logit, MultiScale
from engine.registry import register

DEQUANTIZATION_SEED = 0  # the fixed u of every reported test bits/dim and of log_prob without a generator
LEVELS = 256  # grey levels of the 8-bit images


@dataclass(frozen=True)
class GlowConfig:
    image_shape: tuple[int, int] = (28, 28)  # (H, W), one grey channel; each side divisible by 2^levels
    levels: int = 2  # squeeze + steps (+ split) blocks: 28x28x1 -> 14x14x4 (split: 2 out) -> 7x7x8
    steps: int = 8  # Glow steps (actnorm, 1x1 conv, coupling) per level
    hidden: int = 64  # channels of each coupling's conv net
    alpha: float = 0.05  # logit transform's margin: v = logit(alpha + (1 - 2 alpha) y)
    seed: int = 0  # initial weights (the 1x1 convs' random rotations)


PRESETS = {
    "tiny": {"config": {"steps": 1, "hidden": 8},
             "train": {"epochs": 1, "batch_size": 64, "lr": 1e-3, "max_steps": 20}},
    # 2 levels x 8 steps, hidden 64: 152k parameters; with the logit's margin alpha = 0.05 it plateaued at 1.484
    # test bits/dim after 20 epochs.
    "bundled": {"config": {},
                "train": {"epochs": 20, "batch_size": 64, "lr": 1e-3, "warmup": 500}},
    # The bundled glow-mnist: the same with alpha = 1e-6 (the logit's log-det is counted either way), 1.242 test
    # bits/dim after 10 epochs.
    "alpha1e-6": {"config": {"alpha": 1e-6},
                  "train": {"epochs": 10, "batch_size": 64, "lr": 1e-3, "warmup": 500}},
}


def bits_per_dim_terms(log_prior: torch.Tensor, flow_logdet: torch.Tensor, logit_logdet: torch.Tensor,
                       n_dims: int) -> dict[str, torch.Tensor]:
    """The 8-bit bits/dim and its four terms from nats per image (each (N,)): prior = -log p(eps) (learned
    priors included), flow = -log-det of the flow, logit = -log-det of the logit transform, quantization =
    +log2(256) = 8 (the bin width 1/256 per pixel); each in bits/dim, signed so that they sum to "total".
    A uniform density on [0, 1]^D (log_prior + flow_logdet + logit_logdet = 0) scores exactly 8."""
    scale = -1.0 / (n_dims * math.log(2))
    terms = {"prior": scale * log_prior, "flow_logdet": scale * flow_logdet, "logit_logdet": scale * logit_logdet,
             "quantization": torch.full_like(log_prior, math.log2(LEVELS))}
    terms["total"] = terms["prior"] + terms["flow_logdet"] + terms["logit_logdet"] + terms["quantization"]
    return terms


def standard_normal_log_prob(zs: list[torch.Tensor]) -> torch.Tensor:
    """sum over levels of log N(z; 0, I): list of (N, ...) -> (N,) nats."""
    return sum(-0.5 * (z ** 2).flatten(1).sum(1) - 0.5 * z[0].numel() * math.log(2 * math.pi) for z in zs)


@register("glow", GlowConfig)
class Glow(Model):
    """Logit transform + multi-scale Glow over (1, H, W) grey images given as (N, H*W) rows."""

    presets = PRESETS
    dataset = "mnist-8bit"

    def __init__(self, config: GlowConfig) -> None:
        super().__init__(config)
        h, w = config.image_shape
        if (config.levels < 1 or config.steps < 1 or config.hidden < 1 or not 0 < config.alpha < 0.5
                or h < 1 or w < 1 or h % 2 ** config.levels or w % 2 ** config.levels):
            raise ValueError(f"invalid glow config {config}: levels, steps, hidden >= 1, 0 < alpha < 0.5, "
                             f"image sides divisible by 2^levels")
        self.n_dims = h * w
        self.logit = Logit(config.alpha)
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the global RNG
            torch.manual_seed(config.seed)
            self.flow = MultiScale((1, h, w), levels=config.levels, steps=config.steps, hidden=config.hidden)

    # --- 8-bit pixels <-> continuous y in [0, 1) ----------------------------------------------------------
    @staticmethod
    def grey_levels(x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (stored as k/256) -> integer levels k in 0..255, as floats (same shape)."""
        return torch.clamp(torch.round(x * LEVELS), 0, LEVELS - 1)

    def dequantize(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """y = (k + u)/256 with u ~ U[0, 1) drawn from `generator` (on its device; the global RNG if None)."""
        k = self.grey_levels(x)
        device = generator.device if generator is not None else k.device
        u = torch.rand(k.shape, generator=generator, device=device, dtype=k.dtype).to(k.device)
        return (k + u) / LEVELS

    def bin_centres(self, x: torch.Tensor) -> torch.Tensor:
        """y = (k + 1/2)/256: a deterministic dequantization for showing one digit's latents."""
        return (self.grey_levels(x) + 0.5) / LEVELS

    @staticmethod
    def quantize(y: torch.Tensor) -> torch.Tensor:
        """Continuous y -> the 8-bit image k/256 with k = floor(256 y) in 0..255 (the bin y falls in)."""
        return torch.clamp(torch.floor(y * LEVELS), 0, LEVELS - 1) / LEVELS

    # --- the flow -----------------------------------------------------------------------------------------
    def latents(self, y: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Continuous y (N, H*W) in [0, 1] -> (eps per level (N, C_i, H_i, W_i); log-dets in nats (N,) each:
        "logit", "flow" and "prior" (the splits' learned priors, -sum log sigma))."""
        v, logit_ld = self.logit.inverse(y.reshape(-1, 1, *self.config.image_shape))
        zs, flow_ld, prior_ld = self.flow.inverse(v)
        return zs, {"logit": logit_ld, "flow": flow_ld, "prior": prior_ld}

    def encode(self, y: torch.Tensor) -> list[torch.Tensor]:
        """Continuous y (N, H*W) -> standard-normal latents per level (exact inverse of `decode`). For an
        8-bit image x use encode(bin_centres(x)) or encode(dequantize(x, generator))."""
        return self.latents(y)[0]

    def decode(self, zs: list[torch.Tensor]) -> torch.Tensor:
        """Latents per level -> continuous y (N, H*W) in [0, 1); `quantize` gives the 8-bit image."""
        v, _, _ = self.flow(zs)
        return self.logit(v)[0].reshape(len(v), -1)

    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        """log p(y) of the continuous density on [0, 1]^(H*W): (N, H*W) -> (N,) nats."""
        zs, ld = self.latents(y)
        return standard_normal_log_prob(zs) + ld["prior"] + ld["flow"] + ld["logit"]

    def log_prob(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The 8-bit image's log-likelihood bound log p((k + u)/256) - D log 256 with one draw of u from
        `generator` (seed DEQUANTIZATION_SEED if None): (N, H*W) -> (N,) nats per image."""
        generator = generator or torch.Generator().manual_seed(DEQUANTIZATION_SEED)
        return self.log_density(self.dequantize(x, generator)) - self.n_dims * math.log(LEVELS)

    def bits_per_dim_terms(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> dict:
        """Per image (N,) bits/dim of the 8-bit images x and its four terms (see `bits_per_dim_terms`);
        the same draw of u as `log_prob` with the same generator."""
        return self._terms(x, generator or torch.Generator().manual_seed(DEQUANTIZATION_SEED))

    def _terms(self, x: torch.Tensor, generator: torch.Generator | None) -> dict:
        """bits_per_dim_terms with u from `generator`, or from the global RNG when None (training)."""
        zs, ld = self.latents(self.dequantize(x, generator))
        return bits_per_dim_terms(standard_normal_log_prob(zs) + ld["prior"], ld["flow"], ld["logit"], self.n_dims)

    @torch.no_grad()
    def bits_per_dim(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> dict[str, float]:
        """Mean bits/dim over the images x (N, H*W) and its four terms (floats that sum to "total")."""
        return {k: float(v.double().mean()) for k, v in self.bits_per_dim_terms(x, generator=generator).items()}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n 8-bit images (n, H*W) with values k/256 (quantized like the data), decoded from latents drawn
        from N(0, temperature^2 I) at every level (Glow's reduced-temperature sampling when < 1)."""
        device = generator.device if generator is not None else torch.device("cpu")
        dtype = next(self.parameters()).dtype
        zs = [temperature * torch.randn(n, *s, generator=generator, device=device, dtype=dtype).to(self.device)
              for s in self.flow.z_shapes]
        return self.quantize(self.decode(zs))

    def trace(self, y: torch.Tensor) -> list[dict]:
        """Every intermediate state of continuous y (N, H*W): the logit step, then MultiScale.trace's layers
        (each dict: level, index, layer, input, state, logdet running from the logit's)."""
        v, logit_ld = self.logit.inverse(y.reshape(-1, 1, *self.config.image_shape))
        steps = self.flow.trace(v)
        for s in steps:
            s["logdet"] = s["logdet"] + logit_ld
        return [{"level": -1, "index": 0, "layer": "Logit", "input": y, "state": v, "logdet": logit_ld}, *steps]

    def couplings(self) -> list[Coupling]:
        """The coupling layers in density order (their scale_shift gives the page's s and t maps)."""
        return [m for m in self.flow.modules() if isinstance(m, Coupling)]

    # --- training -----------------------------------------------------------------------------------------
    def loss(self, batch: torch.Tensor, *, generator: torch.Generator | None = None) -> dict:
        """Mean 8-bit bits/dim of the batch (N, H*W), dequantized with `generator` (the global RNG if None),
        and its prior, flow and logit terms (bits/dim, reported)."""
        terms = {k: v.mean() for k, v in self._terms(batch, generator).items()}
        return {"loss": terms.pop("total"), **{k: v.detach() for k, v in terms.items() if k != "quantization"}}

    def make_optimizers(self, lr: float = 1e-3, warmup: int = 0, total_steps: int = 0, clip: float = 100.0,
                        **_) -> list:
        """Adam with linear warm-up then cosine decay to 0 at `total_steps` (constant if 0), see engine.optim,
        and gradient-norm clipping at `clip` (off if 0), kept in the param group with the schedule."""
        return [scheduled_adam(self.parameters(), lr=lr, warmup=warmup, total_steps=total_steps, clip=clip)]

    def train_step(self, batch: torch.Tensor, optimizers, *, generator=None) -> dict[str, float]:
        """One Adam step on the batch's bits/dim, dequantized with `generator` (the Trainer's)."""
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        terms = self.loss(batch, generator=generator)
        terms["loss"].backward()
        if opt.param_groups[0]["clip"]:
            torch.nn.utils.clip_grad_norm_(self.parameters(), opt.param_groups[0]["clip"])
        lr = scheduled_step(opt)
        return {k: float(v.detach()) for k, v in terms.items()} | {"lr": lr}

    @torch.no_grad()
    def monitor(self, x: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Held-out bits/dim (8-bit bound) of a validation batch."""
        return {"valid_bpd": self.bits_per_dim(x, generator=generator)["total"]}

    @torch.no_grad()
    def preview(self, n: int = 36, temperature: float = 0.7):
        """Samples from fixed latents at temperature 0.7 (the same every call): numpy (n, H, W)."""
        return self.sample(n, generator=torch.Generator().manual_seed(0), temperature=temperature) \
            .reshape(n, *self.config.image_shape).cpu().numpy()


@torch.no_grad()
def evaluate(model: Glow, *, seed: int = DEQUANTIZATION_SEED, batch_size: int = 500) -> dict:
    """Test bits/dim on all 10,000 MNIST test digits (8-bit grey levels), one dequantization draw with a
    fixed seed, as the mean total, its standard error over images, and the four mean terms."""
    test = mnist.images("test")
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    parts = [model.bits_per_dim_terms(test[i:i + batch_size].to(model.device), generator=generator)
             for i in range(0, len(test), batch_size)]
    model.train(was_training)
    terms = {k: torch.cat([p[k] for p in parts]).double().cpu() for k in parts[0]}
    total = terms["total"]
    return {"test_bits_per_dim": {
        **{k: v.mean().item() for k, v in terms.items()}, "stderr": (total.std() / math.sqrt(len(total))).item(),
        "nats_per_image": (total.mean() * model.n_dims * math.log(2)).item(), "images": len(total),
        "dequantization_seed": seed, "logit_alpha": model.config.alpha,
        "split": "MNIST test split (10,000 images), 8-bit grey levels k/256",
        "estimator": "exact flow density of (k + u)/256, one u per image: a bound on the 8-bit likelihood",
        "unit": f"bits per dimension ({model.n_dims} dims); terms sum to the total"}}
