"""Cached (incremental) against naive sampling of the autoregressive models, timed in one process, printing ratios.

Sections (each a function returning a dict with "naive_s", "cached_s", "ratio", "identical" and what it ran):
- made: MADE 784-500-784 (the bundled architecture, weights at their seeded initialization: the time does not
  depend on training), `sample_naive` (a full forward pass per pixel, 784 passes) against `sample_incremental`
  (the first layer's pre-activations cached, one column added per drawn pixel, one output row per pixel),
  from the same uniforms; the samples must be identical. The issue measured ~40x.
- pixelcnn, gated-pixelcnn: a 4x4 grid (batch 16) of 28x28 digits, the exact cached sampler against a full
  forward pass per pixel, same uniforms (see pixelcnn_sampling). The issue measured 194x; target >= 50x and
  the cached grid in 2 s or less.
- wavenet: one second of 8 kHz audio for each of the 10 digits, fast (queue) generation against the naive
  one (a pass over the receptive field per sample), same uniforms (see wavenet_sampling). The issue measured 94x.

Both sides run on one thread (torch.set_num_threads(1)), one after the other in rounds; each side's best round
counts. Other processes on the machine slow both sides alike but make single rounds noisy.

    PYTHONPATH=. .venv/bin/python bench/ar_sampling.py [--sections made] [--batch 16] [--rounds 2]
    PYTHONPATH=. .venv/bin/python bench/ar_sampling.py --sections wavenet --rounds 1 --wavenet-seconds 0.05  # quick
"""
from __future__ import annotations

import argparse
import time

import torch

from engine import api


def _best_time(fn, rounds: int) -> tuple[float, object]:
    """The smallest wall time of `rounds` calls of fn(), and the last result."""
    best, out = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def made_sampling(batch: int = 16, rounds: int = 2, hidden: tuple[int, ...] = (500,)) -> dict:
    """MADE: naive vs incremental time to draw `batch` 28x28 images from the same uniforms."""
    model = api.build("made", hidden=hidden).eval()
    uniforms = torch.rand(batch, model.n_dims, generator=torch.Generator().manual_seed(0))
    naive_s, (naive, _) = _best_time(lambda: model.sample_naive(uniforms), rounds)
    cached_s, (cached, _) = _best_time(lambda: model.sample_incremental(uniforms), rounds)
    return {"what": f"MADE {'-'.join(map(str, (784, *hidden, 784)))}, {batch} images of 784 pixels",
            "naive_s": naive_s, "cached_s": cached_s, "ratio": naive_s / cached_s,
            "identical": bool(torch.equal(naive, cached))}


def wavenet_sampling(batch: int = 16, rounds: int = 2, seconds: float = 1.0, full_naive: bool = False) -> dict:
    """WaveNet: naive (a forward pass over the last R inputs per sample, Paine et al.'s baseline) vs fast
    (per-layer queues) time for `seconds` of 8 kHz audio for the 10 digits, from the same uniforms; the
    bundled wavenet-fsdd checkpoint when present, else the default config untrained (the time does not depend on
    the weights). `batch` is not used: the issue's setting is one clip per digit. Unless `full_naive`, the
    naive side runs R and R + 200 samples, once each, and is extrapolated to the whole length (its cost per
    sample is constant once its window is full; for the default model, R = 2047, an estimated 12 minutes
    of one core instead of 35); the fast side always runs the whole length. Identical: the naive samples
    equal the fast samples over the length the naive side ran."""
    model = (api.load("wavenet-fsdd") if "wavenet-fsdd" in api.bundled() else api.build("wavenet")).eval()
    length, r, digits = int(seconds * 8000), model.receptive_field(), torch.arange(10)
    uniforms = torch.rand(10, length, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cached_s, cached = _best_time(lambda: model.generate_fast(digits, uniforms), rounds)
    if full_naive or length <= r + 200:
        naive_s, naive = _best_time(lambda: model.generate_naive(digits, uniforms), rounds)
        how = "run in full"
    else:
        first_s, _ = _best_time(lambda: model.generate_naive(digits, uniforms[:, :r]), 1)
        longer_s, naive = _best_time(lambda: model.generate_naive(digits, uniforms[:, :r + 200]), 1)
        naive_s = first_s + (length - r) * (longer_s - first_s) / 200
        how = f"extrapolated from {r} and {r + 200} samples"
    return {"what": f"WaveNet receptive field {r}, 10 digits x {length} samples, naive {how}",
            "naive_s": naive_s, "cached_s": cached_s, "ratio": naive_s / cached_s,
            "identical": bool(torch.equal(naive, cached[:, :naive.shape[1]]))}


def pixelcnn_sampling(batch: int = 16, rounds: int = 2, net: str = "pixelcnn", naive_pixels: int = 56) -> dict:
    """PixelCNN: a 4x4 grid (`batch` 28x28 images) with the exact cached sampler (each layer computed at the
    new pixel only) against the naive one (a full forward pass per pixel), same uniforms; the bundled
    `<net>-mnist` checkpoint when present, else the default 64-channel 8-layer net untrained (the time does
    not depend on the weights). The naive side runs the first `naive_pixels` pixels (0: all 784) and is
    scaled to 784 (each of its steps is the same full pass); identical: its samples equal the cached ones
    over the pixels it drew."""
    from engine.models.pixelcnn import sample_cached, sample_naive, start_state
    name = f"{net}-mnist"
    model = (api.load(name) if name in api.bundled() else api.build(net)).eval()
    canvas, uniforms, _ = start_state(model, batch, torch.Generator().manual_seed(0))
    stop = naive_pixels or model.n_pixels
    cached_s, (cached, _) = _best_time(lambda: sample_cached(model, canvas, uniforms), rounds)
    naive_s, (naive, _) = _best_time(lambda: sample_naive(model, canvas, uniforms, 0, stop), rounds)
    naive_s *= model.n_pixels / stop
    how = "run in full" if stop == model.n_pixels else f"timed over the first {stop} pixels and scaled to 784"
    return {"what": f"{net} {model.config.channels} channels x {model.config.layers} layers, {batch} images, naive {how}",
            "naive_s": naive_s, "cached_s": cached_s, "ratio": naive_s / cached_s,
            "identical": bool(torch.equal(naive[:, :stop], cached[:, :stop]))}


SECTIONS = {"made": made_sampling, "wavenet": wavenet_sampling, "pixelcnn": pixelcnn_sampling,
            "gated-pixelcnn": lambda **kw: pixelcnn_sampling(net="gated-pixelcnn", **kw)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--wavenet-seconds", type=float, default=1.0,
                        help="audio length of the wavenet section (shorter: a quick run; below R + 200 samples the "
                             "naive side runs in full, its window still growing, so the ratio is lower than for 1 s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.sections:
        extra = {"seconds": args.wavenet_seconds} if name == "wavenet" else {}
        r = SECTIONS[name](batch=args.batch, rounds=args.rounds, **extra)
        print(f"{name}: {r['what']}: naive {r['naive_s']:.3f} s, cached {r['cached_s']:.3f} s, "
              f"ratio {r['ratio']:.1f}x, identical samples: {r['identical']}")


if __name__ == "__main__":
    main()
