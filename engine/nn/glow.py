"""Glow's flow layers on images (N, C, H, W) and their multi-scale composition.

References:
- Kingma & Dhariwal (2018), "Glow: Generative Flow with Invertible 1x1 Convolutions", NeurIPS (actnorm
  with data-dependent initialization, the LU-decomposed invertible 1x1 convolution, affine coupling with
  a zero-initialized last convolution and scale sigmoid(h + 2) as in their code; Table 1).
- Dinh, Sohl-Dickstein & Bengio (2017), "Density estimation using Real NVP", ICLR (squeeze, the
  multi-scale architecture factoring out half the channels at each level, the logit preprocessing of
  their section 4.1).

Conventions as in engine/nn/flows.py: `forward(z) -> (x, logdet)` is the sampling direction (latent to
data), `inverse(x) -> (z, logdet)` the density direction; logdet (N,) is log|det dx/dz| for `forward` and
log|det dz/dx| for `inverse`. Every layer maps a tensor to a tensor with as many numbers per example.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _per_example(value: torch.Tensor, n: int) -> torch.Tensor:
    """A scalar log-det shared by every example, as an (n,) tensor."""
    return value.expand(n)


class Logit(nn.Module):
    """Dequantized pixels y in [0, 1] to logit space, v = logit(p), p = alpha + (1 - 2 alpha) y (Dinh et
    al. 2017, sec. 4.1), elementwise on any shape (N, ...). log|dv/dy| = log(1 - 2 alpha) - log p - log(1 - p)
    per pixel; 1 - p is computed as alpha + (1 - 2 alpha)(1 - y), exactly, not by subtraction."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        self.alpha = alpha

    def log_det(self, log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
        """log|dv/dy| summed per example, from log p and log(1 - p): (N, ...) -> (N,)."""
        return (math.log1p(-2 * self.alpha) - log_p - log_q).flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.alpha
        log_p, log_q = torch.log(a + (1 - 2 * a) * y), torch.log(a + (1 - 2 * a) * (1 - y))
        return log_p - log_q, self.log_det(log_p, log_q)

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_p, log_q = F.logsigmoid(v), F.logsigmoid(-v)
        return (torch.sigmoid(v) - self.alpha) / (1 - 2 * self.alpha), -self.log_det(log_p, log_q)


class ActNorm(nn.Module):
    """Per-channel affine map z = (x + bias) exp(log_scale) in the density direction (Glow sec. 3.1);
    log|det dz/dx| = H W sum(log_scale). The first batch it sees in that direction in training mode sets
    bias and scale so that z has zero mean and unit variance per channel; the `initialized` flag is a
    buffer, so a saved model keeps its initialization."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.zeros(1, dtype=torch.bool))
        self._ready = False  # a cache of `initialized`, so training does not read the buffer every step

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Data-dependent init from a batch x (N, C, H, W): bias = -mean, log_scale = -log(std + 1e-6)."""
        self.bias.copy_(-x.mean((0, 2, 3), keepdim=True))
        self.log_scale.copy_(-torch.log(x.std((0, 2, 3), keepdim=True, unbiased=False) + 1e-6))
        self.initialized.fill_(True)
        self._ready = True

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._ready = bool(self.initialized)

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self._ready:
            self._ready = bool(self.initialized)
            if not self._ready:
                self.initialize(x)
        hw = x.shape[2] * x.shape[3]
        return (x + self.bias) * torch.exp(self.log_scale), _per_example(hw * self.log_scale.sum(), len(x))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hw = z.shape[2] * z.shape[3]
        return z * torch.exp(-self.log_scale) - self.bias, _per_example(-hw * self.log_scale.sum(), len(z))


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution z = W x at every pixel (Glow sec. 3.2), W = P L (U + diag(sign * exp(log_s)))
    with P a fixed permutation, L unit lower-triangular and U strictly upper-triangular (the LU
    parameterization), so log|det dz/dx| = H W sum(log_s). Initialized as a random rotation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels))[0]  # seeded by the caller's RNG state
        perm, lower, upper = torch.linalg.lu(w)
        s = upper.diagonal()
        self.register_buffer("perm", perm)
        self.register_buffer("sign_s", torch.sign(s))
        self.lower = nn.Parameter(lower.tril(-1))
        self.upper = nn.Parameter(upper.triu(1))
        self.log_s = nn.Parameter(s.abs().log())

    def weight(self) -> torch.Tensor:
        """W (C, C), rebuilt from the LU factors."""
        eye = torch.eye(len(self.log_s), dtype=self.log_s.dtype, device=self.log_s.device)
        lower = self.lower.tril(-1) + eye
        upper = self.upper.triu(1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hw = x.shape[2] * x.shape[3]
        z = F.conv2d(x, self.weight()[:, :, None, None])
        return z, _per_example(hw * self.log_s.sum(), len(x))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hw = z.shape[2] * z.shape[3]
        x = F.conv2d(z, torch.linalg.inv(self.weight())[:, :, None, None])
        return x, _per_example(-hw * self.log_s.sum(), len(z))


class Coupling(nn.Module):
    """Affine coupling (Glow sec. 3.3): the first C_a = C // 2 channels x_a pass unchanged and give, through a
    conv net (3x3 -> ReLU -> 1x1 -> ReLU -> zero-initialized 3x3), a shift t and a scale s = sigmoid(h + 2)
    for the other C_b channels: z_b = (x_b + t) s in the density direction, log|det dz/dx| = sum log s."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.kept = channels // 2
        free = channels - self.kept
        self.net = nn.Sequential(nn.Conv2d(self.kept, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 2 * free, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log s, t) for the free channels, each (N, C_b, H, W), from the kept channels (N, C_a, H, W)."""
        t, raw = self.net(kept).chunk(2, dim=1)
        return F.logsigmoid(raw + 2.0), t

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[:, :self.kept], x[:, self.kept:]
        log_s, t = self.scale_shift(x_a)
        return torch.cat([x_a, (x_b + t) * torch.exp(log_s)], 1), log_s.sum((1, 2, 3))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_a, z_b = z[:, :self.kept], z[:, self.kept:]
        log_s, t = self.scale_shift(z_a)
        return torch.cat([z_a, z_b * torch.exp(-log_s) - t], 1), -log_s.sum((1, 2, 3))


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """Each 2x2 spatial block to 4 channels: (N, C, H, W) -> (N, 4C, H/2, W/2) (Dinh et al. 2017, fig. 3)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)


def unsqueeze(z: torch.Tensor) -> torch.Tensor:
    """The inverse of `squeeze`: (N, 4C, H, W) -> (N, C, 2H, 2W)."""
    n, c4, h, w = z.shape
    return z.reshape(n, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c4 // 4, 2 * h, 2 * w)


class Squeeze(nn.Module):
    """`squeeze` in the density direction, `unsqueeze` in the sampling direction; log-det 0 (a permutation)."""

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return squeeze(x), x.new_zeros(len(x))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return unsqueeze(z), z.new_zeros(len(z))


class SplitPrior(nn.Module):
    """The split's learned conditional prior (Glow's code; Dinh et al. 2017 sec. 3.6): the last C - C // 2
    channels x_b are factored out with prior N(mu, sigma^2), (mu, log sigma) from a zero-initialized 3x3
    conv of the kept channels x_a. Written as the layer eps_b = (x_b - mu) / sigma (x_a unchanged), with
    log|det d eps/dx| = -sum log sigma, so that every factored-out eps is standard normal under the model
    and log N(x_b; mu, sigma) = log N(eps_b; 0, I) - sum log sigma. `MultiScale` removes eps_b afterwards."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.kept = channels // 2
        self.conv = nn.Conv2d(self.kept, 2 * (channels - self.kept), 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def mean_log_std(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma) of the factored-out channels, each (N, C_b, H, W)."""
        mu, log_sigma = self.conv(kept).chunk(2, dim=1)
        return mu, log_sigma

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[:, :self.kept], x[:, self.kept:]
        mu, log_sigma = self.mean_log_std(x_a)
        return torch.cat([x_a, (x_b - mu) * torch.exp(-log_sigma)], 1), -log_sigma.sum((1, 2, 3))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_a, eps = z[:, :self.kept], z[:, self.kept:]
        mu, log_sigma = self.mean_log_std(z_a)
        return torch.cat([z_a, mu + eps * torch.exp(log_sigma)], 1), log_sigma.sum((1, 2, 3))


class MultiScale(nn.Module):
    """Real NVP's multi-scale flow with Glow steps over images (C, H, W): `levels` times [squeeze, `steps` x
    (actnorm, 1x1 conv, coupling), split prior (all levels but the last)]. After each split the factored-out
    channels are that level's latent; the last level's whole output is the top latent. On (1, 28, 28) with
    2 levels: (4, 14, 14) -> factor out eps_1 (2, 14, 14); keep (2, 14, 14) -> (8, 7, 7) = eps_2.

    `inverse(x)` (density direction) gives the latents, the log-det of actnorm, 1x1 convs and couplings
    ("flow"), and that of the split priors ("prior", the -sum log sigma of the learned priors);
    `forward(zs)` inverts it; `trace(x)` returns every intermediate state."""

    def __init__(self, shape: tuple[int, int, int], *, levels: int, steps: int, hidden: int) -> None:
        super().__init__()
        c, h, w = shape
        self.levels = nn.ModuleList()
        self.z_shapes: list[tuple[int, int, int]] = []
        for i in range(levels):
            c, h, w = 4 * c, h // 2, w // 2
            layers: list[nn.Module] = [Squeeze()]
            for _ in range(steps):
                layers += [ActNorm(c), InvConv1x1(c), Coupling(c, hidden)]
            if i < levels - 1:
                layers.append(SplitPrior(c))
                self.z_shapes.append((c - c // 2, h, w))
                c = c // 2
            else:
                self.z_shapes.append((c, h, w))
            self.levels.append(nn.ModuleList(layers))

    def inverse(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """x (N, C, H, W) -> (latents per level, each (N, *z_shapes[i]); flow log-det (N,); prior log-det (N,))."""
        zs, flow_ld, prior_ld = [], x.new_zeros(len(x)), x.new_zeros(len(x))
        for level in self.levels:
            for layer in level:
                x, ld = layer.inverse(x)
                if isinstance(layer, SplitPrior):
                    prior_ld = prior_ld + ld
                    zs.append(x[:, layer.kept:])
                    x = x[:, :layer.kept]
                else:
                    flow_ld = flow_ld + ld
        zs.append(x)
        return zs, flow_ld, prior_ld

    def forward(self, zs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latents per level -> (x (N, C, H, W); flow log-det (N,); prior log-det (N,)), log|det dx/dz| terms."""
        x = zs[-1]
        flow_ld, prior_ld = x.new_zeros(len(x)), x.new_zeros(len(x))
        for i in reversed(range(len(self.levels))):
            if i < len(self.levels) - 1:
                x = torch.cat([x, zs[i]], 1)
            for layer in reversed(self.levels[i]):
                x, ld = layer.forward(x)
                if isinstance(layer, SplitPrior):
                    prior_ld = prior_ld + ld
                else:
                    flow_ld = flow_ld + ld
        return x, flow_ld, prior_ld

    def trace(self, x: torch.Tensor) -> list[dict]:
        """Every layer's output in the density direction: dicts with "level", "index" (in the level),
        "layer" (class name), "state" (the tensor after it; for a split, before the latent is removed),
        "input" (the tensor entering it: a coupling's scale_shift(input[:, :kept]) gives its maps) and
        "logdet" (the running log|det| of everything so far, priors' included), (N,)."""
        out, running = [], x.new_zeros(len(x))
        for i, level in enumerate(self.levels):
            for j, layer in enumerate(level):
                y, ld = layer.inverse(x)
                running = running + ld
                out.append({"level": i, "index": j, "layer": type(layer).__name__, "input": x, "state": y,
                            "logdet": running})
                x = y[:, :layer.kept] if isinstance(layer, SplitPrior) else y
        return out
