"""Adaptive input embeddings (Baevski & Auli 2019, "Adaptive Input Representations for Neural Language
Modeling"): frequent words get wide vectors, rare ones narrow vectors projected up to d_model. The output
side is PyTorch's adaptive softmax (Grave et al. 2017), with the same frequency clusters, so a 33k-word
softmax costs about a tenth of a full one on a CPU.
"""
from __future__ import annotations

import torch
from torch import nn


class AdaptiveEmbedding(nn.Module):
    """ids (...) -> (..., d_model). Cluster c covers ids [edges[c], edges[c+1]) with width d_model // div**c."""

    def __init__(self, n_tokens: int, d_model: int, cutoffs: tuple[int, ...], div_value: float) -> None:
        super().__init__()
        self.edges = [0, *cutoffs, n_tokens]
        widths = [max(1, int(d_model // div_value ** c)) for c in range(len(self.edges) - 1)]
        self.tables = nn.ModuleList(nn.Embedding(hi - lo, w) for lo, hi, w in zip(self.edges, self.edges[1:], widths))
        self.projections = nn.ModuleList(nn.Linear(w, d_model, bias=False) for w in widths)
        for table in self.tables:
            nn.init.normal_(table.weight, std=0.02)
        self.d_model = d_model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1)
        out = torch.zeros(len(flat), self.d_model, device=ids.device, dtype=self.projections[0].weight.dtype)
        for lo, hi, table, proj in zip(self.edges, self.edges[1:], self.tables, self.projections):
            where = ((flat >= lo) & (flat < hi)).nonzero().squeeze(1)
            if len(where):
                out.index_copy_(0, where, proj(table(flat[where] - lo)))
        return out.view(*ids.shape, self.d_model)
