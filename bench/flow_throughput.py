"""Training images/s of the engine's Glow against a bare PyTorch loop on the same architecture.

What it measures: Adam steps (lr 1e-3) on batches of 64 MNIST training digits (8-bit grey levels,
dequantized with fresh uniform noise, logit transform with alpha = 0.05, bits/dim loss), for
- the engine: `api.build("glow")` (the bundled preset: 2 levels x 8 steps, hidden 64, 152k parameters)
  and its `train_step` (the step the Trainer calls: schedule bookkeeping, gradient-norm clipping at 100,
  the loss's four reported terms),
- a bare loop: the same layers (squeeze, actnorm, LU 1x1 conv, affine coupling with sigmoid(h + 2), split
  with a learned prior, the same conv nets) written below as one plain module with no layer classes,
  no per-layer log-det tensors and no reported terms: loss, backward, Adam step.
Both run in this one process on one thread (torch.set_num_threads(1)), one case after the other in
rounds (warm-up steps first), and the ratio uses each side's best round. Target: engine >= 0.9x bare
(issue 8: ~280 img/s on one free core for the 151k-parameter model). Other processes on the machine
slow both sides alike but make single rounds noisy.

    PYTHONPATH=. .venv/bin/python bench/flow_throughput.py [--steps 20] [--rounds 3]
"""
from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from engine import api
from engine.data import mnist

BATCH, LR, ALPHA, TARGET = 64, 1e-3, 0.05, 0.9


def coupling_net(kept: int, free: int, hidden: int) -> nn.Sequential:
    net = nn.Sequential(nn.Conv2d(kept, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                        nn.Conv2d(hidden, 2 * free, 3, padding=1))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


class BareGlow(nn.Module):
    """The engine's Glow architecture in one module: flat parameter lists and one loss function."""

    def __init__(self, levels: int = 2, steps: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.levels, self.steps = levels, steps
        self.an_bias, self.an_logs = nn.ParameterList(), nn.ParameterList()
        self.lower, self.upper, self.log_s = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        self.perms, self.signs, self.nets, self.priors = [], [], nn.ModuleList(), nn.ModuleList()
        c = 1
        for level in range(levels):
            c *= 4
            for _ in range(steps):
                self.an_bias.append(nn.Parameter(torch.zeros(1, c, 1, 1)))
                self.an_logs.append(nn.Parameter(torch.zeros(1, c, 1, 1)))
                p, lo, up = torch.linalg.lu(torch.linalg.qr(torch.randn(c, c))[0])
                self.perms.append(p)
                self.signs.append(up.diagonal().sign())
                self.lower.append(nn.Parameter(lo.tril(-1)))
                self.upper.append(nn.Parameter(up.triu(1)))
                self.log_s.append(nn.Parameter(up.diagonal().abs().log()))
                self.nets.append(coupling_net(c // 2, c - c // 2, hidden))
            if level < levels - 1:
                prior = nn.Conv2d(c // 2, 2 * (c - c // 2), 3, padding=1)
                nn.init.zeros_(prior.weight)
                nn.init.zeros_(prior.bias)
                self.priors.append(prior)
                c //= 2
        self.initialized = False

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean bits/dim of the 8-bit images x (N, 784), fresh dequantization noise."""
        n = len(x)
        y = (torch.clamp(torch.round(x * 256), 0, 255) + torch.rand_like(x)) / 256
        p = ALPHA + (1 - 2 * ALPHA) * y
        q = ALPHA + (1 - 2 * ALPHA) * (1 - y)
        h = (torch.log(p) - torch.log(q)).reshape(n, 1, 28, 28)
        log_p = (math.log1p(-2 * ALPHA) - torch.log(p) - torch.log(q)).sum(1)
        i = 0
        for level in range(self.levels):
            b, c, hh, ww = h.shape
            h = h.reshape(b, c, hh // 2, 2, ww // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, hh // 2, ww // 2)
            c, hw = 4 * c, (hh // 2) * (ww // 2)
            for _ in range(self.steps):
                if not self.initialized:
                    with torch.no_grad():
                        self.an_bias[i].copy_(-h.mean((0, 2, 3), keepdim=True))
                        self.an_logs[i].copy_(-torch.log(h.std((0, 2, 3), keepdim=True, unbiased=False) + 1e-6))
                h = (h + self.an_bias[i]) * torch.exp(self.an_logs[i])
                w = self.perms[i] @ (self.lower[i].tril(-1) + torch.eye(c)) @ (
                    self.upper[i].triu(1) + torch.diag(self.signs[i] * torch.exp(self.log_s[i])))
                h = F.conv2d(h, w[:, :, None, None])
                t, raw = self.nets[i](h[:, :c // 2]).chunk(2, 1)
                log_s = F.logsigmoid(raw + 2)
                h = torch.cat([h[:, :c // 2], (h[:, c // 2:] + t) * torch.exp(log_s)], 1)
                log_p = log_p + hw * (self.an_logs[i].sum() + self.log_s[i].sum()) + log_s.sum((1, 2, 3))
                i += 1
            if level < self.levels - 1:
                mu, log_sigma = self.priors[level](h[:, :c // 2]).chunk(2, 1)
                eps = (h[:, c // 2:] - mu) * torch.exp(-log_sigma)
                log_p = log_p - 0.5 * (eps ** 2).sum((1, 2, 3)) - log_sigma.sum((1, 2, 3)) - 0.5 * eps[0].numel() * math.log(2 * math.pi)
                h = h[:, :c // 2]
        log_p = log_p - 0.5 * (h ** 2).sum((1, 2, 3)) - 0.5 * h[0].numel() * math.log(2 * math.pi)
        self.initialized = True
        return (-log_p / (784 * math.log(2)) + 8).mean()


def rate(step, batches) -> float:
    """Images per second over the batches."""
    start = time.perf_counter()
    for b in batches:
        step(b)
    return len(batches) * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = mnist.images("train")
    batches = [data[i * BATCH:(i + 1) * BATCH] for i in range(args.steps)]
    engine = api.build("glow")
    engine.train()
    opts, g = engine.make_optimizers(lr=LR), torch.Generator().manual_seed(1)
    bare = BareGlow()
    bare_opt = torch.optim.Adam(bare.parameters(), lr=LR)

    def bare_step(x):
        bare_opt.zero_grad(set_to_none=True)
        loss = bare.loss(x)
        loss.backward()
        bare_opt.step()

    def engine_step(x):
        engine.train_step(x, opts, generator=g)

    params = (sum(p.numel() for p in engine.parameters()), sum(p.numel() for p in bare.parameters()))
    print(f"parameters: engine {params[0]:,}, bare {params[1]:,}; batch {BATCH}; threads {torch.get_num_threads()}")
    for step in (engine_step, bare_step):  # warm-up (and actnorm initialization)
        rate(step, batches[:3])
    results = {"engine": [], "bare": []}
    for r in range(args.rounds):
        results["engine"].append(rate(engine_step, batches))
        results["bare"].append(rate(bare_step, batches))
        print(f"round {r + 1}: engine {results['engine'][-1]:6.1f} img/s, bare {results['bare'][-1]:6.1f} img/s")
    best = {k: max(v) for k, v in results.items()}
    ratio = best["engine"] / best["bare"]
    print(f"best: engine {best['engine']:.1f} img/s, bare {best['bare']:.1f} img/s, ratio {ratio:.2f}x "
          f"(target >= {TARGET}x): {'met' if ratio >= TARGET else 'NOT MET'}")


if __name__ == "__main__":
    main()
