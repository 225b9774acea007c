"""Transformer-XL's "1,800x faster evaluation" (Dai et al. 2019, sec. 3.2, table 9), measured here: time per
predicted token with state reuse against the vanilla model recomputing its window of the last A tokens, at
attention lengths A = 64..1024, side by side in one process. Target: the vanilla / XL ratio (XL predicting a
segment per call, as in the paper) at least 100x at A = 1024 and growing with A. The one-token-per-call ratio
is printed too. Uses the bundled txl-wikitext2 / vanilla-wikitext2 checkpoints when present, else untrained
models of the default config (the timings do not depend on the weights).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/txl_eval_speed.py
"""
from __future__ import annotations

import torch

from engine import api
from engine.txl_speed import PAPER_POINTS, iter_speed_curve

LENGTHS = (64, 128, 256, 512, 1024)


def models():
    """(xl, vanilla, description)."""
    have = api.bundled()
    if "txl-wikitext2" in have and "vanilla-wikitext2" in have:
        return (api.load("txl-wikitext2"), api.load("vanilla-wikitext2"),
                "bundled checkpoints txl-wikitext2 / vanilla-wikitext2")
    return (api.build("transformer-xl"), api.build("vanilla-transformer"),
            "untrained models of the default config (no bundled checkpoints; timings do not depend on the weights)")


def main() -> None:
    torch.manual_seed(0)
    xl, vanilla, what = models()
    c = xl.config
    print(f"models: {what}")
    print(f"d_model {c.d_model}, {c.n_layer} layers, vocab {c.n_tokens}; batch 1; {torch.get_num_threads()} thread(s), "
          f"device {xl.device}")
    result = None
    for event in iter_speed_curve(xl, vanilla, LENGTHS):
        result = event.get("result", result)
    S = result["segment"]
    print("\nms per predicted token (median); XL memory = the previous A - 1 positions")
    print(f"{'A':>6}{'XL 1 tok/call':>15}{f'XL {S} tok/call':>16}{'vanilla':>10}{'ratio 1 tok':>13}"
          f"{f'ratio {S} tok':>14}")
    for a, x1, xs, v, r1, rs in zip(*(result[k] for k in ("length", "xl_ms", "xl_segment_ms", "vanilla_ms",
                                                          "ratio", "segment_ratio"))):
        print(f"{a:>6}{x1:>15.2f}{xs:>16.3f}{v:>10.1f}{r1:>12.1f}x{rs:>13.0f}x")
    print("paper (GPU): " + ", ".join(f"{r}x at A={a}" for a, r in zip(PAPER_POINTS["length"], PAPER_POINTS["ratio"])))
    seg = result["segment_ratio"]
    checks = [(f"ratio ({S} tokens per call) at A={LENGTHS[-1]} >= 100x", seg[-1] >= 100),
              ("ratio grows with A", all(b > a for a, b in zip(seg, seg[1:])))]
    for text, ok in checks:
        print(f"{'met    ' if ok else 'NOT MET'}  {text}")


if __name__ == "__main__":
    main()
