"""Issue 9's DBM benchmarks on the bundled dbm-mnist (784-500-1000), each against its target:

1. one joint epoch's time vs its FLOP count at the measured fp32 matmul rate (within 1.5x);
2. AIS with 20,000 temperatures and 100 runs in 2 minutes or less (timed on the first 2,000 temperatures and
   scaled, unless --full);
3. mean field for one digit (30 sweeps) and its importance-sampled estimate (k = 1,000) under 100 ms (p95 of 30).

    PYTHONPATH=. .venv/bin/python bench/dbm_speed.py [--full] [--steps 50]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from engine import api
from engine.models.dbm import DBMLearning


def matmul_rate(B: int = 100) -> float:
    """fp32 GFLOP/s of the products a joint step does, (100 x 784)(784 x 500) and (100 x 500)(500 x 1000)."""
    a, w1 = torch.rand(B, 784), torch.rand(784, 500)
    b, w2 = torch.rand(B, 500), torch.rand(500, 1000)
    for _ in range(5):
        a @ w1, b @ w2
    n, start = 200, time.perf_counter()
    for _ in range(n):
        a @ w1
        b @ w2
    return 2 * n * B * (784 * 500 + 500 * 1000) / (time.perf_counter() - start) / 1e9


def joint_step_flops(B: int = 100, chains: int = 100, mf: int = 5, pcd: int = 1, D=784, F1=500, F2=1000) -> float:
    """Multiply-adds x 2 of one joint update: mean field (v W1 once, 2 products per sweep plus the doubled start),
    PCD sweeps (p(v|h1), p(h2|h1), p(h1|v,h2) per sweep), and the four gradient products."""
    mf_cost = B * D * F1 + B * F1 * F2 + mf * 2 * B * F1 * F2
    pcd_cost = pcd * chains * (2 * D * F1 + 2 * F1 * F2)
    grad_cost = (B + chains) * (D * F1 + F1 * F2)
    return 2.0 * (mf_cost + pcd_cost + grad_cost)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="time all 20,000 AIS temperatures")
    parser.add_argument("--steps", type=int, default=50, help="joint updates timed")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = api.load("dbm-mnist")
    rate = matmul_rate()
    print(f"fp32 matmul rate on the joint step's shapes: {rate:.1f} GFLOP/s ({torch.get_num_threads()} threads)")

    learner = DBMLearning(model, pretrain_epochs=0, verbose=False, ais_every=0)
    learner.set_progress(0.0)  # phase 2 already: keeps the bundled weights
    g = torch.Generator().manual_seed(0)
    batches = api.mnist.batches("train", 100, generator=g)
    batch = next(batches)
    learner.step(batch, generator=g)  # warm-up (starts the chains)
    start = time.perf_counter()
    for _ in range(args.steps):
        learner.step(next(batches), generator=g)
    per_step = (time.perf_counter() - start) / args.steps
    epoch = per_step * 500
    predicted = 500 * joint_step_flops() / (rate * 1e9)
    ratio = epoch / predicted
    print(f"joint epoch (500 updates, MF-5, PCD-1, 100 chains): {epoch:.1f} s measured, {predicted:.1f} s from "
          f"{500 * joint_step_flops() / 1e9:.0f} GFLOP at the matmul rate; ratio {ratio:.2f} "
          f"({'met' if ratio <= 1.5 else 'NOT MET'}: within 1.5x)")

    base = model.base_rates(api.mnist.binarized("train", seed=1)[:2000])
    betas = 20_000 if args.full else 2_000
    start = time.perf_counter()
    model.ais_log_z(base, n_runs=100, n_betas=betas, generator=torch.Generator().manual_seed(0))
    seconds = (time.perf_counter() - start) * 20_000 / betas
    print(f"AIS, 100 runs x 20,000 temperatures: {seconds:.0f} s{'' if args.full else ' (scaled from 2,000)'} "
          f"({'met' if seconds <= 120 else 'NOT MET'}: 2 minutes or less)")

    log_z = api.read_metrics(api.resolve("dbm-mnist"))["test_log_likelihood"]["log_z"]["estimate"]
    test = api.mnist.binarized("test")
    times = []
    with torch.no_grad():
        for i in range(31):
            v = test[i:i + 1]
            start = time.perf_counter()
            mu1, _ = model.mean_field(v, 30)
            model.importance_log_p_star(v, 1000, generator=g, mu1=mu1)["log_p_star"] - log_z
            times.append(time.perf_counter() - start)
    p95 = float(np.percentile(np.array(times[1:]) * 1000, 95))
    print(f"mean field (30 sweeps) + IS (k = 1,000) for one digit: p95 {p95:.0f} ms over 30 digits "
          f"({'met' if p95 <= 100 else 'NOT MET'}: under 100 ms)")


if __name__ == "__main__":
    main()
