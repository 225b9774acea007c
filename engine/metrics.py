"""Likelihood metrics shared by the families.

AIS follows Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief networks":
anneal from a base-rate RBM (no hidden interaction, visible biases fitted to the data) to the target
RBM through p_k(v) ∝ p_A*(v)^(1-β_k) p_B*(v)^β_k, with the hidden units summed out analytically.
It serves every model that is an RBM over some units (RBM, a DBN's top RBM, a 2-layer DBM with h1
summed out). All values are natural-log (nats).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AISResult:
    log_z: float  # estimate of log Z of the target RBM (nats)
    log_z_std: float  # standard error of the estimate, in log units (delta method)
    log_z_base: float  # exact log Z of the base-rate RBM
    n_runs: int
    n_betas: int

    @property
    def log_z_interval(self) -> tuple[float, float]:
        """log(Ẑ ± 3 std(Ẑ)) as in Salakhutdinov & Murray; the lower end is -inf when the spread is wide."""
        ratio = 3 * self.log_z_std
        low = self.log_z + math.log(1 - ratio) if ratio < 1 else -math.inf
        return low, self.log_z + math.log(1 + ratio)


def ais_betas(n: int) -> torch.Tensor:
    """Inverse temperatures 0 = β_0 < ... < β_{n-1} = 1, denser near 1 (the paper's 500/4000/10000 split of 14,500)."""
    n1, n2 = max(2, round(n * 500 / 14500)), max(2, round(n * 4000 / 14500))
    n3 = max(2, n - n1 - n2)
    return torch.cat([torch.linspace(0, 0.5, n1 + 1)[:-1], torch.linspace(0.5, 0.9, n2 + 1)[:-1],
                      torch.linspace(0.9, 1.0, n3)]).double()


def base_rate_bias(data: torch.Tensor, smoothing: float = 0.05) -> torch.Tensor:
    """Visible biases of the base-rate model: log-odds of each pixel's mean over (smoothed) data. (N, D) -> (D,)."""
    mean = (data.double().sum(0) + smoothing) / (len(data) + 2 * smoothing)
    return torch.log(mean) - torch.log1p(-mean)


def softplus_gap(x: torch.Tensor, beta_prev: float, beta: float) -> torch.Tensor:
    """Σ_j softplus(β x_j) - softplus(β' x_j) over the last axis, for β' = beta_prev: (..., F) -> (...,).

    Written as log1p(σ(β' x) · expm1((β - β') x)), an exact identity that stays accurate in float32 when the
    two softplus values are large and nearly equal (AIS's consecutive temperatures differ by ~1e-5)."""
    return torch.log1p(torch.sigmoid(beta_prev * x) * torch.expm1((beta - beta_prev) * x)).sum(-1)


def iter_ais(W: torch.Tensor, b: torch.Tensor, a: torch.Tensor, b_base: torch.Tensor, *, n_runs: int = 100,
             n_betas: int = 14500, generator: torch.Generator | None = None,
             report_every: int = 200, dtype: torch.dtype = torch.float64) -> Iterator[dict]:
    """Annealed importance sampling of log Z for the RBM (W (D, F), b (D,), a (F,)).

    Yields progress dicts {"progress": fraction, "log_z": running estimate}; the last one also holds
    "result": an AISResult. Runs in float64 by default; `dtype=torch.float32` does every product, random draw
    and elementwise term in float32 (about twice as fast on a CPU, for big models); the log weights always
    accumulate in float64, and the chains are binary."""
    W, b, a, b_base = (t.detach().to(dtype) for t in (W, b, a, b_base))
    n_hidden = W.shape[1]
    betas = ais_betas(n_betas).tolist()
    log_z_base = F.softplus(b_base.double()).sum().item() + n_hidden * math.log(2)
    bias_gap = b - b_base
    # The draws come from numpy's PCG64 (about twice as fast as torch's CPU generator), seeded from `generator`.
    rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=generator)))
    v = _bernoulli(torch.sigmoid(b_base).expand(n_runs, -1), rng)
    log_w = torch.zeros(n_runs, dtype=torch.float64)
    for k in range(1, len(betas)):
        beta_prev, beta = betas[k - 1], betas[k]
        pre = torch.addmm(a, v, W)  # (R, F), shared by the weight update and the transition
        log_w += ((beta - beta_prev) * (v @ bias_gap) + softplus_gap(pre, beta_prev, beta)).double()
        h = _bernoulli(torch.sigmoid(pre.mul_(beta)), rng)
        p_v = torch.addmm(b, h, W.t()).mul_(beta).add_(b_base, alpha=1 - beta).sigmoid_()
        v = _bernoulli(p_v, rng)
        if k % report_every == 0 or k == len(betas) - 1:
            yield {"progress": k / (len(betas) - 1), "log_z": log_z_base + _log_mean_exp(log_w)}
    yield {"progress": 1.0, "log_z": log_z_base + _log_mean_exp(log_w),
           "result": _result(log_w, log_z_base, len(betas))}


def _bernoulli(p: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Binary samples with P(1) = p (CPU), in p's dtype."""
    dtype = np.float32 if p.dtype == torch.float32 else np.float64
    return torch.from_numpy(rng.random(tuple(p.shape), dtype=dtype)).lt_(p)


def _log_mean_exp(x: torch.Tensor) -> float:
    return (torch.logsumexp(x, 0) - math.log(len(x))).item()


def _result(log_w: torch.Tensor, log_z_base: float, n_betas: int) -> AISResult:
    """Ẑ = Z_A · mean(w); std error of log Ẑ = std(w) / (sqrt(R) · mean(w))."""
    w = torch.exp(log_w - log_w.max())
    rel_std = (w.std() / (w.mean() * math.sqrt(len(w)))).item() if len(w) > 1 else math.inf
    return AISResult(log_z_base + _log_mean_exp(log_w), rel_std, log_z_base, len(log_w), n_betas)


def ais(*args, **kwargs) -> AISResult:
    """Run `iter_ais` to the end and return its AISResult."""
    for update in iter_ais(*args, **kwargs):
        pass
    return update["result"]


def exact_log_z_rbm(W: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> float:
    """Exact log Z by enumerating the 2^F hidden configurations (F <= 20):
    log Z = logsumexp_h [a·h + Σ_i softplus(b_i + W_i:·h)]."""
    W, b, a = (t.detach().double() for t in (W, b, a))
    n_hidden = W.shape[1]
    if n_hidden > 20:
        raise ValueError(f"exact enumeration needs at most 20 hidden units, got {n_hidden}")
    codes = torch.arange(2 ** n_hidden)
    h = ((codes[:, None] >> torch.arange(n_hidden)) & 1).double()  # (2^F, F)
    return torch.logsumexp(h @ a + F.softplus(h @ W.t() + b).sum(-1), 0).item()


def bits_per_dim(nll_nats: float, n_dims: int) -> float:
    """Convert a per-example NLL in nats to bits per dimension."""
    return nll_nats / (n_dims * math.log(2))


# --- sample quality in a feature space (GANs) --------------------------------------------------
def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, F) and (M, F) (Heusel et al. 2017):
    ||mu_a - mu_b||^2 + tr(C_a) + tr(C_b) - 2 tr((C_a^1/2 C_b C_a^1/2)^1/2), in squared feature units.

    float64 throughout; the matrix square roots come from symmetric eigendecompositions (eigenvalues
    clamped at 0), which equals tr((C_a C_b)^1/2) without scipy's complex round-off."""
    a, b = feats_a.double(), feats_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], a.shape[1]), torch.cov(b.T).reshape(b.shape[1], b.shape[1])
    root_a = _sqrtm_psd(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float(((mu_a - mu_b) ** 2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def _sqrtm_psd(c: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (F, F)."""
    vals, vecs = torch.linalg.eigh((c + c.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def knn_radii(feats: torch.Tensor, k: int = 3, *, chunk: int = 1000) -> torch.Tensor:
    """Distance from each point (N, F) to its k-th nearest other point in the same set: (N,) float64."""
    x = feats.double()
    if len(x) <= k:
        raise ValueError(f"k-NN radii need more than k = {k} points, got {len(x)}")
    out = [torch.cdist(x[i:i + chunk], x).topk(k + 1, dim=1, largest=False).values[:, k]
           for i in range(0, len(x), chunk)]  # column 0 is the point itself (distance 0)
    return torch.cat(out)


def coverage_of(manifold: torch.Tensor, radii: torch.Tensor, queries: torch.Tensor, *, chunk: int = 1000) -> float:
    """Fraction of query points (Q, F) inside the union of balls B(manifold_i, radii_i)."""
    m, q = manifold.double(), queries.double()
    inside = [(torch.cdist(q[i:i + chunk], m) <= radii[None, :]).any(1) for i in range(0, len(q), chunk)]
    return float(torch.cat(inside).double().mean())


def precision_recall(real_feats: torch.Tensor, fake_feats: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of fake (M, F) against real (N, F) features.

    Each set's manifold is the union of balls around its points with radius the distance to the k-th
    nearest neighbour in the same set. precision = fraction of fake points on the real manifold (are the
    samples realistic?); recall = fraction of real points on the fake manifold (is all of the data covered?)."""
    precision = coverage_of(real_feats, knn_radii(real_feats, k), fake_feats)
    recall = coverage_of(fake_feats, knn_radii(fake_feats, k), real_feats)
    return {"precision": precision, "recall": recall, "k": k}
