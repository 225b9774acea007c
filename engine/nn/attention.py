"""Causal multi-head attention, with Transformer-XL's relative positions as an option.

Dai et al. 2019, "Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context", sec. 3.3:
the score of query i (at absolute position m + i, after m memory slots) on key j is

    A_ij = (q_i + u) . k_j  +  (q_i + v) . W_r R_{m+i-j}

with R the sinusoid of the relative distance and u, v learned per head ("content" and "position" biases).
The second term is computed for every distance at once and lined up by `rel_shift`. Shapes are batch-first:
hidden (B, T, d), scores (B, H, T_query, T_key).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(P,) positions or distances -> (P, dim) [sin | cos] features (Vaswani et al. 2017)."""
    inv_freq = 1.0 / (10_000 ** (torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim))
    angles = positions.float()[:, None] * inv_freq[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """(..., Q, K) scores whose column c is for distance K - 1 - c -> scores whose column j is for key j,
    i.e. out[..., i, j] = x[..., i, j + Q - 1 - i] (entries with j > K - Q + i are junk and get masked).
    The pad-and-reshape trick of the paper's appendix B: O(QK) memory, no gather."""
    *lead, q, k = x.shape
    padded = torch.cat([x.new_zeros(*lead, q, 1), x], dim=-1)  # (..., Q, K + 1)
    return padded.view(*lead, k + 1, q)[..., 1:, :].reshape(*lead, q, k)


def causal_mask(q_len: int, k_len: int, device=None) -> torch.Tensor:
    """(Q, K) bool, True where key j is in the future of query i (queries are the last Q of K keys)."""
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).triu(1 + k_len - q_len)


class Attention(nn.Module):
    """Multi-head causal self-attention over [memory ; segment]; relative positions when `relative`."""

    def __init__(self, d_model: int, n_head: int, d_head: int, dropatt: float = 0.0, *, relative: bool) -> None:
        super().__init__()
        self.n_head, self.d_head, self.relative = n_head, d_head, relative
        self.qkv = nn.Linear(d_model, 3 * n_head * d_head, bias=False)
        self.out = nn.Linear(n_head * d_head, d_model, bias=False)
        self.dropatt = nn.Dropout(dropatt)
        if relative:
            self.r_net = nn.Linear(d_model, n_head * d_head, bias=False)  # W_{k,R}
            self.u = nn.Parameter(torch.zeros(n_head, d_head))  # content bias
            self.v = nn.Parameter(torch.zeros(n_head, d_head))  # position bias

    def forward(self, h: torch.Tensor, context: torch.Tensor, pos: torch.Tensor | None = None,
                *, keep_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """h (B, Q, d) queries' inputs; context (B, K, d) = [memory ; h] (already normalised); pos (K, d)
        sinusoids of distances K-1..0. Returns (B, Q, d) and, if asked, the attention (B, H, Q, K)."""
        B, Q, K, H, D = h.shape[0], h.shape[1], context.shape[1], self.n_head, self.d_head
        q, k, v = self.qkv(context).view(B, K, 3, H, D).unbind(2)  # each (B, K, H, D)
        q = q[:, K - Q:]
        if self.relative:
            r = self.r_net(pos).view(K, H, D)
            content = torch.einsum("bqhd,bkhd->bhqk", q + self.u, k)
            position = rel_shift(torch.einsum("bqhd,khd->bhqk", q + self.v, r))
            scores = content + position
        else:
            scores = torch.einsum("bqhd,bkhd->bhqk", q, k)
        scores = (scores / math.sqrt(D)).masked_fill(causal_mask(Q, K, h.device), float("-inf"))
        probs = scores.softmax(-1)
        mixed = torch.einsum("bhqk,bkhd->bqhd", self.dropatt(probs), v).reshape(B, Q, H * D)
        return self.out(mixed), (probs if keep_attention else None)
