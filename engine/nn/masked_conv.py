"""Masked convolutions for autoregressive image models, and the gated two-stack block without a blind spot.

References:
- van den Oord, Kalchbrenner & Kavukcuoglu (2016), "Pixel Recurrent Neural Networks", ICML (masked
  convolutions: type A excludes the centre pixel and is used once, on the input; type B includes it and
  is used in every later layer; sec. 3.4 and Figure 4 for one channel).
- van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu (2016b), "Conditional Image
  Generation with PixelCNN Decoders", NeurIPS (the gated activation tanh(W_f * x) * sigmoid(W_g * x), the
  vertical stack that sees every row above and the horizontal stack that sees the current row to the
  left, the 1x1 link from vertical to horizontal, the residual connection on the horizontal stack only;
  Figure 2. The blind spot of a single masked stack is removed this way).

One grey channel (binary images), so the masks are spatial: a (kh, kw) 0/1 tensor applied to every
(output, input) channel pair, `F.conv2d(x, weight * mask)` (weights are never mutated in `forward`).
Raster order: pixel (r, c) comes before (r', c') when r < r', or r == r' and c < c'.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(kernel: int, mask_type: str) -> torch.Tensor:
    """The (kernel, kernel) 0/1 mask of a PixelCNN masked convolution: every row above the centre, and in
    the centre row the taps left of the centre ("A") or left of and at the centre ("B")."""
    if mask_type not in ("A", "B") or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"mask type must be 'A' or 'B' and the kernel odd and positive, got {mask_type!r}, {kernel}")
    mask = torch.zeros(kernel, kernel)
    centre = kernel // 2
    mask[:centre] = 1
    mask[centre, :centre + (mask_type == "B")] = 1
    return mask


def vertical_mask(kernel: int) -> torch.Tensor:
    """The gated PixelCNN's vertical-stack mask, (kernel, kernel): the centre row and every row above it,
    all columns. Its output at row r sees input rows <= r, so it reaches the horizontal stack shifted
    down by one row (`shift_down`)."""
    mask = causal_mask(kernel, "B")
    mask[kernel // 2] = 1
    return mask


def horizontal_mask(kernel: int, mask_type: str) -> torch.Tensor:
    """The horizontal-stack mask, (1, kernel): the taps left of the centre ("A") or up to it ("B")."""
    return causal_mask(kernel, mask_type)[kernel // 2:kernel // 2 + 1]


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W) moved down one row (zeros in row 0): row r then holds row r - 1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel is multiplied by a fixed 0/1 `mask` (kh, kw) before every use; the output
    keeps the input's height and width (zero padding kh//2, kw//2). `mask` is a buffer, so the page can
    draw it and a checkpoint cannot change it silently."""

    def __init__(self, in_channels: int, out_channels: int, mask: torch.Tensor) -> None:
        kh, kw = mask.shape
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2))
        self.register_buffer("mask", mask.clone(), persistent=False)

    def masked_weight(self) -> torch.Tensor:
        """weight * mask: (out, in, kh, kw)."""
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.masked_weight(), self.bias, padding=self.padding)


class GatedBlock(nn.Module):
    """One layer of the gated PixelCNN (van den Oord et al. 2016b, Figure 2), on a vertical stack v and a
    horizontal stack h, both (N, C_in, H, W) -> (N, C, H, W):

        v_pre = V * v                                    (vertical mask: rows <= r)
        h_pre = H * h + link(shift_down(v_pre))          (horizontal mask A or B; link is 1x1, 2C -> 2C)
        v'    = tanh(v_pre[:C]) * sigmoid(v_pre[C:])
        h'    = h + out(tanh(h_pre[:C]) * sigmoid(h_pre[C:]))   (out is 1x1; no residual in the first block)

    The first block (mask "A") reads the image itself in both stacks; h' at (r, c) then depends on every
    pixel of the rows above within the field and on the pixels left of c in row r: no blind spot."""

    def __init__(self, in_channels: int, channels: int, kernel: int, mask_type: str) -> None:
        super().__init__()
        self.channels, self.residual = channels, mask_type == "B"
        self.vertical = MaskedConv2d(in_channels, 2 * channels, vertical_mask(kernel))
        self.horizontal = MaskedConv2d(in_channels, 2 * channels, horizontal_mask(kernel, mask_type))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def gate(self, pre: torch.Tensor) -> torch.Tensor:
        """tanh(first half of the channels) * sigmoid(second half): (N, 2C, ...) -> (N, C, ...)."""
        return torch.tanh(pre[:, :self.channels]) * torch.sigmoid(pre[:, self.channels:])

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_pre = self.vertical(v)  # (N, 2C, H, W)
        h_pre = self.horizontal(h) + self.link(shift_down(v_pre))  # (N, 2C, H, W)
        h_new = self.out(self.gate(h_pre))  # (N, C, H, W)
        return self.gate(v_pre), (h + h_new if self.residual else h_new)
