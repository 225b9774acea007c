"""PixelCNN and the gated PixelCNN on binarized MNIST: exact log-likelihood by the chain rule in raster
order, a naive sampler (one full forward pass per pixel) and an exact cached sampler (each layer computed
only where the new pixel needs it, from cached activations).

References:
- van den Oord, Kalchbrenner & Kavukcuoglu (2016), "Pixel Recurrent Neural Networks", ICML (PixelCNN: a
  7x7 type-A masked convolution, residual 3x3 type-B masked layers, 1x1 layers before the output; the
  binarized-MNIST results, 81.30 nats for PixelCNN, Table 4).
- van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu (2016b), "Conditional Image
  Generation with PixelCNN Decoders", NeurIPS (the gated PixelCNN: vertical and horizontal stacks, gated
  units, no blind spot).

The model: p(x) = prod_i p(x_i | x_<i), i in raster order over the H x W pixels, each conditional a
Bernoulli with logit l_i(x_<i); `logits(x)` gives all H*W of them in one pass (the masks make l_i blind
to x_j for j >= i). log p(x) = -sum_i BCE(l_i, x_i), in nats per image; bits/dim = nats / (H W ln 2).
Data: images are (N, H*W) rows of 0/1 (dynamically binarized MNIST in training; every test NLL on
`mnist.binarized("test")`). The papers use the fixed Larochelle binarization, which is not available here.

Sampling rule (both samplers): x_i = 1 when u_i < sigmoid(l_i), u_i ~ U[0, 1), so the same uniforms give
the same image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import mnist
from engine.models.base import Model
from engine.nn.masked_conv import GatedBlock, MaskedConv2d, causal_mask
from engine.registry import register

PAPER_NLL = {"pixelcnn": 81.30}  # van den Oord et al. 2016, Table 4 (fixed binarization), nats


@dataclass(frozen=True)
class PixelCNNConfig:
    image_shape: tuple[int, int] = (28, 28)  # (H, W), one binary channel
    channels: int = 64  # feature maps of every masked layer and of the 1x1 head
    layers: int = 8  # masked convolutions: one first_kernel type A, then layers - 1 kernel type B
    first_kernel: int = 7
    kernel: int = 3
    seed: int = 0  # initial weights


@dataclass(frozen=True)
class GatedPixelCNNConfig(PixelCNNConfig):
    """The gated PixelCNN's config: the same fields; `layers` counts gated blocks (the first with
    first_kernel and mask A, the others with kernel and mask B)."""


def _presets(bundled_train: dict) -> dict:
    """"tiny" (tests, a quick CLI run) and "bundled" (64 channels x 8 layers, Adam 1e-3, batch 32; the
    issue: ~30 min on 2 cores reaches about 90 nats for PixelCNN; a gated block costs ~3x a type-B layer,
    so its bundled run gets one epoch on a CPU budget)."""
    return {"tiny": {"config": {"channels": 8, "layers": 3},
                     "train": {"epochs": 1, "batch_size": 32, "lr": 3e-3, "max_steps": 20}},
            "bundled": {"config": {"channels": 64, "layers": 8}, "train": bundled_train}}


class AutoregressiveImage(Model):
    """What both nets share: logits -> log-likelihood, loss, samplers. Subclasses define `features(image,
    layers)` (N, 1, H, W) -> (N, C, H, W) and `cache(canvas)`, the incremental state of the cached sampler."""

    dataset = "mnist-binary"

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__(config)
        h, w = config.image_shape
        kernels_ok = all(k >= 3 and k % 2 == 1 for k in (config.first_kernel, config.kernel))
        if h < 1 or w < 1 or config.channels < 1 or config.layers < 1 or config.seed < 0 or not kernels_ok:
            raise ValueError(f"invalid {self.model_type} config {config}: image sides, channels and layers >= 1, "
                             "kernels odd and >= 3, seed >= 0")
        self.n_pixels = h * w

    def build_head(self, channels: int) -> nn.Sequential:
        """ReLU -> 1x1 conv -> ReLU -> 1x1 conv to one logit per pixel."""
        return nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 1, 1))

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H*W) rows -> (N, 1, H, W)."""
        return x.reshape(-1, 1, *self.config.image_shape)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every conditional's logit l_i(x_<i) in one pass: (N, H*W) -> (N, H*W)."""
        return self.head(self.features(self.image(x))).flatten(1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = sum_i log Bernoulli(x_i; sigmoid(l_i)): (N, H*W) binary -> (N,) nats."""
        return -F.binary_cross_entropy_with_logits(self.logits(x), x, reduction="none").sum(1)

    def loss(self, batch: torch.Tensor) -> dict:
        """Mean NLL of the batch (N, H*W) in nats per image, and the same in bits/dim (reported)."""
        nll = -self.log_prob(batch).mean()
        return {"loss": nll, "bits_per_dim": nll.detach() / (self.n_pixels * math.log(2))}

    @torch.no_grad()
    def monitor(self, x: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Exact held-out NLL (nats per image) of a validation batch."""
        return {"valid_nll": float(-self.log_prob(x).mean())}

    @torch.no_grad()
    def preview(self, n: int = 16):
        """Samples from a fixed seed (the same every call): numpy (n, H, W)."""
        return self.sample(n, generator=torch.Generator().manual_seed(0)).reshape(n, *self.config.image_shape).cpu().numpy()

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, uniforms: torch.Tensor | None = None,
               given: torch.Tensor | None = None, rows: int = 0) -> torch.Tensor:
        """n binary images (n, H*W) from the exact cached sampler. `uniforms` (n, H*W) in [0, 1), else drawn
        from `generator`; `given` (n, H*W) with `rows` > 0 keeps its top `rows` rows (completion)."""
        return sample_cached(self, *start_state(self, n, generator, uniforms, given, rows))[0]


@register("pixelcnn", PixelCNNConfig)
class PixelCNN(AutoregressiveImage):
    """x (N, H*W) -> h = A(x); h = h + B_l(relu(h)) for l = 1..layers-1; 1x1 head -> one logit per pixel."""

    presets = _presets({"epochs": 2, "batch_size": 32, "lr": 1e-3})

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__(config)
        c = config.channels
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the global RNG
            torch.manual_seed(config.seed)
            self.first = MaskedConv2d(1, c, causal_mask(config.first_kernel, "A"))
            self.convs = nn.ModuleList(MaskedConv2d(c, c, causal_mask(config.kernel, "B"))
                                       for _ in range(config.layers - 1))
            self.head = self.build_head(c)

    def features(self, image: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """The residual stream after the first `layers` masked convolutions (all if None): (N, 1, H, W) ->
        (N, C, H, W); layers = 1 is the type-A convolution alone."""
        h = self.first(image)
        for conv in self.convs[:None if layers is None else layers - 1]:
            h = h + conv(F.relu(h))
        return h

    def masked_convs(self) -> list[MaskedConv2d]:
        """The masked convolutions in order (their `mask` buffers are what the page draws)."""
        return [self.first, *self.convs]

    def cache(self, canvas: torch.Tensor, *, fill: bool = True) -> "PixelCNNCache":
        return PixelCNNCache(self, canvas, fill=fill)


@register("gated-pixelcnn", GatedPixelCNNConfig)
class GatedPixelCNN(AutoregressiveImage):
    """x (N, H*W) -> `layers` gated blocks on (vertical, horizontal) stacks, both starting as the image ->
    1x1 head on the horizontal stack -> one logit per pixel."""

    presets = _presets({"epochs": 1, "batch_size": 32, "lr": 1e-3})

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__(config)
        c = config.channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.blocks = nn.ModuleList(
                GatedBlock(1 if i == 0 else c, c, config.first_kernel if i == 0 else config.kernel, "A" if i == 0 else "B")
                for i in range(config.layers))
            self.head = self.build_head(c)

    def features(self, image: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """The horizontal stack after the first `layers` gated blocks (all if None): (N, 1, H, W) -> (N, C, H, W)."""
        v = h = image
        for block in self.blocks[:layers]:
            v, h = block(v, h)
        return h

    def masked_convs(self) -> list[MaskedConv2d]:
        """Vertical and horizontal masked convolutions, block by block."""
        return [conv for b in self.blocks for conv in (b.vertical, b.horizontal)]

    def cache(self, canvas: torch.Tensor, *, fill: bool = True) -> "GatedCache":
        return GatedCache(self, canvas, fill=fill)


# --- samplers ---------------------------------------------------------------------------------------------
def start_state(model: AutoregressiveImage, n: int, generator=None, uniforms=None, given=None, rows: int = 0):
    """(canvas (n, H*W) with the given pixels and zeros after them, uniforms (n, H*W), first free pixel)."""
    device, dtype = model.device, next(model.parameters()).dtype
    if uniforms is None:
        gen_device = generator.device if generator is not None else torch.device("cpu")
        uniforms = torch.rand(n, model.n_pixels, generator=generator, device=gen_device, dtype=dtype)
    uniforms = uniforms.to(device=device, dtype=dtype)
    width = model.config.image_shape[1]
    start = rows * width if given is not None else 0
    if uniforms.shape != (n, model.n_pixels) or not 0 <= start <= model.n_pixels:
        raise ValueError(f"uniforms must be ({n}, {model.n_pixels}) and rows in 0..{model.config.image_shape[0]}")
    canvas = torch.zeros(n, model.n_pixels, device=device, dtype=dtype)
    if given is not None:
        canvas[:, :start] = given.reshape(n, -1)[:, :start].to(device=device, dtype=dtype)
    return canvas, uniforms, start


def draw(logit: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """x = 1 where u < sigmoid(logit): the one sampling rule of both samplers."""
    return (u < torch.sigmoid(logit)).to(logit.dtype)


@torch.no_grad()
def sample_naive(model: AutoregressiveImage, canvas: torch.Tensor, uniforms: torch.Tensor, start: int = 0,
                 stop: int | None = None):
    """A full forward pass per pixel, raster order over pixels [start, stop) (stop: all): (samples (n, H*W),
    the logits each pixel was drawn with (n, H*W), NaN outside [start, stop)). `canvas` is not modified."""
    x, logits = canvas.clone(), torch.full_like(canvas, float("nan"))
    for i in range(start, model.n_pixels if stop is None else stop):
        logits[:, i] = model.logits(x)[:, i]
        x[:, i] = draw(logits[:, i], uniforms[:, i])
    return x, logits


@torch.no_grad()
def sample_cached(model: AutoregressiveImage, canvas: torch.Tensor, uniforms: torch.Tensor, start: int = 0,
                  on_row=None):
    """The exact cached sampler: the same (samples, logits) as `sample_naive`, computing every layer only
    at the new pixel (and, for the gated net's vertical stack, once per row). `on_row(r, canvas)`, if given,
    is called after each row r is drawn with the canvas so far (n, H*W) (a copy), so a page can show it."""
    image, width = canvas.reshape(-1, 1, *model.config.image_shape), model.config.image_shape[1]
    cache = model.cache(image, fill=start > 0)  # from pixel 0 every cached value is computed before it is read
    logits = torch.full_like(canvas, float("nan"))
    cache.begin(*divmod(start, width))
    for i in range(start, model.n_pixels):
        r, c = divmod(i, width)
        if c == 0 and i > start:
            cache.begin(r, 0)
        logits[:, i] = cache.logit(r, c)
        cache.set_pixel(r, c, draw(logits[:, i], uniforms[:, i]))
        if on_row is not None and c == width - 1:
            on_row(r, cache.canvas().flatten(1).cpu().clone())
    return cache.canvas().flatten(1), logits


def _taps(conv: MaskedConv2d, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A masked conv's kernel rows [0, rows) as a matrix for one output position, its input taken channels
    last (row, column, channel): ((rows*kw*C_in, C_out), bias)."""
    w = conv.masked_weight()[:, :, :rows]  # (C_out, C_in, rows, kw)
    return w.permute(2, 3, 1, 0).reshape(-1, len(w)).contiguous(), conv.bias


def _row_taps(conv: MaskedConv2d, q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A (1, 2q + 1) masked conv's taps left of and at the centre as a matrix, input channels last:
    (((q + 1)*C_in, C_out), bias)."""
    w = conv.masked_weight()[:, :, 0, :q + 1]  # (C_out, C_in, q + 1)
    return w.permute(2, 1, 0).reshape(-1, len(w)).contiguous(), conv.bias


class Head:
    """The 1x1 head at one position, its weights flattened once: (N, C) -> (N,) logits."""

    def __init__(self, model: AutoregressiveImage) -> None:
        _, hidden, _, out = model.head
        self.hidden = (hidden.weight.flatten(1).t().contiguous(), hidden.bias)
        self.out = (out.weight.flatten(1).t().contiguous(), out.bias)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        h = F.relu(torch.addmm(self.hidden[1], F.relu(h), self.hidden[0]))
        return torch.addmm(self.out[1], h, self.out[0])[:, 0]


class PixelCNNCache:
    """Zero-padded caches of every masked layer's input (the canvas, then relu(h_l) stored channels last,
    so that a kernel's window is a few contiguous runs); `logit(r, c)` runs each layer at (r, c) only. Exact because layer outputs at (r, c) depend on pixels before (r, c) only,
    and every cached position a kernel reads at (r, c) is at or before (r, c): already final."""

    def __init__(self, model: PixelCNN, canvas: torch.Tensor, *, fill: bool = True) -> None:
        """`fill`: the caches from a full pass over the canvas (needed when pixels are given), else zeros."""
        self.model, self.p0, self.p = model, model.config.first_kernel // 2, model.config.kernel // 2
        self.x = F.pad(canvas, (self.p0,) * 4)  # (N, 1, H + 2 p0, W + 2 p0)
        n, _, height, width = canvas.shape
        h = model.first(canvas) if fill else None
        self.acts = []  # relu(h_l), padded: the inputs of convs[l]
        for conv in model.convs:
            if fill:
                self.acts.append(F.pad(F.relu(h), (self.p,) * 4).permute(0, 2, 3, 1).contiguous())  # (N, H', W', C)
                h = h + conv(F.relu(h))
            else:
                self.acts.append(canvas.new_zeros(n, height + 2 * self.p, width + 2 * self.p, conv.in_channels))
        self.weights = [_taps(model.first, self.p0 + 1)] + [_taps(conv, self.p + 1) for conv in model.convs]
        self.head = Head(model)

    def canvas(self) -> torch.Tensor:
        p0 = self.p0
        return self.x[:, :, p0:self.x.shape[2] - p0, p0:self.x.shape[3] - p0]

    def begin(self, r: int, c: int) -> None:
        """Nothing to do per row: every layer is computed pixel by pixel."""

    def set_pixel(self, r: int, c: int, value: torch.Tensor) -> None:
        self.x[:, 0, r + self.p0, c + self.p0] = value

    def logit(self, r: int, c: int) -> torch.Tensor:
        """l_(r, c) from the cached inputs, updating every layer's cache at (r, c): (N,)."""
        k0, k = 2 * self.p0 + 1, 2 * self.p + 1
        w, b = self.weights[0]
        h = torch.addmm(b, self.x[:, :, r:r + self.p0 + 1, c:c + k0].flatten(1), w)  # (N, C)
        for act, (w, b) in zip(self.acts, self.weights[1:]):
            act[:, r + self.p, c + self.p] = F.relu(h)
            h = torch.addmm(h, act[:, r:r + self.p + 1, c:c + k].flatten(1), w).add_(b)  # residual
        return self.head(h)


class GatedCache:
    """Caches of the gated net: every block's vertical-stack input (padded, all rows), the link terms of the
    current row, and every block's horizontal-stack input on the current row. `begin(r, c)` computes the
    vertical stacks on row r - 1 (all columns: the horizontal stack of row r reads them through the 1x1
    link, and they depend on rows <= r - 1 only); `logit(r, c)` runs the horizontal stacks at (r, c) only."""

    def __init__(self, model: GatedPixelCNN, canvas: torch.Tensor, *, fill: bool = True) -> None:
        """`fill`: the caches from a full pass over the canvas (needed when pixels are given), else zeros."""
        self.model, blocks = model, model.blocks
        self.pads = [b.vertical.kernel_size[0] // 2 for b in blocks]  # q_l: kernel_l // 2
        self.x = F.pad(canvas, (self.pads[0],) * 4)  # block 0's input, both stacks
        self.v_in, self.h_full = [self.x], []  # vertical inputs (padded); horizontal outputs of a full pass
        v, h = canvas, canvas
        n, _, height, width = canvas.shape
        for block, q in zip(blocks[:-1], self.pads[1:]):
            if fill:
                v, h = block(v, h)
                self.v_in.append(F.pad(v, (q,) * 4))
                self.h_full.append(h)
            else:
                self.v_in.append(canvas.new_zeros(n, block.channels, height + 2 * q, width + 2 * q))
        self.h_rows = [None] + [torch.zeros(n, width + 2 * q, b.channels, dtype=canvas.dtype, device=canvas.device)
                                for b, q in zip(blocks[:-1], self.pads[1:])]  # channels last: (N, W + 2q, C)
        self.links: list[torch.Tensor] = []  # per block (N, W, 2C): link(v_pre on the row above)
        self.horizontal = [_row_taps(b.horizontal, q) for b, q in zip(blocks, self.pads)]
        self.outs = [(b.out.weight.flatten(1).t().contiguous(), b.out.bias) for b in blocks]
        self.head = Head(model)

    def canvas(self) -> torch.Tensor:
        q = self.pads[0]
        return self.x[:, :, q:self.x.shape[2] - q, q:self.x.shape[3] - q]

    def set_pixel(self, r: int, c: int, value: torch.Tensor) -> None:
        self.x[:, 0, r + self.pads[0], c + self.pads[0]] = value

    def begin(self, r: int, c: int) -> None:
        """Start row r at column c: the vertical stacks on row r - 1, the link terms of row r, and the
        horizontal inputs of row r (left of c from the full pass when starting mid-row, zeros otherwise)."""
        self.links = []
        for l, block in enumerate(self.model.blocks):
            q = self.pads[l]
            if r == 0:
                v_pre = torch.zeros(len(self.x), 2 * block.channels, 1, self.x.shape[3] - 2 * self.pads[0],
                                    dtype=self.x.dtype, device=self.x.device)
            else:
                rows = self.v_in[l][:, :, r - 1:r + q]  # original rows r-1-q .. r-1, padded columns
                v_pre = F.conv2d(rows, block.vertical.masked_weight()[:, :, :q + 1], block.vertical.bias)
                if l + 1 < len(self.pads):
                    q1 = self.pads[l + 1]
                    self.v_in[l + 1][:, :, r - 1 + q1, q1:self.v_in[l + 1].shape[3] - q1] = block.gate(v_pre)[:, :, 0]
            self.links.append(block.link(v_pre)[:, :, 0].transpose(1, 2).contiguous())  # (N, W, 2C)
        for l in range(1, len(self.pads)):
            q = self.pads[l]
            self.h_rows[l].zero_()
            if c > 0:
                self.h_rows[l][:, q:self.h_rows[l].shape[1] - q] = self.h_full[l - 1][:, :, r].transpose(1, 2)

    def logit(self, r: int, c: int) -> torch.Tensor:
        """l_(r, c) from the caches, writing every block's horizontal output at (r, c): (N,)."""
        h = None
        for l, block in enumerate(self.model.blocks):
            q, (w, b) = self.pads[l], self.horizontal[l]
            window = self.x[:, 0, r + q, c:c + q + 1] if l == 0 else self.h_rows[l][:, c:c + q + 1].flatten(1)
            h_pre = torch.addmm(self.links[l][:, c], window, w).add_(b)  # (N, 2C)
            out_w, out_b = self.outs[l]
            h = torch.addmm(out_b if h is None else h + out_b, block.gate(h_pre), out_w)  # (N, C), residual after A
            if l + 1 < len(self.pads):
                self.h_rows[l + 1][:, c + self.pads[l + 1]] = h
        return self.head(h)


@torch.no_grad()
def evaluate(model: AutoregressiveImage, *, batch_size: int = 500) -> dict:
    """Exact test NLL on all 10,000 digits of the seeded binarized MNIST test split: the mean in nats per
    image, its standard error over images, and bits/dim (nats / (H W ln 2))."""
    test = mnist.binarized("test")
    was_training = model.training
    model.eval()
    nll = torch.cat([-model.log_prob(test[i:i + batch_size].to(model.device)).double().cpu()
                     for i in range(0, len(test), batch_size)])
    model.train(was_training)
    return {"test_nll": {
        "nats": nll.mean().item(), "stderr": (nll.std() / math.sqrt(len(nll))).item(),
        "bits_per_dim": nll.mean().item() / (model.n_pixels * math.log(2)), "images": len(nll),
        "split": mnist.describe(), "estimator": "exact (chain rule in raster order)",
        "paper_nats": PAPER_NLL.get(model.model_type),
        "paper_note": "van den Oord et al. 2016 use the fixed Larochelle binarization, not available here"}}
