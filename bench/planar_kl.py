"""The planar-flow targets of issue 8, read from the bundled checkpoints' metrics (written by `python -m
engine eval`): KL(K=8) at least 0.3 below KL(K=2) on every target; K=8 KL <= 0.10 on U1 and U2; K=32 KL <=
0.40 on U3 and U4. Prints one table and whether each target is met.

    PYTHONPATH=. .venv/bin/python bench/planar_kl.py
"""
from __future__ import annotations

from engine import api
from engine.data import energies2d


def main() -> None:
    kl = {}
    print(f"{'target':<7}{'log Z':>8}" + "".join(f"{f'K={k} KL ± s.e. (grid)':>30}" for k in (2, 8, 32)) + f"{'train s, 3 runs':>17}")
    for t in energies2d.NAMES:
        cells, seconds = [], 0.0
        for k in (2, 8, 32):
            m = api.read_metrics(api.resolve(f"planar-{t}-k{k}"))
            r = m["reverse_kl"]
            kl[t, k] = r["kl"]
            seconds += m.get("training", {}).get("seconds", 0.0)
            cells.append(f"{r['kl']:.3f} ± {r['stderr']:.3f} (grid {r['grid_kl']:.3f})")
        print(f"{t.upper():<7}{energies2d.LOG_Z[t]:>8.4f}" + "".join(f"{c:>30}" for c in cells) + f"{seconds:>17.0f}")
    checks = [(f"KL(K=8) <= KL(K=2) - 0.3 on {t.upper()}", kl[t, 8] <= kl[t, 2] - 0.3) for t in energies2d.NAMES]
    checks += [(f"KL(K=8) <= 0.10 on {t.upper()}", kl[t, 8] <= 0.10) for t in ("u1", "u2")]
    checks += [(f"KL(K=32) <= 0.40 on {t.upper()}", kl[t, 32] <= 0.40) for t in ("u3", "u4")]
    for text, ok in checks:
        print(f"{'met    ' if ok else 'NOT MET'}  {text}")


if __name__ == "__main__":
    main()
