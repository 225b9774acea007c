"""WaveNet's layer: a dilated causal convolution, a gated activation with global conditioning, and 1x1
convolutions to the residual stream and the skip sum; with a one-step form for queue-based generation.

References:
- van den Oord et al. (2016), "WaveNet: A Generative Model for Raw Audio", arXiv:1609.03499 (sections 2.1-2.5:
  dilated causal convolutions, z = tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h), residual and skip paths).
- Paine et al. (2016), "Fast Wavenet Generation Algorithm", arXiv:1611.09482 (a queue of each layer's past
  inputs, so a new sample costs one step per layer instead of a pass over the receptive field).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class GatedResidualBlock(nn.Module):
    """x (B, R, T) -> (x + residual (B, R, T), skip (B, S, T)); the output at t reads the inputs at
    t, t - d, ..., t - (k - 1) d (k = kernel_size, d = dilation), never a later one. The network's last block
    has no residual convolution (`to_residual=False`: nothing reads its residual output) and returns x as is.
    With `local` > 0 channels, a local condition y (B, local, T) at the sample rate (e.g. an upsampled
    mel-spectrogram) enters both gate halves through a 1x1 convolution, V_f * y and V_g * y (the paper's section
    2.5, local conditioning); the condition may come from anywhere in the clip: only the audio path is causal."""

    def __init__(self, *, residual: int, gate: int, skip: int, dilation: int, kernel_size: int, n_classes: int,
                 to_residual: bool = True, local: int = 0) -> None:
        super().__init__()
        self.dilation, self.kernel_size = dilation, kernel_size
        self.dilated = nn.Conv1d(residual, 2 * gate, kernel_size, dilation=dilation)  # filter and gate halves
        self.condition = nn.Embedding(n_classes, 2 * gate) if n_classes else None  # V_f h and V_g h, h one-hot
        self.local = nn.Conv1d(local, 2 * gate, 1) if local else None  # V_f * y and V_g * y, y the local condition
        self.residual_out = nn.Conv1d(gate, residual, 1) if to_residual else None
        self.skip_out = nn.Conv1d(gate, skip, 1)

    @property
    def history(self) -> int:
        """How many past inputs this layer reads: (k - 1) d (its queue's length in fast generation)."""
        return (self.kernel_size - 1) * self.dilation

    def bias_of(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """The global condition's contribution to both gate halves: labels (B,) -> (B, 2G), or None."""
        return None if self.condition is None or labels is None else self.condition(labels)

    def local_of(self, y: torch.Tensor | None) -> torch.Tensor | None:
        """The local condition's contribution to both gate halves: y (B, C, T) -> (B, 2G, T), or None."""
        return None if self.local is None or y is None else self.local(y)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None,
                local: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, R, T), condition (B, 2G) from `bias_of`, local (B, 2G, T) from `local_of` -> (B, R, T), (B, S, T).
        Causal in x by left zero-padding; the local term at t is added as is."""
        z = self.dilated(F.pad(x, (self.history, 0)))  # (B, 2G, T)
        if local is not None:
            z = z + local
        return self._gated(x, z, condition)

    def _gated(self, x: torch.Tensor, z: torch.Tensor, condition: torch.Tensor | None):
        if condition is not None:
            z = z + condition[:, :, None]
        filt, gate = z.chunk(2, dim=1)
        g = torch.tanh(filt) * torch.sigmoid(gate)  # (B, G, T)
        return (x if self.residual_out is None else x + self.residual_out(g)), self.skip_out(g)

    def step_weights(self, labels: torch.Tensor | None, n: int) -> "StepWeights":
        """The weights of `step` as matrices, prepared once per generation run for n sequences (with the
        condition folded into the dilated convolution's bias)."""
        w = self.dilated.weight  # (2G, R, k): w[:, :, j] multiplies the input at t - (k - 1 - j) d
        bias = self.dilated.bias.expand(n, -1)
        condition = self.bias_of(labels)
        res = self.residual_out
        return StepWeights(
            taps=w.permute(2, 1, 0).reshape(-1, w.shape[0]),  # (k R, 2G), rows tap by tap, oldest first
            bias=bias if condition is None else bias + condition,  # (n, 2G)
            residual=None if res is None else res.weight[:, :, 0].T, residual_bias=None if res is None else res.bias)

    def step(self, x_t: torch.Tensor, queue: torch.Tensor, t: int, weights: "StepWeights",
             local_t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer at one time t: x_t (B, R) -> (output (B, R), gate activation g (B, G)); the skip output is
        skip_out(g), which the caller applies to every layer's g at once. `queue` (history, B, R) is a ring
        buffer of this layer's past inputs (zeros before the signal, like the forward pass's padding): slot
        s % history holds the input at time s. It is read for t - (k - 1) d, ..., t - d, then slot t % history
        gets x_t. local_t (B, 2G): the local term at t (`local_of(y)[:, :, t]`), or None."""
        h = self.history
        taps = [queue[(t - j * self.dilation) % h] for j in range(self.kernel_size - 1, 0, -1)]
        z = torch.addmm(weights.bias, torch.cat([*taps, x_t], dim=1), weights.taps)  # (B, 2G)
        queue[t % h] = x_t
        if local_t is not None:
            z = z + local_t
        filt, gate = z.chunk(2, dim=1)
        g = torch.tanh(filt) * torch.sigmoid(gate)  # (B, G)
        if weights.residual is None:
            return x_t, g
        return torch.addmm(weights.residual_bias, g, weights.residual).add_(x_t), g


@dataclass(frozen=True)
class StepWeights:
    """A block's weights for one-step generation (see GatedResidualBlock.step_weights)."""

    taps: torch.Tensor  # (k R, 2G)
    bias: torch.Tensor  # (B, 2G): the dilated convolution's bias plus the condition
    residual: torch.Tensor | None  # (G, R), None for the last block
    residual_bias: torch.Tensor | None  # (R,)
