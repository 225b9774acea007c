"""What the NADE and MADE page shows, computed from real models: one image's log-likelihood split into its
chain-rule terms, which input pixels an output pixel of a MADE depends on, and the two ways of combining
the masks of a MADE ensemble (a mixture of the joint probabilities, and averaged logits).

References: Germain, Gregor, Murray & Larochelle (2015), "MADE" (masks, the mask ensemble);
Uria et al. (2016), "Neural Autoregressive Distribution Estimation" (ensembles as mixtures).
Conventions are those of engine/models/made.py: images (B, D) of 0/1 floats, pixels in raster order,
`order` lists the pixels in sampling order, logits are indexed by pixel, log-likelihoods in nats.
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from engine.models.made import MADE, MADEConfig, bernoulli_log_prob, connectivity, make_ordering


@torch.no_grad()
def chain_terms(model, x: torch.Tensor) -> dict:
    """The chain rule on one image x (D,) 0/1 under an autoregressive model (MADE or NADE):
    {"p_on": p(x_i = 1 | x_<i) (D,) by pixel, "nats": -log p(x_i | x_<i) (D,) by pixel,
    "order": (D,) the model's ordering, "cumulative": (D,) running sum of the terms in that order,
    "total": -log p(x) in nats (= the sum of the terms), "bits_per_dim": total / (D ln 2)}."""
    x = x.reshape(1, -1).to(model.device, torch.float32)
    logits = model.logits(x)[0]  # (D,) by pixel
    nats = F.binary_cross_entropy_with_logits(logits, x[0], reduction="none")  # (D,)
    order = model.order
    total = float(nats.double().sum())
    return {"p_on": torch.sigmoid(logits).cpu(), "nats": nats.cpu(), "order": order.cpu(),
            "cumulative": torch.cumsum(nats[order].double(), 0).cpu(), "total": total,
            "bits_per_dim": total / (len(nats) * math.log(2))}


def dependency_map(dependency: torch.Tensor, order: torch.Tensor, pixel: int) -> torch.Tensor:
    """What output `pixel` sees, per input pixel (D,) int8: 3 = the pixel itself, 2 = an input it depends on,
    1 = an input that comes before it in the ordering but that no path of the masks connects to it,
    0 = an input after it (which it must not see). `dependency` (D, D) bool is output x input, by pixel."""
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    earlier = rank < rank[pixel]  # (D,)
    out = torch.where(dependency[pixel], 2, torch.where(earlier, 1, 0)).to(torch.int8)
    out[pixel] = 3
    return out


def connectivity_summary(n: int, hidden: tuple[int, ...], *, ordering: str = "natural", order_seed: int = 0,
                         mask_seed: int = 0) -> dict:
    """A MADE's masks for n inputs under an ordering and mask seed (all on the CPU): {"order", "degrees",
    "masks", "dependency" (D, D) bool by pixel, "in_order" the same in sampling order (strictly lower-
    triangular), "allowed": pairs (i, j) with j before i, "connected": those the masks connect}."""
    order = make_ordering(n, ordering, order_seed=order_seed)
    conn = connectivity(order, hidden, mask_seed)
    in_order = conn.dependency[order][:, order]
    return {"order": order, "degrees": conn.degrees, "masks": conn.masks, "dependency": conn.dependency,
            "in_order": in_order, "allowed": n * (n - 1) // 2, "connected": int(in_order.sum())}


@torch.no_grad()
def combination_totals(members: list[tuple[MADE, int]]) -> dict:
    """Sum over all 2^D binary vectors (D <= 16) of two ways to combine K conditionals models, given as
    (MADE, mask k) pairs over the same D pixels: the mixture (1/K) sum_k p_k(x), always a distribution
    (total 1), and prod_i Bernoulli(x_i; mean_k logit_i^k), averaged logits. When the members share one
    ordering, averaged logits are still an autoregressive model (total 1, but not the mixture); when their
    orderings differ, logit_i^k may depend on pixels after i in another member's ordering and the total is not 1.
    Returns {"mixture": float, "averaged_logits": float, "n": D, "members": K}."""
    n = members[0][0].n_dims
    if n > 16 or any(m.n_dims != n for m, _ in members):
        raise ValueError("members must share D <= 16 pixels (all 2^D images are enumerated)")
    x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))  # (2^D, D)
    per_member = torch.stack([bernoulli_log_prob(x, m.logits(x, k)).double() for m, k in members])  # (K, 2^D)
    mixture = torch.logsumexp(per_member, 0) - math.log(len(members))
    averaged = bernoulli_log_prob(x, torch.stack([m.logits(x, k) for m, k in members]).mean(0)).double()
    return {"mixture": float(mixture.exp().sum()), "averaged_logits": float(averaged.exp().sum()), "n": n,
            "members": len(members)}


def averaged_logits_demo(*, side: tuple[int, int] = (2, 5), hidden: tuple[int, ...] = (32,), members: int = 4,
                         seed: int = 0, scale: float = 3.0) -> dict:
    """The two combinations of `combination_totals` on small MADEs with random weights (each weight drawn
    N(0, scale^2 / fan_in), so the conditionals are far from 1/2): {"shared": masks 0..members-1 of one MADE
    (one ordering), "different": masks 0 of `members` MADEs with random orderings (order seeds seed..)}."""
    def randomized(model: MADE) -> MADE:
        g = torch.Generator().manual_seed(seed + 1000)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * scale / math.sqrt(p.shape[-1]))
        return model.eval()

    def build(**config) -> MADE:
        return randomized(MADE(MADEConfig(image_shape=side, hidden=hidden, mask_seed=seed, **config)))

    shared = build(n_masks=members)
    different = [build(ordering="random", order_seed=seed + k) for k in range(members)]
    return {"shared": combination_totals([(shared, k) for k in range(members)]),
            "different": combination_totals([(m, 0) for m in different])}
