"""Transformer-XL's evaluation speed-up, measured live: state reuse against recomputing a sliding window.

Dai et al. 2019, "Transformer-XL", sec. 3.2 and table 9: to predict the next token with A tokens of context,
the vanilla model (Al-Rfou et al. 2019) must run the whole window of the last A tokens through the network
again, shifted by one position, for every prediction; Transformer-XL keeps the hidden states of the previous
positions (its memory) and only runs the new tokens. The paper reports the vanilla model 363x slower at
attention length 800 and 1,874x slower at 3,800, per token on one GPU, with XL predicting a segment of new
tokens per forward pass.

Two XL timings are taken at each attention length A, both with a memory of the previous A - 1 positions
(so every prediction sees at least A positions, never fewer than the vanilla window):
- `xl_ms`: one new token per `run` call (the memory then holds exactly the A - 1 positions before it);
- `xl_segment_ms`: `segment` new tokens per call (the paper's evaluation, default the training segment
  length), the call's time divided by `segment`.
Each call also computes the log-probabilities of every new position, as evaluation does. The memory caches
each layer's inputs, not its keys and values, so one-token XL still projects all A cached states per layer
(O(A d^2) per token); the vanilla model costs O(A d^2 + A^2 d) per token. Times are medians in milliseconds
per predicted token, after one untimed warm-up call.
"""
from __future__ import annotations

import time
from typing import Callable, Iterator

import torch

PAPER_POINTS = {
    "length": [800, 3800],
    "ratio": [363, 1874],
    "note": "Dai et al. 2019, table 9: per-token evaluation time of the vanilla Transformer (Al-Rfou et al. "
            "2019) over Transformer-XL at attention lengths 800 and 3,800, enwik8 models on one GPU",
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(step: Callable[[], None], device: torch.device, repeats: int, budget_s: float) -> float:
    """Median wall time of `step()` in ms over up to `repeats` calls after one warm-up call; fewer calls
    (at least min(repeats, 3)) when the warm-up says `repeats` would not fit in `budget_s` seconds."""
    _sync(device)
    start = time.perf_counter()
    step()
    _sync(device)
    warm = time.perf_counter() - start
    n = min(repeats, max(3, int(budget_s / max(warm, 1e-6))))
    times = []
    for _ in range(n):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


@torch.no_grad()
def xl_token_ms(model, length: int, *, segment: int = 1, repeats: int = 9, budget_s: float = 5.0,
                generator: torch.Generator | None = None) -> float:
    """ms per predicted token for Transformer-XL with state reuse at attention length `length` (A): the
    memory is prefilled (untimed) with A - 1 random tokens, then each timed call runs `segment` new tokens
    (B = 1) with `mem_len = A - 1` and takes their log-probabilities (segment, V)."""
    device, V = model.device, model.config.n_tokens
    mem_len = length - 1
    prefill = torch.randint(0, V, (1, max(mem_len, 1)), generator=generator).to(device)
    memory = model.run(prefill, None, mem_len=mem_len)[1] if mem_len else None
    new = torch.randint(0, V, (1, segment), generator=generator).to(device)

    def step() -> None:
        nonlocal memory
        hidden, memory, _ = model.run(new, memory, mem_len=mem_len)  # the memory stays at A - 1 positions
        model.log_probs(hidden)

    return _median_ms(step, device, repeats, budget_s) / segment


@torch.no_grad()
def vanilla_token_ms(model, length: int, *, repeats: int = 9, budget_s: float = 5.0,
                     generator: torch.Generator | None = None) -> float:
    """ms per predicted token for the vanilla model: the whole window (1, A) of the last A tokens is run
    from scratch and only the last position's log-probabilities (1, V) are taken."""
    window = torch.randint(0, model.config.n_tokens, (1, length), generator=generator).to(model.device)
    return _median_ms(lambda: model.log_probs(vanilla_last(model, window)), model.device, repeats, budget_s)


def vanilla_last(model, window: torch.Tensor) -> torch.Tensor:
    """(B, A) window -> (B, 1, d) hidden state of its last position, recomputed from scratch."""
    return model.run(window)[0][:, -1:]


def iter_speed_curve(xl, vanilla, lengths=(64, 128, 256, 512, 1024), *, repeats: int = 9,
                     segment: int | None = None, budget_s: float = 60.0, seed: int = 0) -> Iterator[dict]:
    """Yield {"progress": fraction} after each measurement, then {"progress": 1.0, "result": {...}} with
    per-length lists "length", "xl_ms" (one token per call), "xl_segment_ms" (`segment` tokens per call,
    default xl.config.tgt_len), "vanilla_ms", "ratio" = vanilla_ms / xl_ms, "segment_ratio" = vanilla_ms /
    xl_segment_ms, plus "segment", "threads" and "device". `budget_s` bounds the timed calls (each of the
    3 * len(lengths) measurements gets an equal share; at least min(repeats, 3) calls each)."""
    segment = segment or xl.config.tgt_len
    lengths = [int(a) for a in lengths]
    if min(lengths) < 1 or segment < 1:
        raise ValueError("lengths and segment must be positive")
    share = budget_s / (3 * len(lengths))
    modes = {id(m): m.training for m in (xl, vanilla)}
    xl.eval(), vanilla.eval()
    g = torch.Generator().manual_seed(seed)
    out = {"length": lengths, "xl_ms": [], "xl_segment_ms": [], "vanilla_ms": []}
    try:
        done, total = 0, 3 * len(lengths)
        for a in lengths:
            out["xl_ms"].append(xl_token_ms(xl, a, repeats=repeats, budget_s=share, generator=g))
            out["xl_segment_ms"].append(xl_token_ms(xl, a, segment=segment, repeats=repeats, budget_s=share,
                                                    generator=g))
            done += 2
            yield {"progress": done / total}
            out["vanilla_ms"].append(vanilla_token_ms(vanilla, a, repeats=repeats, budget_s=share, generator=g))
            done += 1
            yield {"progress": min(done / total, 0.999)}
    finally:
        xl.train(modes[id(xl)]), vanilla.train(modes[id(vanilla)])
    out["ratio"] = [v / x for v, x in zip(out["vanilla_ms"], out["xl_ms"])]
    out["segment_ratio"] = [v / x for v, x in zip(out["vanilla_ms"], out["xl_segment_ms"])]
    out.update(segment=segment, threads=torch.get_num_threads(), device=str(xl.device))
    yield {"progress": 1.0, "result": out}
