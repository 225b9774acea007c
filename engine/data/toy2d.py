"""Two-dimensional target distributions for the GAN lab, and a user's own point set.

Every sampler returns (N, 2) float32 points on one plane, roughly [-3, 3] x [-3, 3] ("the plane"), drawn
with a torch.Generator (same seed, same points). References for the mixtures: the ring of 8 Gaussians
and the grid of 25 are the mode-collapse benchmarks of Metz et al. 2017 ("Unrolled GANs") and
Srivastava et al. 2017 ("VEEGAN"), which also define the two numbers measured here: modes covered and
the fraction of high-quality samples (within 3 standard deviations of a mode's centre).

A user's set comes as text ("x, y" per line, CSV with an optional header); `parse_points` checks it and
`standardize` fits it into the plane, keeping its aspect ratio.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import torch

PLANE = 3.0  # the plane drawn by the lab is [-PLANE, PLANE]^2
FIT = 2.5  # a user's set is scaled so its larger half-extent is FIT
MIN_POINTS, MAX_POINTS, MAX_ABS = 10, 20_000, 1e6
JITTER = 0.04  # a user's set is sampled with replacement plus N(0, JITTER^2) noise (a smooth density)


class BadPoints(ValueError):
    """A user's point set that cannot be used; the message says why, in words a person can act on."""


@dataclass(frozen=True)
class Target:
    """A target distribution: its name, a label for people, and the mixture's centres and std (if any)."""

    name: str
    label: str
    centers: torch.Tensor | None = None  # (K, 2) for Gaussian mixtures
    sigma: float = 0.0


def ring_centers(k: int = 8, radius: float = 2.0) -> torch.Tensor:
    """(k, 2) centres evenly spaced on a circle."""
    angle = torch.arange(k) * (2 * math.pi / k)
    return radius * torch.stack([angle.cos(), angle.sin()], 1)


def grid_centers(side: int = 5, spacing: float = 1.0) -> torch.Tensor:
    """(side^2, 2) centres on a square grid centred at the origin."""
    r = (torch.arange(side) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(r, r)


TARGETS = {
    "ring8": Target("ring8", "Ring of 8 Gaussians", ring_centers(), 0.08),
    "grid25": Target("grid25", "Grid of 25 Gaussians", grid_centers(), 0.05),
    "moons": Target("moons", "Two moons"),
    "spiral": Target("spiral", "Spiral"),
    "points": Target("points", "Your points"),
}


def mixture(centers: torch.Tensor, sigma: float, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """n points from an equal-weight mixture of isotropic Gaussians: (n, 2)."""
    which = torch.randint(len(centers), (n,), generator=generator)
    return centers[which] + sigma * torch.randn(n, 2, generator=generator)


def moons(n: int, generator: torch.Generator | None, noise: float = 0.06) -> torch.Tensor:
    """Two interleaved half circles (scikit-learn's make_moons), centred and scaled by 1.6: (n, 2)."""
    t = math.pi * torch.rand(n, generator=generator)
    upper = torch.rand(n, generator=generator) < 0.5
    x = torch.where(upper, t.cos(), 1 - t.cos())
    y = torch.where(upper, t.sin(), 0.5 - t.sin())
    pts = torch.stack([x - 0.5, y - 0.25], 1) * 1.6
    return pts + noise * torch.randn(n, 2, generator=generator)


def spiral(n: int, generator: torch.Generator | None, noise: float = 0.05) -> torch.Tensor:
    """One arm of an Archimedean spiral, radius 0.3 to 2.5 over two turns: (n, 2)."""
    s = torch.rand(n, generator=generator).sqrt()  # uniform along the arm's length, roughly
    angle, radius = 4 * math.pi * s, 0.3 + 2.2 * s
    pts = radius[:, None] * torch.stack([angle.cos(), angle.sin()], 1)
    return pts + noise * torch.randn(n, 2, generator=generator)


def rings(n: int, generator: torch.Generator | None, noise: float = 0.08) -> torch.Tensor:
    """Two concentric circles, radius 1 and 2.2, points spread evenly along their length: (n, 2)."""
    outer = torch.rand(n, generator=generator) < 2.2 / 3.2
    angle = 2 * math.pi * torch.rand(n, generator=generator)
    radius = torch.where(outer, 2.2, 1.0)
    pts = radius[:, None] * torch.stack([angle.cos(), angle.sin()], 1)
    return pts + noise * torch.randn(n, 2, generator=generator)


def from_points(points: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """n draws with replacement from a (M, 2) set, each moved by N(0, JITTER^2): (n, 2)."""
    which = torch.randint(len(points), (n,), generator=generator)
    return points[which] + JITTER * torch.randn(n, 2, generator=generator)


def sample(name: str, n: int, *, generator: torch.Generator | None = None,
           points: torch.Tensor | None = None) -> torch.Tensor:
    """n points (n, 2) from the target `name`; "points" needs the (standardized) user set `points`."""
    if name not in TARGETS:
        raise ValueError(f"unknown 2-D target {name!r}; choose from {', '.join(TARGETS)}")
    target = TARGETS[name]
    if target.centers is not None:
        return mixture(target.centers, target.sigma, n, generator)
    if name == "moons":
        return moons(n, generator)
    if name == "spiral":
        return spiral(n, generator)
    if points is None:
        raise BadPoints("the 'points' target needs a point set: upload a CSV or type x, y lines")
    return from_points(points, n, generator)


def heart(n: int = 80) -> torch.Tensor:
    """n points evenly spaced in angle along a heart curve, fitted into the plane: the lab's example
    of a user's set. Deterministic: (n, 2)."""
    t = torch.linspace(0, 2 * math.pi, n + 1)[:-1]
    x = 16 * t.sin() ** 3
    y = 13 * t.cos() - 5 * (2 * t).cos() - 2 * (3 * t).cos() - (4 * t).cos()
    return standardize(torch.stack([x, y], 1))


# --- a user's point set ------------------------------------------------------------------------
def parse_points(text: str) -> torch.Tensor:
    """Points from text: one "x, y" per line (commas, semicolons, tabs or spaces), an optional header
    line (a CSV header naming x and y picks those columns; otherwise the first two). Returns (N, 2)
    float32, checked (`check_points`); raises BadPoints with a message naming the problem."""
    rows = _rows(text)  # (line number, cells)
    if not rows:
        raise BadPoints("no points: the text is empty. Give one point per line, as x, y")
    cols = (0, 1)
    if not _numeric(rows[0][1][0]):  # a header line
        header = [h.strip().lower() for h in rows[0][1]]
        cols = (header.index("x"), header.index("y")) if {"x", "y"} <= set(header) else (0, 1)
        rows = rows[1:]
    values = []
    for line, row in rows:
        if len(row) <= max(cols):
            raise BadPoints(f"line {line}: {_show(row)} has {len(row)} value(s); each line needs two numbers, x and y")
        try:
            values.append((float(row[cols[0]]), float(row[cols[1]])))
        except ValueError:
            raise BadPoints(f"line {line}: {_show(row)} is not two numbers") from None
    if not values:
        raise BadPoints("only a header line, no points. Give one point per line, as x, y")
    points = torch.tensor(values, dtype=torch.float64)
    check_points(points)
    return points.float()


def check_points(points: torch.Tensor) -> None:
    """Raise BadPoints unless `points` (N, 2) is a usable set: finite, not absurd, enough, not all equal."""
    if points.dim() != 2 or points.shape[1] != 2:
        raise BadPoints(f"expected points as N rows of x, y; got shape {tuple(points.shape)}")
    n = len(points)
    if n < MIN_POINTS:
        raise BadPoints(f"only {n} point(s); give at least {MIN_POINTS} so there is a shape to learn")
    if n > MAX_POINTS:
        raise BadPoints(f"{n:,} points is too many; give at most {MAX_POINTS:,}")
    bad = ~torch.isfinite(points).all(1)
    if bad.any():
        raise BadPoints(f"{int(bad.sum())} point(s) are NaN or infinite (the first is point {int(bad.nonzero()[0]) + 1})")
    if points.abs().max() > MAX_ABS:
        raise BadPoints(f"values up to {points.abs().max().item():.3g} are absurdly large (limit {MAX_ABS:.0e}); "
                        "are the columns right?")
    extent = (points.max(0).values - points.min(0).values).max().item()
    if extent <= 1e-9 * max(1.0, points.abs().max().item()):
        raise BadPoints(f"all {n} points are the same point; a distribution needs some spread")


def standardize(points: torch.Tensor) -> torch.Tensor:
    """Fit a checked set into the plane: centre its bounding box at 0, scale its larger half-extent to FIT.

    The same factor on both axes, so a drawing keeps its shape. (N, 2) -> (N, 2) float32."""
    points = points.double()
    low, high = points.min(0).values, points.max(0).values
    half = ((high - low) / 2).max()
    return ((points - (low + high) / 2) * (FIT / half)).float()


def user_points(text: str) -> torch.Tensor:
    """parse_points + standardize: a user's text as a target set on the plane, (N, 2)."""
    return standardize(parse_points(text))


def decode_upload(data: bytes) -> str:
    """An uploaded file's bytes as text (UTF-8, with or without BOM); BadPoints if it is not text."""
    if not data.strip():
        raise BadPoints("the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadPoints("the file is not text (expected a CSV of x, y columns)") from None


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) for every non-blank, non-comment line; the delimiter is read off the first."""
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1)]
    lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
    if not lines:
        return []
    delim = next((d for d in (",", ";", "\t") if d in lines[0][1]), None)
    if delim is None:
        return [(i, line.split()) for i, line in lines]
    return [(i, [c.strip() for c in next(csv.reader([line], delimiter=delim))]) for i, line in lines]


def _numeric(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _show(row: list[str]) -> str:
    text = ", ".join(row)
    return repr(text if len(text) <= 40 else text[:37] + "...")


# --- how well a sample covers a target ---------------------------------------------------------
def mode_coverage(samples: torch.Tensor, centers: torch.Tensor, sigma: float, *, min_count: int = 20) -> dict:
    """Modes covered and sample quality for a Gaussian mixture target (Srivastava et al. 2017).

    A sample is high quality when it lies within 3 sigma of its nearest centre; a mode is covered when at
    least `min_count` high-quality samples are nearest to it. samples (N, 2), centers (K, 2)."""
    d = torch.cdist(samples.float(), centers.float())  # (N, K)
    dist, nearest = d.min(1)
    good = dist <= 3 * sigma
    counts = torch.bincount(nearest[good], minlength=len(centers))
    covered = int((counts >= min_count).sum())
    return {"modes_covered": covered, "modes": len(centers), "mode_fraction": covered / len(centers),
            "high_quality": good.float().mean().item(), "per_mode": counts.tolist(), "min_count": min_count}


def support_coverage(samples: torch.Tensor, real: torch.Tensor, *, radius: float = 0.2) -> dict:
    """For targets without modes: the fraction of samples within `radius` of a real point (on target) and
    of real points within `radius` of a sample (covered). samples (N, 2), real (M, 2)."""
    d = torch.cdist(samples.float(), real.float())  # (N, M)
    return {"on_target": (d.min(1).values <= radius).float().mean().item(),
            "covered": (d.min(0).values <= radius).float().mean().item(), "radius": radius}


def coverage(name: str, samples: torch.Tensor, real: torch.Tensor) -> dict:
    """mode_coverage for the mixtures, support_coverage otherwise (real: a fresh sample of the target)."""
    target = TARGETS[name]
    if target.centers is not None:
        return mode_coverage(samples, target.centers, target.sigma, min_count=max(5, len(samples) // 100))
    return support_coverage(samples, real)
