"""Procedural 3-D point clouds of five simple shapes, the Chamfer distance, and a nearest-template classifier.

The data of the point-cloud GAN (engine.models.pointgan), made here rather than downloaded (no dataset
files). Every cloud is (N, 3) float32 in the same units (about [-1, 1] on each axis), the z axis up:

- sphere: radius 0.9, points uniform on the surface;
- torus: ring radius 0.7, tube radius 0.25, around the z axis, uniform on the surface;
- cube: the surface of a cube of side 1.3, uniform over the six faces;
- helix: three turns of radius 0.6 rising from z = -0.85 to 0.85, with a thin tube (radius 0.04);
- cone: apex up at z = 0.8, base radius 0.75 at z = -0.8, the slanted side and the base disk, uniform by area.

Jitter (mild, so that a small GAN learns all five shapes well; the shapes stay upright and roughly
axis-aligned): a spin about the vertical axis of at most 10 degrees, a tilt of at most 5 degrees about a
random horizontal axis, a scale factor in [0.9, 1.1] per axis, and Gaussian noise of 0.01 per coordinate. Everything is drawn from a `torch.Generator`: same seed, same clouds.

Classification (`classify`): a cloud is centred (mean of its points) and scaled to unit RMS radius, then
compared by Chamfer distance with templates of the five shapes prepared the same way; the label is the
nearest template's shape. Rotations about the vertical axis are undone before comparing: the cloud is
turned to the cube template's orientation by its four-fold angular harmonic, and to the helix template's
phase by the harmonic that follows the helix's winding; sphere, torus and cone are symmetric about z. So labels ignore position, size and rotation about z, but not tilt: a cloud lying
on its side is compared as it lies. A cloud farther from every template than `UNCLEAR_DISTANCE` (a bound
set well above what real clouds reach, see tests) is labelled "unclear".
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Iterator

import torch

SHAPES = ("sphere", "torus", "cube", "helix", "cone")
N_POINTS = 256
UNCLEAR = "unclear"
UNCLEAR_DISTANCE = 0.06  # Chamfer distance of normalized clouds; real clouds stay below about 0.05
TEMPLATE_POINTS = 1024
HELIX_TURNS, HELIX_HEIGHT = 3.0, 1.7


# --- the five surfaces (canonical pose, unit-ish size) -----------------------------------------
def _uniform(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g)


def sphere(n: int, g: torch.Generator, radius: float = 0.9) -> torch.Tensor:
    """n points uniform on a sphere: normalized Gaussian vectors. (n, 3)"""
    v = torch.randn(n, 3, generator=g)
    return radius * v / v.norm(dim=1, keepdim=True).clamp_min(1e-8)


def torus(n: int, g: torch.Generator, ring: float = 0.7, tube: float = 0.25) -> torch.Tensor:
    """n points uniform on the torus (sqrt(x^2 + y^2) - ring)^2 + z^2 = tube^2. (n, 3)

    The tube angle v has density proportional to ring + tube cos v (the area element); it is drawn by
    rejection from uniform proposals, 8 proposals per point (acceptance is at least 0.47)."""
    v = torch.empty(0)
    while len(v) < n:
        prop = 2 * math.pi * _uniform(8 * n, g)
        keep = _uniform(8 * n, g) * (ring + tube) < ring + tube * torch.cos(prop)
        v = torch.cat([v, prop[keep]])
    v, u = v[:n], 2 * math.pi * _uniform(n, g)
    r = ring + tube * torch.cos(v)
    return torch.stack([r * torch.cos(u), r * torch.sin(u), tube * torch.sin(v)], 1)


def cube(n: int, g: torch.Generator, side: float = 1.3) -> torch.Tensor:
    """n points uniform on the surface of an axis-aligned cube centred at 0. (n, 3)"""
    h = side / 2
    p = (2 * torch.rand(n, 3, generator=g) - 1) * h
    face = torch.randint(6, (n,), generator=g)
    axis, sign = face % 3, (face // 3) * 2 - 1
    p[torch.arange(n), axis] = sign.float() * h
    return p


def helix(n: int, g: torch.Generator, radius: float = 0.6, height: float = HELIX_HEIGHT, turns: float = HELIX_TURNS,
          tube: float = 0.04) -> torch.Tensor:
    """n points along a helix around the z axis (uniform in arc length), spread in a thin tube. (n, 3)"""
    t = _uniform(n, g)
    angle = 2 * math.pi * turns * t
    centre = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle), height * (t - 0.5)], 1)
    return centre + tube * torch.randn(n, 3, generator=g) / math.sqrt(3)


def cone(n: int, g: torch.Generator, radius: float = 0.75, height: float = 1.6) -> torch.Tensor:
    """n points uniform by area on a cone (apex up) with its base disk. (n, 3)"""
    slant = math.hypot(radius, height)
    side_share = slant / (slant + radius)  # lateral area pi r l vs base area pi r^2
    on_side = _uniform(n, g) < side_share
    s = torch.sqrt(_uniform(n, g))  # distance from the apex (side) or centre (base), area-uniform
    u = 2 * math.pi * _uniform(n, g)
    r = radius * s
    z = torch.where(on_side, height / 2 - height * s, torch.full_like(s, -height / 2))
    return torch.stack([r * torch.cos(u), r * torch.sin(u), z], 1)


GENERATORS = {"sphere": sphere, "torus": torus, "cube": cube, "helix": helix, "cone": cone}


# --- jitter and datasets -----------------------------------------------------------------------
def rotation_z(angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices about the z axis: angles (B,) in radians -> (B, 3, 3)."""
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([c, -s, zero, s, c, zero, zero, zero, one], 1).reshape(-1, 3, 3)


def rotation_x(angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices about the x axis: (B,) -> (B, 3, 3)."""
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([one, zero, zero, zero, c, -s, zero, s, c], 1).reshape(-1, 3, 3)


def jitter(clouds: torch.Tensor, g: torch.Generator, *, max_spin_deg: float = 10.0, max_tilt_deg: float = 5.0,
           scale: float = 0.1, noise: float = 0.01) -> torch.Tensor:
    """A small spin about z (uniform in +-max_spin_deg), a tilt of at most max_tilt_deg about a random
    horizontal axis, per-axis scale in [1-scale, 1+scale], Gaussian noise. (B, N, 3) -> (B, N, 3)."""
    b = len(clouds)
    spin = rotation_z(math.radians(max_spin_deg) * (2 * _uniform(b, g) - 1))
    turn = rotation_z(2 * math.pi * _uniform(b, g))  # direction of the tilt's axis
    tilt = turn @ rotation_x(math.radians(max_tilt_deg) * (2 * _uniform(b, g) - 1)) @ turn.transpose(1, 2)
    factors = 1 + scale * (2 * torch.rand(b, 1, 3, generator=g) - 1)
    rot = tilt @ spin  # (B, 3, 3)
    out = (clouds * factors) @ rot.transpose(1, 2)
    return out + noise * torch.randn(out.shape, generator=g)


def clouds(labels: torch.Tensor | list[int], *, n_points: int = N_POINTS, generator: torch.Generator | None = None,
           jittered: bool = True) -> torch.Tensor:
    """One cloud per label (indices into SHAPES): (B, n_points, 3) float32."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    labels = torch.as_tensor(labels, dtype=torch.long)
    out = torch.stack([GENERATORS[SHAPES[int(k)]](n_points, g) for k in labels]) if len(labels) else \
        torch.zeros(0, n_points, 3)
    return jitter(out, g) if jittered and len(out) else out


def dataset(n: int, *, n_points: int = N_POINTS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n clouds, the five shapes in turn (balanced), seeded: ((n, n_points, 3), labels (n,))."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(SHAPES)
    return clouds(labels, n_points=n_points, generator=g), labels


def batches(batch_size: int, *, n_points: int = N_POINTS, n_clouds: int = 10_000,
            generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """One "epoch" of fresh random clouds: n_clouds // batch_size batches (batch_size, n_points, 3), each
    shape drawn uniformly at random. The data are procedural, so every epoch sees new clouds."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    for _ in range(n_clouds // batch_size):
        yield clouds(torch.randint(len(SHAPES), (batch_size,), generator=g), n_points=n_points, generator=g)


# --- Chamfer distance and classification -------------------------------------------------------
def _lifted(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points lifted to 5-D so that one matmul gives squared distances:
    [a, |a|^2, 1] . [-2b, 1, |b|^2] = |a|^2 - 2 a.b + |b|^2 = ||a - b||^2."""
    a_sq, b_sq = a.square().sum(-1, keepdim=True), b.square().sum(-1, keepdim=True)
    return torch.cat([a, a_sq, torch.ones_like(a_sq)], -1), torch.cat([-2 * b, torch.ones_like(b_sq), b_sq], -1)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 for every pair of points: a (..., N, 3), b (..., M, 3) -> (..., N, M), clamped at 0
    against rounding. One batched matmul of lifted points (much faster than torch.cdist on CPU)."""
    la, lb = _lifted(a, b)
    return (la @ lb.transpose(-1, -2)).clamp_min(0)


def chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Chamfer distance between clouds: mean over a of the squared distance to the nearest point of b,
    plus the same from b to a. a (..., N, 3), b (..., M, 3) broadcast over the leading dims -> (...)."""
    d = squared_distances(a, b)  # (..., N, M)
    return d.min(-1).values.mean(-1) + d.min(-2).values.mean(-1)


def pairwise_chamfer(a: torch.Tensor, b: torch.Tensor, *, max_elements: int = 2 ** 24) -> torch.Tensor:
    """Chamfer distance of every cloud in a (A, N, 3) to every cloud in b (B, M, 3): (A, B).

    Works through a in row blocks of at most `max_elements` point pairs, so memory stays small."""
    la, lb = _lifted(a.float(), b.float())
    step = max(1, max_elements // max(1, len(b) * a.shape[1] * b.shape[1]))
    rows = []
    for i in range(0, len(a), step):
        d = torch.einsum("rnc,bmc->rbnm", la[i:i + step], lb)  # (R, B, N, M) squared distances
        rows.append(d.min(-1).values.clamp_min(0).mean(-1) + d.min(-2).values.clamp_min(0).mean(-1))
    return torch.cat(rows) if rows else torch.zeros(0, len(b))


def normalize(clouds: torch.Tensor) -> torch.Tensor:
    """Centred on the mean point and scaled to unit RMS distance from it: (..., N, 3) -> same."""
    centred = clouds - clouds.mean(-2, keepdim=True)
    rms = centred.square().sum(-1).mean(-1).sqrt().clamp_min(1e-6)
    return centred / rms[..., None, None]


@lru_cache(maxsize=1)
def templates() -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's templates: one normalized cloud per shape in canonical pose, no jitter, seed 12345,
    (5, TEMPLATE_POINTS, 3); and the scale each was divided by in `normalize` (5,)."""
    g = torch.Generator().manual_seed(12345)
    raw = torch.stack([GENERATORS[name](TEMPLATE_POINTS, g) for name in SHAPES])
    centred = raw - raw.mean(-2, keepdim=True)
    return normalize(raw), centred.square().sum(-1).mean(-1).sqrt()


def _phase(clouds: torch.Tensor, shape: str, scale: torch.Tensor) -> torch.Tensor:
    """The angular phase that turns with a rotation about z: (B, N, 3) normalized clouds -> (B,) radians.

    cube: arg sum r^2 e^{4i theta} (four-fold symmetric, so it turns 4x as fast as the cloud);
    helix: arg sum e^{i(theta - omega z)} with omega the helix's angular rate per unit height."""
    x, y, z = clouds.unbind(-1)
    theta = torch.atan2(y, x)
    if shape == "cube":
        w, arg = x.square() + y.square(), 4 * theta
    else:
        w, arg = torch.ones_like(x), theta - 2 * math.pi * HELIX_TURNS / (HELIX_HEIGHT / scale) * z
    return torch.atan2((w * torch.sin(arg)).sum(-1), (w * torch.cos(arg)).sum(-1))


def align(clouds: torch.Tensor, shape: str) -> torch.Tensor:
    """Normalized clouds (B, N, 3) turned about z into the orientation of `shape`'s template (cube, helix);
    other shapes are symmetric about z and are returned as they are."""
    if shape not in ("cube", "helix"):
        return clouds
    k = SHAPES.index(shape)
    temps, scales = templates()
    folds = 4 if shape == "cube" else 1
    delta = (_phase(clouds, shape, scales[k]) - _phase(temps[k:k + 1], shape, scales[k])) / folds
    return clouds @ rotation_z(-delta).transpose(1, 2)


def template_distances(clouds: torch.Tensor) -> torch.Tensor:
    """Chamfer distance of each normalized (and, for cube and helix, aligned) cloud to each shape's
    template: (B, N, 3) -> (B, 5)."""
    temps, _ = templates()
    x = normalize(clouds.float())
    cols = [pairwise_chamfer(align(x, name), temps[k:k + 1])[:, 0] for k, name in enumerate(SHAPES)]
    return torch.stack(cols, 1)


def classify(clouds: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """Nearest-template labels (a name from SHAPES, or "unclear") and the distance to that template (B,)."""
    if len(clouds) == 0:
        return [], torch.zeros(0)
    d = template_distances(clouds)
    best, index = d.min(1)
    names = [SHAPES[int(i)] if float(v) <= UNCLEAR_DISTANCE else UNCLEAR for v, i in zip(best, index)]
    return names, best
