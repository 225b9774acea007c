"""Flow layers shared by every flow family: each maps forward(z) -> (x, logdet) and inverse(x) -> (z, logdet).

References:
- Rezende & Mohamed (2015), "Variational Inference with Normalizing Flows", ICML (planar flows; the
  invertibility condition w^T u >= -1 and the u-hat reparameterization of their Appendix A.1).
- Dinh, Sohl-Dickstein & Bengio (2017), "Density estimation using Real NVP", ICLR (affine coupling).

Conventions: z and x are (N, D); logdet is (N,) and is log|det dx/dz| for `forward` and
log|det dz/dx| for `inverse` (so the two are negatives of each other at matching points). A `Flow`
composes layers, and `trace(z)` returns every intermediate point with its running log-det: the
layer-by-layer views draw those.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def planar_u_hat(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """u_hat = u + (m(w^T u) - w^T u) w / ||w||^2, m(a) = -1 + softplus(a), so w^T u_hat = m(w^T u) > -1.

    u, w: (..., D) (one layer, or K stacked layers); returns (..., D). The squared norm matters: with
    ||w|| instead, w^T u_hat != m(w^T u) and the layer can fold the plane (a density that does not
    integrate to 1)."""
    wu = (w * u).sum(-1, keepdim=True)
    return u + (F.softplus(wu) - 1 - wu) * w / (w * w).sum(-1, keepdim=True)


def planar_forward(z, u_hat, w, b) -> tuple[torch.Tensor, torch.Tensor]:
    """x = z + u_hat tanh(w^T z + b) and log|det dx/dz| = log(1 + (1 - tanh^2) w^T u_hat): (N, D) -> (N, D), (N,)."""
    h = torch.tanh(torch.addmv(b, z, w))  # (N,)
    x = torch.addr(z, h, u_hat)  # z + h u_hat^T: (N, D)
    return x, torch.log1p((1 - h * h) * (w @ u_hat))  # positive inside the log since w^T u_hat > -1


def planar_inverse(x, u_hat, w, b, *, iterations: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """z with planar_forward(z) = x, and log|det dz/dx|. Along w the layer is a scalar map: with
    a = w^T z + b and c = w^T x + b, a + (w^T u_hat) tanh(a) = c, strictly increasing in a, and
    |a - c| <= |w^T u_hat|. Solved by Newton steps kept inside a shrinking bracket (`root_monotone`)."""
    wu = w @ u_hat
    c = torch.addmv(b, x, w)  # (N,)
    def g(t, index):
        h = torch.tanh(t)
        return t + wu * h - c[index], 1 + wu * (1 - h * h)

    a = root_monotone(g, c - wu.abs() - 1e-6, c + wu.abs() + 1e-6, start=c - wu * torch.tanh(c),
                      iterations=iterations)
    h = torch.tanh(a)
    z = torch.addr(x, h, u_hat, alpha=-1)
    return z, -torch.log1p((1 - h * h) * wu)


class PlanarLayer(nn.Module):
    """One planar layer f(z) = z + u_hat h(w^T z + b), h = tanh (Rezende & Mohamed 2015, eq. 10),
    with log|det df/dz| = log|1 + u_hat^T w h'(w^T z + b)| (eq. 12)."""

    def __init__(self, dim: int = 2, *, init_scale: float = 0.01, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.u = nn.Parameter(init_scale * torch.randn(dim, generator=generator))
        self.w = nn.Parameter(init_scale * torch.randn(dim, generator=generator))
        self.b = nn.Parameter(torch.zeros(1))

    def u_hat(self) -> torch.Tensor:
        return planar_u_hat(self.u, self.w)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return planar_forward(z, self.u_hat(), self.w, self.b)

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return planar_inverse(x, self.u_hat(), self.w, self.b)


def root_monotone(g, low: torch.Tensor, high: torch.Tensor, *, start: torch.Tensor | None = None,
                  iterations: int = 100) -> torch.Tensor:
    """Safeguarded Newton for increasing scalar functions, elementwise: g(t, index) -> (value, slope) at
    the points t of the elements `index` (a LongTensor into the flattened inputs), with
    value(low) <= 0 <= value(high).

    Each step tries Newton from the current point (`start`, else the bracket's middle); where it would
    leave (low, high), or not at least halve the previous step (a sign of cycling between flat
    stretches), it bisects instead (Numerical Recipes' rtsafe), so it converges even where Newton alone
    would not. An element stops once its step is within a few ulps; only unfinished elements are computed."""
    shape = low.shape
    low, high = low.detach().reshape(-1).clone(), high.detach().reshape(-1).clone()
    t = (low + high) / 2 if start is None else torch.minimum(torch.maximum(start.detach().reshape(-1), low), high)
    previous = high - low  # the size of each element's previous step
    tol = 8 * torch.finfo(t.dtype).eps
    active = torch.arange(len(t), device=t.device)
    for _ in range(iterations):
        ta, lo, hi, prev = t[active], low[active], high[active], previous[active]
        value, slope = g(ta, active)
        lo = torch.where(value < 0, ta, lo)
        hi = torch.where(value > 0, ta, hi)
        newton = ta - value / slope
        good = (newton >= lo) & (newton <= hi) & ((newton - ta).abs() <= 0.5 * prev)
        step = torch.where(value == 0, ta, torch.where(good, newton, (lo + hi) / 2))
        moved = (step - ta).abs()
        t[active], low[active], high[active], previous[active] = step, lo, hi, moved
        active = active[moved > tol * (1 + ta.abs())]
        if len(active) == 0:
            break
    return t.reshape(shape)


class AffineCoupling(nn.Module):
    """Real NVP affine coupling: the dimensions where mask = 1 pass unchanged and condition the others,
    x = m*z + (1-m)*(z*exp(s) + t), with (s, t) from an MLP of m*z and s = scale * tanh(raw) (bounded).

    log|det dx/dz| = sum over the (1-m) dimensions of s."""

    def __init__(self, mask: torch.Tensor, *, hidden: int = 64, layers: int = 2, zero_init: bool = True) -> None:
        super().__init__()
        dim = mask.numel()
        self.register_buffer("mask", mask.float().clone())
        sizes = [dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            blocks += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(hidden, 2 * dim))
        self.scale = nn.Parameter(torch.ones(dim))
        if zero_init:  # starts as the identity: a stable start for maximum likelihood
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def _shift_scale(self, z_kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(z_kept).chunk(2, dim=-1)  # (N, D) each
        free = 1 - self.mask
        return self.scale * torch.tanh(raw_s) * free, t * free

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._shift_scale(z * self.mask)
        x = z * self.mask + (1 - self.mask) * (z * torch.exp(s) + t)
        return x, s.sum(-1)

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._shift_scale(x * self.mask)
        z = x * self.mask + (1 - self.mask) * (x - t) * torch.exp(-s)
        return z, -s.sum(-1)


class Flow(nn.Module):
    """A sequence of flow layers over a standard normal base N(0, I_D)."""

    def __init__(self, layers: list[nn.Module], dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dim = dim

    def steps(self) -> list:
        """The layers in order, each with forward(z) -> (x, logdet) and inverse(x) -> (z, logdet)."""
        return list(self.layers)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = torch.zeros(len(z), dtype=z.dtype, device=z.device)
        for layer in self.steps():
            z, ld = layer.forward(z)
            logdet = logdet + ld
        return z, logdet

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for layer in reversed(self.steps()):
            x, ld = layer.inverse(x)
            logdet = logdet + ld
        return x, logdet

    def trace(self, z: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every layer's output and the running log-det: points[k] = f_k(...f_1(z)), logdets[k] = sum of
        the first k log|det|; both lists have K + 1 entries (entry 0 is z and zeros)."""
        points, logdets = [z], [torch.zeros(len(z), dtype=z.dtype, device=z.device)]
        for layer in self.steps():
            x, ld = layer.forward(points[-1])
            points.append(x)
            logdets.append(logdets[-1] + ld)
        return points, logdets

    def base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I) per row: (N, D) -> (N,) nats."""
        return -0.5 * (z**2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log density by the inverse: log p(x) = log N(f^-1(x)) + log|det df^-1/dx|, (N,) nats."""
        z, logdet = self.inverse(x)
        return self.base_log_prob(z) + logdet

    def sample_with_log_prob(self, n: int, *, generator=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples x = f(z) and their log q(x) = log N(z) - log|det df/dz| carried along the path."""
        z = torch.randn(n, self.dim, generator=generator, dtype=dtype).to(next(self.parameters()).device)
        x, logdet = self(z)
        return x, self.base_log_prob(z) - logdet


class _PlanarStep:
    """One layer of a PlanarFlow, as views of the stacked parameters (no parameters of its own)."""

    def __init__(self, u_hat, w, b) -> None:
        self.u_hat, self.w, self.b = u_hat, w, b

    def forward(self, z):
        return planar_forward(z, self.u_hat, self.w, self.b)

    def inverse(self, x):
        return planar_inverse(x, self.u_hat, self.w, self.b)


class PlanarFlow(Flow):
    """K planar layers with their parameters stacked, u (K, D), w (K, D), b (K,): the same maps as K
    PlanarLayer modules, but u_hat for every layer in one vectorized step and one Adam update for all
    (training a 32-layer flow is bound by per-operation overhead, not arithmetic)."""

    def __init__(self, layers: int, dim: int = 2, *, init_scale: float = 0.01,
                 generator: torch.Generator | None = None) -> None:
        super().__init__([], dim)
        self.u = nn.Parameter(init_scale * torch.randn(layers, dim, generator=generator))
        self.w = nn.Parameter(init_scale * torch.randn(layers, dim, generator=generator))
        self.b = nn.Parameter(torch.zeros(layers))

    def u_hat(self) -> torch.Tensor:
        return planar_u_hat(self.u, self.w)  # (K, D)

    def steps(self) -> list[_PlanarStep]:
        return [_PlanarStep(*p) for p in zip(self.u_hat().unbind(0), self.w.unbind(0), self.b.unbind(0))]
