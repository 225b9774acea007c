"""The 2-D GAN lab's session: one GAN2D, one target, and the game played one update at a time.

A `Lab` owns the model, both optimizers, a seeded random stream, counters and the loss history. Its
methods are what the page's buttons do (one D update, one G update, one round of d_steps D updates then
one G update, n rounds) and `snapshot()` is what the page draws: plain numpy arrays taken under a lock, so
a background thread may train while the page reads. No streamlit here.

Same settings and seed, same run: every random draw (initial weights, data, noise, the penalty's
interpolation points) comes from generators seeded by `seed`.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from engine.data import toy2d
from engine.models.gan2d import GAN2D, GAN2DConfig


@dataclass(frozen=True)
class LabSettings:
    """Everything that defines a run. The three marked live can change while it trains."""

    target: str = "ring8"
    loss: str = "wgan-gp"
    noise_dim: int = 2
    seed: int = 0
    g_lr: float = 1e-3  # live
    d_lr: float = 1e-3  # live
    d_steps: int = 5  # live: D updates per G update
    batch_size: int = 256
    hidden: tuple[int, ...] = (64, 64, 64)


# Each loss's usual settings in this lab (the page fills them in when the loss changes).
LOSS_DEFAULTS = {
    "minimax": {"g_lr": 1e-3, "d_lr": 1e-3, "d_steps": 1},
    "non-saturating": {"g_lr": 1e-3, "d_lr": 1e-3, "d_steps": 1},
    "wgan-clip": {"g_lr": 5e-4, "d_lr": 5e-4, "d_steps": 5},
    "wgan-gp": {"g_lr": 1e-3, "d_lr": 1e-3, "d_steps": 5},
}

# The two runs the lecture needs, on the ring of 8 Gaussians. tests/test_gan_math.py checks them with these
# seeds: the first stays on at most 2 modes for PRESET_STEPS steps, the second covers at least 7 by then.
PRESETS = {  # id: (label, settings, what to watch)
    "collapse": ("Mode collapse", LabSettings(loss="non-saturating", g_lr=1e-2, d_lr=5e-4, d_steps=1, seed=1),
                 "Non-saturating GAN, G learning 20 times faster than D, one D step per G step: G's points all "
                 "rush to where D is fooled, D learns that spot, and the whole cloud jumps somewhere else."),
    "wgan-gp": ("WGAN-GP cures it", LabSettings(loss="wgan-gp", g_lr=1e-3, d_lr=1e-3, d_steps=5, seed=1),
                "The same ring with WGAN-GP: a critic trained 5 steps per G step under a gradient penalty gives G "
                "useful gradients everywhere, so its points spread over all 8 modes."),
}
PRESET_STEPS = 250

EXTENT = toy2d.PLANE  # the lab draws [-EXTENT, EXTENT]^2
EVAL_POINTS, EVAL_EVERY = 2000, 25  # coverage measured on a fixed noise batch every EVAL_EVERY G updates


@dataclass
class Snapshot:
    """What the page draws, as numpy arrays (float32) and plain numbers."""

    settings: LabSettings
    step: int  # G updates so far (one per round)
    d_updates: int
    real: np.ndarray  # (N, 2) a fixed sample of the target
    fake: np.ndarray  # (N, 2) G of a fixed noise batch
    value: np.ndarray  # (R, R) D(x) or f(x) over the plane, row 0 at y = -EXTENT
    value_label: str
    manifold: np.ndarray  # (L, P, 2) G's image of noise-grid lines
    arrows_at: np.ndarray  # (M, 2) generated points
    arrows: np.ndarray  # (M, 2) -d(G's loss)/dx there
    curves: dict[str, np.ndarray]  # "step" and each logged term, averaged into at most `max_points` windows
    coverage: dict  # the latest coverage measurement (toy2d.coverage) with its "step"
    coverage_curve: dict[str, np.ndarray]
    steps_per_s: float


@dataclass
class Lab:
    settings: LabSettings = field(default_factory=LabSettings)
    points: torch.Tensor | None = None  # the user's standardized set, for target "points"
    view_points: int = 600

    def __post_init__(self) -> None:
        s = self.settings
        if s.target == "points":
            toy2d.check_points(self.points if self.points is not None else torch.zeros(0, 2))
        config = GAN2DConfig(noise_dim=s.noise_dim, loss=s.loss, g_lr=s.g_lr, d_lr=s.d_lr, d_steps=s.d_steps,
                             g_hidden=s.hidden, d_hidden=s.hidden)
        self.model = GAN2D(config)
        self.model.init_weights(torch.Generator().manual_seed(s.seed))
        self.opt_d, self.opt_g = self.model.make_optimizers()
        self.rng = torch.Generator().manual_seed(s.seed + 1)  # training data, noise and penalty points
        fixed = torch.Generator().manual_seed(s.seed + 2)
        self.view_z = self.model.noise(self.view_points, generator=fixed)
        self.view_real = self.real(self.view_points, generator=fixed)
        self.eval_z = self.model.noise(EVAL_POINTS, generator=fixed)
        self.eval_real = self.real(EVAL_POINTS, generator=fixed)
        self.lock = threading.RLock()
        self.step, self.d_updates = 0, 0
        self.last_d: dict[str, float] = {}
        self.history: dict[str, list[float]] = {}
        self.coverage_history: list[dict] = []
        self.times: deque[tuple[float, int]] = deque(maxlen=200)
        self._measure()

    # --- data ----------------------------------------------------------------------------------
    def real(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points of the target: (n, 2)."""
        return toy2d.sample(self.settings.target, n, generator=generator or self.rng, points=self.points)

    # --- live settings -------------------------------------------------------------------------
    def set_rates(self, *, g_lr: float, d_lr: float, d_steps: int) -> None:
        """Change the learning rates (in the optimizers' state) and D updates per G update; training goes on."""
        if min(g_lr, d_lr) <= 0 or d_steps < 1:
            raise ValueError("learning rates must be positive and d_steps at least 1")
        with self.lock:
            for group in self.opt_g.param_groups:
                group["lr"] = g_lr
            for group in self.opt_d.param_groups:
                group["lr"] = d_lr
            self.settings = replace(self.settings, g_lr=g_lr, d_lr=d_lr, d_steps=int(d_steps))

    # --- the game ------------------------------------------------------------------------------
    def step_d(self) -> dict[str, float]:
        """One update of D (the critic) on a fresh real batch."""
        with self.lock:
            self.last_d = self.model.step_discriminator(self.real(self.settings.batch_size), self.opt_d,
                                                        generator=self.rng)
            self.d_updates += 1
            return self.last_d

    def step_g(self) -> dict[str, float]:
        """One update of G against the current D; logs the round's numbers."""
        with self.lock:
            g = self.model.step_generator(self.settings.batch_size, self.opt_g, generator=self.rng)
            self.step += 1
            self._log({**self.last_d, **g})
            return g

    def round(self) -> dict[str, float]:
        """d_steps updates of D, then one of G: one step of the training loop."""
        with self.lock:
            for _ in range(self.settings.d_steps):
                self.step_d()
            return self.step_g()

    def run(self, n: int, *, cancel: threading.Event | None = None) -> None:
        """n rounds (fewer if `cancel` gets set); the lock is released between rounds."""
        for _ in range(n):
            if cancel is not None and cancel.is_set():
                return
            self.round()

    def _log(self, terms: dict[str, float]) -> None:
        row, n = {"step": float(self.step), **terms}, len(self.history.get("step", ()))
        for key in [*row, *(k for k in self.history if k not in row)]:  # same length for every column
            self.history.setdefault(key, [math.nan] * n).append(row.get(key, math.nan))
        self.times.append((time.perf_counter(), self.step))
        if self.step % EVAL_EVERY == 0:
            self._measure()

    @torch.no_grad()
    def _measure(self) -> None:
        cov = toy2d.coverage(self.settings.target, self.model.generate(self.eval_z), self.eval_real)
        self.coverage_history.append({"step": self.step, **cov})

    def coverage(self) -> dict:
        """Coverage of the target by G's samples on a fixed noise batch, measured now."""
        with self.lock:
            with torch.no_grad():
                return toy2d.coverage(self.settings.target, self.model.generate(self.eval_z), self.eval_real)

    # --- what the page draws -------------------------------------------------------------------
    def snapshot(self, *, resolution: int = 64, arrows: int = 120, max_points: int = 300) -> Snapshot:
        with self.lock:
            m = self.model
            with torch.no_grad():
                fake = m.generate(self.view_z)
                value = m.value_map(EXTENT, resolution)
                manifold = m.manifold()
            at, push = m.generator_gradients(self.view_z[:arrows])
            return Snapshot(
                settings=self.settings, step=self.step, d_updates=self.d_updates,
                real=self.view_real.numpy(), fake=fake.numpy(), value=value.numpy(),
                value_label="critic f(x)" if m.wasserstein else "D(x)", manifold=manifold.numpy(),
                arrows_at=at.numpy(), arrows=push.numpy(),
                curves=_windows({k: np.asarray(v, dtype=np.float64) for k, v in self.history.items()}, max_points),
                coverage=dict(self.coverage_history[-1]),
                coverage_curve={k: np.asarray([c[k] for c in self.coverage_history])
                                for k in self.coverage_history[-1] if np.isscalar(self.coverage_history[-1][k])},
                steps_per_s=self._rate())

    def _rate(self) -> float:
        """G updates per second over the last few seconds (0 when idle for more than a second)."""
        now = time.perf_counter()
        recent = [(t, s) for t, s in self.times if now - t < 3.0]
        if len(recent) < 2 or now - recent[-1][0] > 1.0:
            return 0.0
        return (recent[-1][1] - recent[0][1]) / max(recent[-1][0] - recent[0][0], 1e-6)


def _windows(columns: dict[str, np.ndarray], max_points: int) -> dict[str, np.ndarray]:
    """Average every column over windows of w consecutive steps so at most `max_points` remain; each window
    is plotted at its last step, and a last partial window keeps the newest step on the curve."""
    n = len(columns.get("step", ()))
    w = max(1, -(-n // max_points))
    if w == 1:
        return columns
    starts = np.arange(0, n, w)
    out = {k: np.add.reduceat(v, starts) / np.diff(np.append(starts, n)) for k, v in columns.items()}
    out["step"] = columns["step"][np.minimum(starts + w, n) - 1]
    return out


def from_preset(name: str, **overrides) -> Lab:
    """A fresh Lab with a preset's settings (KeyError naming the choices for an unknown name)."""
    if name not in PRESETS:
        raise KeyError(f"unknown lab preset {name!r}; choose from {', '.join(PRESETS)}")
    return Lab(replace(PRESETS[name][1], **overrides))
