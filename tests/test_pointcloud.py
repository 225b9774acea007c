"""The point-cloud GAN's data and math: shape geometry, seeding, the Chamfer distance, the nearest-template
classifier, and the GAN's contract details (point order, critic steps, latent search)."""
from __future__ import annotations

import math

import pytest
import torch

from engine.data import shapes3d
from engine.models.pointgan import PointGAN, PointGANConfig, latents_by_shape


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- geometry of the canonical shapes ----------------------------------------------------------
def test_sphere_points_lie_at_the_radius_and_cover_it():
    p = shapes3d.sphere(2000, g(), radius=0.9)
    assert torch.allclose(p.norm(dim=1), torch.full((2000,), 0.9), atol=1e-5)
    assert p.mean(0).abs().max() < 0.05  # uniform on the surface: centred
    assert (p[:, 2] > 0).float().mean().sub(0.5).abs() < 0.05


def test_torus_points_satisfy_the_torus_equation():
    ring, tube = 0.7, 0.25
    p = shapes3d.torus(2000, g(), ring=ring, tube=tube)
    rho = p[:, :2].norm(dim=1)
    assert torch.allclose((rho - ring) ** 2 + p[:, 2] ** 2, torch.full((2000,), tube ** 2), atol=1e-5)
    # area-uniform: more points on the outer half (rho > ring) than the inner, in ratio ~ (R + 2r/pi)/(R - 2r/pi)
    outer = (rho > ring).float().mean()
    expected = (ring + 2 * tube / math.pi) / (2 * ring)
    assert abs(outer - expected) < 0.03


def test_cube_points_lie_on_the_faces():
    h = 0.65
    p = shapes3d.cube(3000, g(), side=2 * h)
    assert torch.allclose(p.abs().max(1).values, torch.full((3000,), h), atol=1e-6)
    assert (p.abs() <= h + 1e-6).all()
    counts = torch.stack([(p[:, a] * s >= h - 1e-6).sum() for a in range(3) for s in (1, -1)])
    assert counts.min() > 400  # every face gets about 1/6 of the points


def test_helix_points_follow_the_winding():
    p = shapes3d.helix(2000, g(), radius=0.6, height=1.7, turns=3.0, tube=0.0)
    assert torch.allclose(p[:, :2].norm(dim=1), torch.full((2000,), 0.6), atol=1e-5)
    t = p[:, 2] / 1.7 + 0.5
    angle = torch.atan2(p[:, 1], p[:, 0])
    assert torch.allclose(torch.cos(angle - 2 * math.pi * 3 * t), torch.ones(2000), atol=1e-3)


def test_cone_points_lie_on_the_side_or_the_base():
    r, h = 0.75, 1.6
    p = shapes3d.cone(2000, g(), radius=r, height=h)
    rho = p[:, :2].norm(dim=1)
    on_base = torch.isclose(p[:, 2], torch.tensor(-h / 2))
    side = ~on_base
    assert torch.allclose(rho[side], r * (h / 2 - p[side, 2]) / h, atol=1e-5)
    assert (rho[on_base] <= r + 1e-6).all()
    slant = math.hypot(r, h)
    assert abs(side.float().mean() - slant / (slant + r)) < 0.03  # split by area


# --- datasets and seeds ------------------------------------------------------------------------
def test_dataset_is_seeded_balanced_and_shaped():
    x, y = shapes3d.dataset(10, n_points=64, seed=3)
    assert x.shape == (10, 64, 3) and x.dtype == torch.float32
    assert y.tolist() == [0, 1, 2, 3, 4] * 2
    again, _ = shapes3d.dataset(10, n_points=64, seed=3)
    other, _ = shapes3d.dataset(10, n_points=64, seed=4)
    assert torch.equal(x, again) and not torch.equal(x, other)


def test_batches_are_seeded_and_count_an_epoch():
    first = list(shapes3d.batches(8, n_points=32, n_clouds=40, generator=g(1)))
    again = list(shapes3d.batches(8, n_points=32, n_clouds=40, generator=g(1)))
    assert len(first) == 5 and first[0].shape == (8, 32, 3)
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_jitter_keeps_shapes_upright_and_mild():
    clean = shapes3d.clouds([0] * 50, n_points=512, generator=g(), jittered=False)
    jittered = shapes3d.jitter(clean, g(2), noise=0.0)
    radii = jittered.norm(dim=-1)
    assert radii.min() > 0.9 * 0.9 - 1e-4 and radii.max() < 0.9 * 1.1 + 1e-4  # scale within +-10%
    rot = shapes3d.rotation_z(torch.tensor([0.3]))[0] @ shapes3d.rotation_x(torch.tensor([0.2]))[0]
    assert torch.allclose(rot @ rot.T, torch.eye(3), atol=1e-6)  # rotations are orthonormal


# --- Chamfer distance --------------------------------------------------------------------------
def brute_chamfer(a, b):
    d = ((a[:, None] - b[None]) ** 2).sum(-1)
    return d.min(1).values.mean() + d.min(0).values.mean()


def test_chamfer_matches_the_definition_and_its_properties():
    x, _ = shapes3d.dataset(4, n_points=100, seed=5)
    a, b = x[0], x[1]
    assert torch.allclose(shapes3d.chamfer(a, b), brute_chamfer(a, b), atol=1e-5)
    assert shapes3d.chamfer(a, a) < 1e-5  # zero to itself
    assert torch.allclose(shapes3d.chamfer(a, b), shapes3d.chamfer(b, a))  # symmetric
    perm = torch.randperm(100, generator=g())
    assert torch.allclose(shapes3d.chamfer(a[perm], b), shapes3d.chamfer(a, b), atol=1e-6)  # order-free
    assert shapes3d.chamfer(a, b + 0.5) > shapes3d.chamfer(a, b)  # moving one cloud away costs
    shift = torch.tensor([0.3, 0.0, 0.0])
    assert torch.allclose(shapes3d.chamfer(a, a + shift), torch.tensor(2 * 0.09), atol=0.09)  # <= 2 |shift|^2


def test_pairwise_chamfer_matches_pair_by_pair_in_any_block_size():
    x, _ = shapes3d.dataset(7, n_points=50, seed=6)
    full = torch.stack([torch.stack([brute_chamfer(a, b) for b in x[4:]]) for a in x[:4]])
    for max_elements in (1, 50 * 50 * 3, 2 ** 24):
        assert torch.allclose(shapes3d.pairwise_chamfer(x[:4], x[4:], max_elements=max_elements), full, atol=1e-5)


# --- the classifier ----------------------------------------------------------------------------
def test_classifier_labels_real_jittered_shapes_correctly():
    x, y = shapes3d.dataset(100, seed=7)
    labels, dist = shapes3d.classify(x)
    assert labels == [shapes3d.SHAPES[int(k)] for k in y]
    assert dist.max() < shapes3d.UNCLEAR_DISTANCE


def test_classifier_ignores_position_size_and_spin_about_z():
    x, y = shapes3d.dataset(10, seed=8)
    moved = 1.7 * x @ shapes3d.rotation_z(torch.tensor([1.1]))[0].T + torch.tensor([0.4, -0.2, 0.3])
    assert shapes3d.classify(moved)[0] == [shapes3d.SHAPES[int(k)] for k in y]


def test_classifier_calls_non_shapes_unclear():
    box = torch.rand(5, 256, 3, generator=g())  # points filling a box, not on its surface
    blob = torch.randn(5, 256, 3, generator=g())
    square = box * torch.tensor([1.0, 1.0, 0.05])  # a flat square
    assert shapes3d.classify(torch.cat([box, blob, square]))[0] == [shapes3d.UNCLEAR] * 15


# --- the GAN -----------------------------------------------------------------------------------
def tiny(seed: int = 0) -> PointGAN:
    torch.manual_seed(seed)
    return PointGAN(PointGANConfig(**PointGAN.presets["tiny"]["config"]))


@pytest.mark.parametrize("pool", ["max", "max+mean"])
def test_critic_ignores_the_order_of_points(pool):
    torch.manual_seed(0)
    model = PointGAN(PointGANConfig(n_points=32, latent=4, generator_hidden=(16,), point_features=(8,),
                                    critic_hidden=(8,), pool=pool))
    x, _ = shapes3d.dataset(3, n_points=32, seed=1)
    perm = torch.randperm(32, generator=g())
    assert torch.allclose(model.critic(x), model.critic(x[:, perm]), atol=1e-6)


def test_mean_pool_gives_every_point_a_gradient_and_max_only_some():
    x, _ = shapes3d.dataset(2, n_points=256, seed=1)
    touched = {}
    for pool in ("max", "max+mean"):
        torch.manual_seed(0)
        critic = PointGAN(PointGANConfig(point_features=(8,), critic_hidden=(8,), pool=pool)).critic
        x_ = x.clone().requires_grad_(True)
        critic(x_).sum().backward()
        touched[pool] = float((x_.grad.abs().sum(-1) > 0).float().mean())
    assert touched["max"] < 0.2 and touched["max+mean"] > 0.9


def test_learning_rate_falls_linearly_to_the_final_fraction():
    model = tiny()
    opt_g, opt_d = model.make_optimizers(lr=1e-3, final_lr_fraction=0.1)
    for fraction, expected in ((0.0, 1e-3), (0.5, 5.5e-4), (1.0, 1e-4)):
        opt_g.set_progress(fraction)
        assert opt_g.param_groups[0]["lr"] == pytest.approx(expected)
    opt_d.set_progress(0.5)
    state = opt_d.state_dict()
    opt_d2 = model.make_optimizers(lr=1e-3, final_lr_fraction=0.1)[1]
    opt_d2.load_state_dict(state)  # resuming keeps the schedule
    assert opt_d2.param_groups[0]["lr"] == pytest.approx(5.5e-4)


def test_train_step_makes_n_critic_critic_updates_and_one_generator_update():
    model = tiny()
    opt_g, opt_d = model.make_optimizers(lr=1e-3)
    x, _ = shapes3d.dataset(8, n_points=32, seed=1)
    model.train_step(x, [opt_g, opt_d], generator=g())
    steps = lambda opt: int(next(iter(opt.state.values()))["step"])  # noqa: E731
    assert steps(opt_d) == model.config.n_critic and steps(opt_g) == 1


def test_training_is_seeded():
    outs = []
    for _ in range(2):
        model = tiny()
        opts = model.make_optimizers(lr=1e-3)
        x, _ = shapes3d.dataset(8, n_points=32, seed=1)
        outs.append(model.train_step(x, opts, generator=g(4)))
        outs.append(model.sample(2, generator=g(5)))
    assert outs[0] == outs[2] and torch.equal(outs[1], outs[3])


def test_unknown_loss_or_pool_is_refused():
    with pytest.raises(ValueError, match="unknown GAN loss"):
        PointGAN(PointGANConfig(loss="hinge"))
    with pytest.raises(ValueError, match="unknown pool"):
        PointGAN(PointGANConfig(pool="sum"))


def test_latents_by_shape_returns_latents_whose_clouds_are_nearest_that_shape():
    model = PointGAN(PointGANConfig(n_points=256, latent=4, generator_hidden=(8,), point_features=(8,),
                                    critic_hidden=(8,)))
    found = latents_by_shape(model, n_candidates=8, seed=0)
    assert found and sum(item["count"] for item in found.values()) == 8
    for name, item in found.items():
        with torch.no_grad():
            d = shapes3d.template_distances(model.decode(item["z"][None]))[0]
        assert shapes3d.SHAPES[int(d.argmin())] == name
        assert item["distance"] == pytest.approx(float(d.min()), abs=1e-5)
        assert item["clear"] == (item["distance"] <= shapes3d.UNCLEAR_DISTANCE)
