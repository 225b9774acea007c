"""PCA, principal angles between subspaces, and nearest-neighbour retrieval in a code space.

The autoencoder page's baselines: PCA(K) is the best rank-K linear reconstruction (its squared error
is the sum of the discarded eigenvalues of the data covariance); a linear autoencoder trained on
squared error spans the same subspace (Baldi & Hornik, 1989), which `principal_angles` measures.
Pure torch; inputs are (N, D) float tensors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PCA:
    mean: torch.Tensor  # (D,)
    components: torch.Tensor  # (K, D), orthonormal rows, by decreasing variance
    variances: torch.Tensor  # (D,) every eigenvalue of the covariance, decreasing (the first K are kept)

    @property
    def k(self) -> int:
        return self.components.shape[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Coordinates along the components: (N, D) -> (N, K)."""
        return (x - self.mean) @ self.components.t()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, K) -> (N, D)."""
        return self.mean + z @ self.components

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def truncate(self, k: int) -> "PCA":
        """The same fit keeping only the top k <= K components."""
        return PCA(self.mean, self.components[:k], self.variances)


def fit_pca(x: torch.Tensor, k: int) -> PCA:
    """Mean and top-k eigenvectors of the (biased, 1/N) covariance of x (N, D), via eigh in float64."""
    mean = x.mean(0)
    centered = x - mean
    cov = (centered.t() @ centered).double() / len(x)  # (D, D)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # increasing
    order = eigenvalues.flip(0).clamp_min(0)
    components = eigenvectors.flip(1)[:, :k].t().to(x.dtype)  # (k, D)
    return PCA(mean, components.contiguous(), order.to(x.dtype))


def squared_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per-image squared error summed over pixels: (N, D), (N, D) -> (N,)."""
    return ((x - x_hat) ** 2).sum(-1)


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Principal angles in degrees (increasing) between the column spaces of a (D, p) and b (D, q).

    With orthonormal bases Q_a, Q_b (QR), the cosines are the singular values of Q_a^T Q_b;
    min(p, q) angles, 0 for a shared direction, 90 for orthogonal ones."""
    qa, _ = torch.linalg.qr(a.double())
    qb, _ = torch.linalg.qr(b.double())
    cosines = torch.linalg.svdvals(qa.t() @ qb).clamp(-1.0, 1.0)  # decreasing
    return torch.rad2deg(torch.arccos(cosines)).float()


def nearest_neighbours(codes: torch.Tensor, queries: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (Q, k) of the k codes (N, d) closest in Euclidean distance to each query index (Q,),
    leaving the query itself out."""
    d = torch.cdist(codes[queries], codes)  # (Q, N)
    d[torch.arange(len(queries)), queries] = math.inf
    return d.topk(k, largest=False).indices


def precision_at_k(codes: torch.Tensor, labels: torch.Tensor, k: int, *, n_queries: int = 1000,
                   seed: int = 0) -> float:
    """Fraction of each query's k nearest neighbours (in code space) that share its label, averaged over
    n_queries query images drawn without replacement with `seed`; the rest of the set is searched."""
    g = torch.Generator().manual_seed(seed)
    queries = torch.randperm(len(codes), generator=g)[:n_queries]
    neighbours = nearest_neighbours(codes, queries, k)  # (Q, k)
    return float((labels[neighbours] == labels[queries, None]).float().mean())
