"""GAN math: the four losses against their formulas, the gradient penalty and weight clipping, the 2-D lab's
model and session (seeded runs reproduce; the presets collapse and recover), and the 2-D targets with the
checks on a user's point set."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from engine import gan_lab
from engine.data import toy2d
from engine.models.gan2d import GAN2D, GAN2DConfig
from engine.nn import adversarial as adv

REAL = torch.tensor([1.0, -0.5, 2.0, 0.0])
FAKE = torch.tensor([-1.0, 0.3, 0.0, -2.5])
sig = torch.sigmoid


# --- the losses on fixed tensors --------------------------------------------------------------------
def test_classic_discriminator_loss_is_the_binary_cross_entropy():
    expected = -(sig(REAL).log().mean() + (1 - sig(FAKE)).log().mean())
    for loss in ("minimax", "non-saturating"):
        assert torch.allclose(adv.discriminator_loss(loss, REAL, FAKE), expected, atol=1e-6)


def test_generator_losses_match_their_formulas():
    assert torch.allclose(adv.generator_loss("minimax", FAKE), (1 - sig(FAKE)).log().mean(), atol=1e-6)
    assert torch.allclose(adv.generator_loss("non-saturating", FAKE), -sig(FAKE).log().mean(), atol=1e-6)
    for loss in ("wgan-clip", "wgan-gp"):
        assert torch.allclose(adv.generator_loss(loss, FAKE), -FAKE.mean())


def test_wasserstein_critic_loss_is_the_negative_estimate():
    for loss in ("wgan-clip", "wgan-gp"):
        assert torch.allclose(adv.discriminator_loss(loss, REAL, FAKE), FAKE.mean() - REAL.mean())
        assert torch.equal(adv.discriminator_value(loss, REAL), REAL)
    assert torch.allclose(adv.discriminator_value("minimax", REAL), sig(REAL))


def test_minimax_saturates_where_non_saturating_does_not():
    """Where D confidently rejects a fake (logit -8), log(1 - D) has almost no gradient; -log D has ~1."""
    out = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(adv.generator_loss("minimax", out), out)
    (g_ns,) = torch.autograd.grad(adv.generator_loss("non-saturating", out), out)
    assert abs(g_mm.item()) < 1e-3 and abs(g_ns.item()) > 0.99


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown GAN loss 'hinge'"):
        adv.generator_loss("hinge", FAKE)


# --- Lipschitz constraints -----------------------------------------------------------------------------
def linear_critic(weight: list[float]) -> nn.Linear:
    critic = nn.Linear(len(weight), 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([weight]))
        critic.bias.fill_(0.7)
    return critic


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g) + 3
    assert adv.gradient_penalty(linear_critic([0.6, 0.8]), real, fake, generator=g).item() == pytest.approx(0, abs=1e-10)
    # ||w|| = 2 everywhere: (2 - 1)^2 = 1; ||w|| = 0.5: 0.25
    assert adv.gradient_penalty(linear_critic([1.2, 1.6]), real, fake, generator=g).item() == pytest.approx(1.0, rel=1e-5)
    assert adv.gradient_penalty(linear_critic([0.3, 0.4]), real, fake, generator=g).item() == pytest.approx(0.25, rel=1e-5)


def test_gradient_penalty_trains_the_critic():
    critic = linear_critic([1.2, 1.6])
    penalty = adv.gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2))
    penalty.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_clip_weights_clamps_every_parameter_and_keeps_small_ones():
    critic = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        critic[0].weight[0, 0] = 0.005
    adv.clip_weights(critic, 0.01)
    for p in critic.parameters():
        assert p.abs().max() <= 0.01
    assert critic[0].weight[0, 0].item() == pytest.approx(0.005)


# --- the 2-D model -------------------------------------------------------------------------------------
def seeded_model(**config) -> GAN2D:
    model = GAN2D(GAN2DConfig(g_hidden=(16, 16), d_hidden=(16, 16), **config))
    model.init_weights(torch.Generator().manual_seed(0))
    return model


@pytest.mark.parametrize("loss", adv.LOSSES)
def test_arrows_are_minus_the_gradient_of_the_generator_loss(loss):
    model = seeded_model(loss=loss)
    z = model.noise(5, generator=torch.Generator().manual_seed(1))
    at, push = model.generator_gradients(z)
    x = model.generate(z).detach().requires_grad_(True)
    logit = model.critic(x)
    if adv.is_wasserstein(loss):
        expected = torch.autograd.grad(logit.sum(), x)[0]  # -d(-f)/dx
    else:  # per point: minimax -d log(1 - D)/dx = D dl/dx ... written out: sigma(l) vs sigma(-l)
        weight = sig(logit) if loss == "minimax" else sig(-logit)
        expected = weight[:, None] * torch.autograd.grad(logit.sum(), x)[0]
    assert torch.allclose(at, x.detach()) and torch.allclose(push, expected, atol=1e-6)


def test_step_discriminator_leaves_the_generator_alone_and_vice_versa():
    model = seeded_model(loss="wgan-clip", clip=0.05)
    opt_d, opt_g = model.make_optimizers()
    assert isinstance(opt_d, torch.optim.RMSprop)
    g_before = [p.clone() for p in model.g_net.parameters()]
    model.step_discriminator(torch.randn(32, 2), opt_d, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.g_net.parameters()))
    assert all(p.abs().max() <= 0.05 for p in model.d_net.parameters())  # clipped after the update
    d_before = [p.clone() for p in model.d_net.parameters()]
    model.step_generator(32, opt_g, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(d_before, model.d_net.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g_before, model.g_net.parameters()))


@pytest.mark.parametrize("noise_dim,lines", [(1, 1), (2, 30), (5, 30)])
def test_manifold_and_value_map_shapes(noise_dim, lines):
    model = seeded_model(noise_dim=noise_dim, loss="non-saturating")
    assert model.manifold(lines=15, points=40).shape == (lines, 40, 2)
    value = model.value_map(3.0, 20)
    assert value.shape == (20, 20) and 0 <= value.min() and value.max() <= 1


def test_config_rejects_impossible_values():
    for bad in ({"noise_dim": 0}, {"d_steps": 0}, {"loss": "hinge"}, {"g_lr": 0.0}, {"g_hidden": (0,)}):
        with pytest.raises(ValueError):
            GAN2DConfig(**bad)


# --- the lab session -----------------------------------------------------------------------------------
SMALL = gan_lab.LabSettings(hidden=(16, 16), batch_size=64, d_steps=2)


def test_seeded_lab_runs_reproduce_exactly():
    a, b = gan_lab.Lab(SMALL), gan_lab.Lab(SMALL)
    a.run(15)
    b.run(15)
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    assert a.history == b.history and a.step == b.step == 15 and a.d_updates == 30
    c = gan_lab.Lab(gan_lab.LabSettings(**{**SMALL.__dict__, "seed": 1}))
    c.run(15)
    assert not torch.equal(a.model.sample(10, generator=torch.Generator().manual_seed(0)),
                           c.model.sample(10, generator=torch.Generator().manual_seed(0)))


def test_step_buttons_count_updates_and_rates_change_live():
    lab = gan_lab.Lab(SMALL)
    lab.step_d()
    assert (lab.step, lab.d_updates) == (0, 1)
    lab.step_g()
    assert (lab.step, lab.d_updates) == (1, 1)
    lab.set_rates(g_lr=2e-4, d_lr=5e-4, d_steps=3)
    lab.round()
    assert (lab.step, lab.d_updates) == (2, 4)
    assert lab.opt_g.param_groups[0]["lr"] == 2e-4 and lab.opt_d.param_groups[0]["lr"] == 5e-4
    snap = lab.snapshot(resolution=16, arrows=10)
    assert snap.value.shape == (16, 16) and snap.arrows.shape == (10, 2) and snap.step == 2
    assert set(snap.curves) >= {"step", "d_loss", "g_loss"} and len(snap.curves["step"]) == 2
    with pytest.raises(ValueError):
        lab.set_rates(g_lr=0, d_lr=1e-3, d_steps=1)


def test_lab_on_a_users_points_and_without_them():
    points = toy2d.heart(40)
    lab = gan_lab.Lab(gan_lab.LabSettings(**{**SMALL.__dict__, "target": "points"}), points=points)
    lab.run(2)
    assert "covered" in lab.snapshot(resolution=8, arrows=4).coverage
    with pytest.raises(toy2d.BadPoints):
        gan_lab.Lab(gan_lab.LabSettings(target="points"))


def test_curves_are_averaged_into_a_bounded_number_of_points():
    cols = {"step": [float(i) for i in range(1, 1001)], "d_loss": [1.0] * 1000}
    out = gan_lab._windows({k: torch.tensor(v).numpy() for k, v in cols.items()}, 400)
    assert len(out["step"]) <= 400 and out["step"][-1] == 1000 and (out["d_loss"] == 1).all()


def test_mode_collapse_preset_collapses_and_wgan_gp_covers_the_ring():
    """The two presets the lecture relies on, with their seeds: the first stays on at most 2 of the 8 modes
    at every check, the second covers at least 7 by PRESET_STEPS."""
    collapse = gan_lab.from_preset("collapse")
    for _ in range(5):
        collapse.run(gan_lab.PRESET_STEPS // 5)
        assert collapse.coverage()["modes_covered"] <= 2, collapse.step
    cured = gan_lab.from_preset("wgan-gp")
    cured.run(gan_lab.PRESET_STEPS)
    assert cured.coverage()["modes_covered"] >= 7


# --- the 2-D targets and a user's points -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["ring8", "grid25", "moons", "spiral"])
def test_targets_are_seeded_and_on_the_plane(name):
    x = toy2d.sample(name, 500, generator=torch.Generator().manual_seed(3))
    assert x.shape == (500, 2) and x.dtype == torch.float32
    assert torch.equal(x, toy2d.sample(name, 500, generator=torch.Generator().manual_seed(3)))
    assert x.abs().max() < toy2d.PLANE


def test_mode_coverage_of_the_target_itself_and_of_a_collapsed_sample():
    t = toy2d.TARGETS["ring8"]
    ring = toy2d.sample("ring8", 2000, generator=torch.Generator().manual_seed(0))
    full = toy2d.mode_coverage(ring, t.centers, t.sigma)
    assert full["modes_covered"] == 8 and full["high_quality"] > 0.97
    one = toy2d.mode_coverage(t.centers[2] + 0.01 * torch.randn(2000, 2), t.centers, t.sigma)
    assert one["modes_covered"] == 1 and one["per_mode"][2] == 2000
    nowhere = toy2d.mode_coverage(torch.zeros(2000, 2), t.centers, t.sigma)
    assert nowhere["modes_covered"] == 0 and nowhere["high_quality"] == 0


def lines(n: int, fmt=lambda i: f"{i}, {i % 3}") -> str:
    return "\n".join(fmt(i) for i in range(n))


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("   \n\n", "empty"),
    ("x,y\n", "only a header"),
    (lines(5), "only 5 point"),
    (lines(12, lambda i: "1.5, 2.5"), "same point"),
    (lines(12) + "\nfoo, bar", "line 13: 'foo, bar' is not two numbers"),
    (lines(12) + "\n7", "line 13: '7' has 1 value"),
    (lines(12, lambda i: f"{i}, nan"), "NaN or infinite"),
    (lines(12, lambda i: f"{i}, inf"), "NaN or infinite"),
    (lines(12, lambda i: f"{i}, 1e12"), "absurdly large"),
    (lines(20_001, lambda i: f"{i}, {i}"), "too many"),
])
def test_bad_point_sets_are_clear_errors(text, message):
    with pytest.raises(toy2d.BadPoints, match=message):
        toy2d.user_points(text)


def test_bad_uploads_are_clear_errors():
    with pytest.raises(toy2d.BadPoints, match="empty"):
        toy2d.decode_upload(b"")
    with pytest.raises(toy2d.BadPoints, match="not text"):
        toy2d.decode_upload(b"\xff\xfe\x00\x89PNG")
    assert toy2d.decode_upload("\ufeffx,y\n1,2".encode()) == "x,y\n1,2"


@pytest.mark.parametrize("text", [
    lines(12),  # "x, y"
    "x,y\n" + lines(12),  # header
    "# a comment\n" + lines(12, lambda i: f"{i}\t{i % 3}"),  # tabs
    lines(12, lambda i: f"{i} {i % 3}"),  # spaces
    lines(12, lambda i: f"{i};{i % 3}"),  # semicolons
    "id,y,x\n" + lines(12, lambda i: f"{100 + i},{i % 3},{i}"),  # named columns in another order
])
def test_point_formats_parse_to_the_same_set(text):
    assert torch.allclose(toy2d.parse_points(text), torch.tensor([[float(i), float(i % 3)] for i in range(12)]))


def test_standardize_fits_the_plane_and_keeps_the_shape():
    points = torch.tensor([[100.0, 10.0], [140.0, 10.0], [100.0, 30.0], [140.0, 30.0]] * 3)
    out = toy2d.standardize(points)
    assert torch.allclose(out.min(0).values, torch.tensor([-toy2d.FIT, -toy2d.FIT / 2]))
    assert torch.allclose(out.max(0).values, torch.tensor([toy2d.FIT, toy2d.FIT / 2]))
    assert math.isclose(toy2d.heart(50).abs().max().item(), toy2d.FIT, rel_tol=1e-5)
