"""What the PixelCNN page shows, computed from a real PixelCNN or gated PixelCNN: generation frames with
the model's beliefs, completions of given top rows, the receptive field and blind spot measured with
autograd, the masks as kernels, and the cached sampler timed against the naive one.

References: van den Oord et al. (2016), "Pixel Recurrent Neural Networks" (masked convolutions, the
stack whose receptive field has a blind spot); van den Oord et al. (2016b), "Conditional Image
Generation with PixelCNN Decoders" (Figure 1: the blind spot, removed by the two-stack design).
Pixels are indexed in raster order, i = r * W + c; probabilities are returned as uint8 (round(255 p)).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from engine.models.pixelcnn import AutoregressiveImage, sample_cached, sample_naive, start_state


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
    return torch.Generator().manual_seed(seed) if generator is None and seed is not None else generator


def to_uint8(p: torch.Tensor) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 round(255 p), same shape (numpy)."""
    return torch.round(p.clamp(0, 1) * 255).to(torch.uint8).cpu().numpy()


@torch.no_grad()
def beliefs(model: AutoregressiveImage, canvases: torch.Tensor, *, chunk: int = 128) -> torch.Tensor:
    """sigmoid(logits) of every pixel on each canvas, (N, H*W) -> (N, H*W), in chunks of `chunk` images."""
    return torch.cat([torch.sigmoid(model.logits(canvases[i:i + chunk].to(model.device))).cpu()
                      for i in range(0, len(canvases), chunk)])


@torch.no_grad()
def generation_frames(model: AutoregressiveImage, n: int, *, stride: int = 1, seed: int | None = 0,
                      generator: torch.Generator | None = None, uniforms: torch.Tensor | None = None,
                      given: torch.Tensor | None = None, rows: int = 0, with_beliefs: bool = True,
                      on_row=None) -> dict:
    """n images generated pixel by pixel by the cached sampler, as frames every `stride` pixels (the
    first frame before any pixel is drawn, the last when all are): numpy arrays
      images (T, n, H, W) uint8 0/1: the canvas (pixels not yet drawn are 0);
      beliefs (T, n, H, W) uint8 round(255 p): sigmoid of the logits on that canvas, so p(x_i = 1 | x_<i)
        exactly at every pixel drawn so far and at the next one, and beyond it the model's prediction on
        the canvas with the undrawn pixels at 0 (one full forward pass per frame; None if not with_beliefs);
      pixel (T,) int: the next pixel to draw (H*W when done); p_pixel (T, n) float: its p(x = 1 | x_<i)
        (NaN when done); samples (n, H*W) float and probabilities (n, H*W) float: the final images and the
        conditional each pixel was drawn from. Same seed (or uniforms), same frames. `on_row(r, canvas (n, H*W))`
    is called as each row is drawn (see sample_cached), before the beliefs are computed."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    canvas, u, start = start_state(model, n, _generator(seed, generator), uniforms, given, rows)
    samples, logits = sample_cached(model, canvas, u, start, on_row=on_row)
    samples, probs = samples.cpu(), torch.sigmoid(logits).cpu()
    pixels = list(range(start, model.n_pixels, stride)) + [model.n_pixels]
    index = torch.arange(model.n_pixels)
    canvases = torch.stack([samples * (index < i) for i in pixels])  # (T, n, H*W)
    p_pixel = torch.stack([probs[:, i] if i < model.n_pixels else torch.full((n,), float("nan")) for i in pixels])
    shape = (len(pixels), n, *model.config.image_shape)
    maps = beliefs(model, canvases.flatten(0, 1)).reshape(shape) if with_beliefs else None
    return {"images": canvases.reshape(shape).to(torch.uint8).numpy(),
            "beliefs": None if maps is None else to_uint8(maps), "pixel": np.asarray(pixels),
            "p_pixel": p_pixel.numpy(), "samples": samples, "probabilities": probs, "start": start}


@torch.no_grad()
def complete(model: AutoregressiveImage, digits: torch.Tensor, rows: int, *, per_digit: int = 4,
             seed: int | None = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep the top `rows` rows of each binary digit (D, H*W) and sample the rest `per_digit` times with the
    cached sampler: (D, per_digit, H*W); the given pixels are copied, never resampled."""
    height = model.config.image_shape[0]
    if not 0 <= rows <= height:
        raise ValueError(f"rows must be in 0..{height}, got {rows}")
    given = digits.reshape(len(digits), -1).repeat_interleave(per_digit, 0)
    canvas, u, start = start_state(model, len(given), _generator(seed, generator), None, given, rows)
    return sample_cached(model, canvas, u, start)[0].reshape(len(digits), per_digit, -1).cpu()


def receptive_field(model: AutoregressiveImage, pixel: tuple[int, int], *, layers: int | None = None,
                    probes: int = 4, seed: int = 0) -> torch.Tensor:
    """The input pixels that pixel (r, c)'s logit depends on (after the first `layers` masked layers, a
    random projection of that layer's channels at (r, c); all layers: the logit itself), measured with
    autograd: bool (H, W), True where the gradient is non-zero for at least one of `probes` random binary
    images (several, so that a ReLU that happens to be off cannot hide a dependency)."""
    height, width = model.config.image_shape
    r, c = pixel
    if not (0 <= r < height and 0 <= c < width) or not (layers is None or 1 <= layers <= model.config.layers):
        raise ValueError(f"pixel must lie in the {height}x{width} image and layers in 1..{model.config.layers}")
    g = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    x = (torch.rand(probes, model.n_pixels, generator=g) < 0.5).to(model.device, dtype).requires_grad_(True)
    with torch.enable_grad():
        if layers is None:
            out = model.logits(x)[:, r * width + c]
        else:
            feature = model.features(model.image(x), layers)[:, :, r, c]  # (probes, C)
            out = feature @ torch.randn(feature.shape[1], generator=g).to(feature)
        (grad,) = torch.autograd.grad(out.sum(), x)
    return (grad.abs().sum(0) > 0).reshape(height, width).cpu()


def blind_spot(field: torch.Tensor, pixel: tuple[int, int]) -> torch.Tensor:
    """Pixels before (r, c) in raster order that the field (bool (H, W)) does not reach although they lie
    inside its bounding box (rows from its top row to r, columns from its leftmost to its rightmost):
    bool (H, W). For 7x7 A + 7 x 3x3 B layers at (14, 14) this is the 28-pixel triangle above-right."""
    height, width = field.shape
    r, c = pixel
    before = (torch.arange(height * width) < r * width + c).reshape(height, width)
    if not field.any():
        return torch.zeros_like(field)
    rows, cols = field.nonzero(as_tuple=True)
    box = torch.zeros_like(field)
    box[rows.min():r + 1, cols.min():cols.max() + 1] = True
    return before & box & ~field


def kernel_masks(model: AutoregressiveImage) -> list[tuple[str, np.ndarray]]:
    """(label, 0/1 mask (kh, kw)) of every masked convolution, in order, for drawing the kernels."""
    if hasattr(model, "blocks"):
        return [(f"block {i + 1} {stack}", getattr(b, stack).mask.cpu().numpy())
                for i, b in enumerate(model.blocks) for stack in ("vertical", "horizontal")]
    return [(f"layer {i + 1} ({'A' if i == 0 else 'B'})", conv.mask.cpu().numpy())
            for i, conv in enumerate(model.masked_convs())]


def compare_samplers(model: AutoregressiveImage, n: int = 16, *, seed: int = 0,
                     naive_pixels: int | None = None) -> dict:
    """The cached and naive samplers on the same uniforms: seconds for n whole images with the cached one;
    the naive one run over the first `naive_pixels` pixels (all if None) and, since every naive step is
    the same full forward pass, its whole-image time scaled from those; whether the samples drawn by both
    are identical and the largest logit difference; and both samplers' images (n, H*W), the naive one's
    zero after the pixels it ran, for showing them side by side."""
    model.eval()
    canvas, u, start = start_state(model, n, torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    x_cached, l_cached = sample_cached(model, canvas, u, start)
    cached_s = time.perf_counter() - t0
    stop = model.n_pixels if naive_pixels is None else max(1, min(naive_pixels, model.n_pixels))
    t0 = time.perf_counter()
    x_naive, l_naive = sample_naive(model, canvas, u, start, stop)
    naive_s = (time.perf_counter() - t0) * model.n_pixels / stop
    return {"batch": n, "cached_s": cached_s, "naive_s": naive_s, "ratio": naive_s / cached_s,
            "naive_measured_pixels": stop, "naive_scaled": stop < model.n_pixels,
            "identical": bool(torch.equal(x_naive[:, :stop], x_cached[:, :stop])),
            "max_logit_difference": (l_naive[:, :stop] - l_cached[:, :stop]).abs().max().item(),
            "samples_cached": x_cached.cpu(), "samples_naive": x_naive.cpu()}
