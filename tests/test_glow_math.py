"""Glow's math: log-dets against autograd Jacobians, exact inverses, the 8-bit bits/dim accounting, and
actnorm's saved initialization. Zero-initialized layers are randomized first (at zero a coupling is a
fixed scale and the split prior the standard normal, which would let wrong log-dets pass)."""
from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from engine import api, checkpoint
from engine.data import mnist
from engine.models import glow as glow_model
from engine.optim import warmup_cosine
from engine.nn.glow import ActNorm, Coupling, InvConv1x1, Logit, MultiScale, Squeeze, SplitPrior, squeeze, unsqueeze


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def randomize(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """Non-identity parameters everywhere: random coupling outputs, split priors, 1x1 convs and actnorms
    (marked initialized)."""
    g = gen(seed)
    for m in module.modules():
        if isinstance(m, Coupling):
            for p in m.net[-1].parameters():
                p.copy_(scale * torch.randn(p.shape, generator=g))
        elif isinstance(m, SplitPrior):
            for p in m.conv.parameters():
                p.copy_(scale * torch.randn(p.shape, generator=g))
        elif isinstance(m, InvConv1x1):  # a rotation at first (log-det 0): make it a general matrix
            for p in (m.lower, m.upper, m.log_s):
                p.add_(scale * torch.randn(p.shape, generator=g))
        elif isinstance(m, ActNorm):
            m.bias.copy_(scale * torch.randn(m.bias.shape, generator=g))
            m.log_scale.copy_(scale * torch.randn(m.log_scale.shape, generator=g))
            m.initialized.fill_(True)
            m._ready = True
    return module


def tiny_glow(dtype=torch.float64, side: int = 4, scale: float = 0.3, **overrides):
    """A randomized Glow on side x side images (2 levels of 2 steps unless overridden); 28 x 28 models get
    a milder `scale` (a deep stack of strongly random layers maps digits to latents in the hundreds)."""
    config = {"image_shape": (side, side), "levels": 2, "steps": 2, "hidden": 8, **overrides}
    return randomize(api.build("glow", **config), scale=scale).to(dtype).eval()


def layers(channels: int = 4):
    torch.manual_seed(0)
    return {"actnorm": ActNorm(channels), "invconv": InvConv1x1(channels), "coupling": Coupling(channels, 8),
            "split_prior": SplitPrior(channels), "squeeze": Squeeze()}


LAYER_NAMES = list(layers())


def log_abs_det(f, x: torch.Tensor) -> float:
    """log|det df/dx| of f at one example x (any shape), from the full autograd Jacobian."""
    j = jacobian(lambda t: f(t.reshape(x.shape)).reshape(-1), x.reshape(-1))
    return torch.linalg.slogdet(j).logabsdet.item()


# --- log-dets ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LAYER_NAMES)
@pytest.mark.parametrize("direction", ["inverse", "forward"])
def test_layer_logdet_matches_the_jacobian(name, direction):
    layer = randomize(layers()[name]).double().eval()
    x = torch.randn(1, 4, 4, 4, generator=gen(1), dtype=torch.float64)
    if name == "squeeze" and direction == "forward":
        x = squeeze(x)
    f = getattr(layer, direction)
    out, logdet = f(x)
    assert out.numel() == x.numel() and logdet.shape == (1,)
    assert abs(logdet.item() - log_abs_det(lambda t: f(t)[0], x)) < 1e-10
    if name != "squeeze":
        assert abs(logdet.item()) > 1e-3  # non-identity: a log-det of 0 would prove nothing


def test_logit_logdet_matches_the_jacobian_and_the_closed_form():
    alpha = 0.05
    logit = Logit(alpha)
    y = torch.rand(1, 1, 4, 4, generator=gen(2), dtype=torch.float64)
    v, logdet = logit.inverse(y)
    p = alpha + (1 - 2 * alpha) * y
    assert torch.allclose(v, torch.log(p / (1 - p)), atol=1e-12, rtol=0)
    closed = torch.log((1 - 2 * alpha) / (p * (1 - p))).sum()  # dv/dy = (1 - 2 alpha) / (p (1 - p))
    assert abs(logdet.item() - closed.item()) < 1e-10
    assert abs(logdet.item() - log_abs_det(lambda t: logit.inverse(t)[0], y)) < 1e-10
    assert abs(logit(v)[1].item() + logdet.item()) < 1e-10
    assert abs(Logit(1e-6).inverse(y)[1].item() - logdet.item()) > 1  # alpha matters: the test can tell


def test_whole_flow_logdet_matches_the_jacobian():
    model = tiny_glow()
    y = torch.rand(1, 16, generator=gen(3), dtype=torch.float64) * 0.9 + 0.05

    def to_latent(t):
        return torch.cat([z.reshape(1, -1) for z in model.encode(t)], 1)

    zs, ld = model.latents(y)
    assert abs(ld["flow"].item()) > 1e-2 and abs(ld["prior"].item()) > 1e-2
    total = ld["logit"] + ld["flow"] + ld["prior"]
    assert abs(total.item() - log_abs_det(to_latent, y)) < 1e-9
    # and the multi-scale flow alone, in the sampling direction (latents -> logit space)
    flat = torch.cat([z.reshape(1, -1) for z in zs], 1)
    shapes = model.flow.z_shapes

    def to_logit_space(t):
        parts, start = [], 0
        for s in shapes:
            n = math.prod(s)
            parts.append(t[:, start:start + n].reshape(1, *s))
            start += n
        return model.flow(parts)[0].reshape(1, -1)

    _, flow_ld, prior_ld = model.flow([z for z in zs])
    assert abs((flow_ld + prior_ld).item() - log_abs_det(to_logit_space, flat)) < 1e-9


def test_gradcheck_coupling():
    layer = randomize(Coupling(4, 6)).double()
    x = torch.randn(2, 4, 3, 3, generator=gen(4), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer.inverse(t), (x,))
    assert torch.autograd.gradcheck(lambda t: layer.forward(t), (x,))


# --- inverses -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LAYER_NAMES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_layer_inverse_is_exact(name, dtype, tol):
    layer = randomize(layers()[name]).to(dtype).eval()
    x = torch.randn(5, 4, 6, 6, generator=gen(5)).to(dtype)
    z, ld_inv = layer.inverse(x)
    back, ld_fwd = layer.forward(z)
    assert (back - x).abs().max() < tol
    assert (ld_inv + ld_fwd).abs().max() < tol * 10


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_whole_model_inverse_is_exact(dtype, tol):
    model = tiny_glow(dtype, side=28, scale=0.05, steps=2)
    y = torch.rand(6, 784, generator=gen(6)).to(dtype)
    assert (model.decode(model.encode(y)) - y).abs().max() < tol
    zs = [torch.randn(6, *s, generator=gen(7)).to(dtype) for s in model.flow.z_shapes]  # sampling -> inverse
    assert max((a - b).abs().max() for a, b in zip(model.encode(model.decode(zs)), zs)) < tol * 10


def test_real_digits_come_back_identical():
    model = tiny_glow(torch.float32, side=28, scale=0.05, steps=2)
    x = mnist.images("test")[:64]
    assert torch.equal(model.quantize(model.decode(model.encode(model.bin_centres(x)))), x)
    model64 = tiny_glow(torch.float64, side=28, scale=0.05, steps=2)
    y = model64.dequantize(x.double(), gen(8))
    assert torch.equal(model64.quantize(model64.decode(model64.encode(y))).float(), x)


def test_squeeze_layout():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    s = squeeze(x)
    assert s.shape == (1, 4, 2, 2)
    assert s[0, :, 0, 0].tolist() == [0, 1, 4, 5]  # the top-left 2x2 block becomes four channels
    assert torch.equal(unsqueeze(s), x)


def test_multiscale_latent_shapes_cover_every_dimension():
    flow = MultiScale((1, 28, 28), levels=2, steps=1, hidden=4)
    assert flow.z_shapes == [(2, 14, 14), (8, 7, 7)]
    assert sum(math.prod(s) for s in flow.z_shapes) == 784


# --- bits/dim accounting --------------------------------------------------------------------------------
def test_uniform_density_scores_exactly_8_bits_per_dim():
    zeros = torch.zeros(3, dtype=torch.float64)
    assert torch.equal(glow_model.bits_per_dim_terms(zeros, zeros, zeros, 784)["total"], torch.full((3,), 8.0, dtype=torch.float64))
    # the uniform density on [0, 1]^D seen through the logit transform: its density in logit space is
    # exp(-logit log-det), so prior = -logit log-det, and the accounting must give 8 back
    y = torch.rand(3, 1, 28, 28, generator=gen(9), dtype=torch.float64)
    _, logit_ld = Logit(0.05).inverse(y)
    terms = glow_model.bits_per_dim_terms(-logit_ld, torch.zeros(3, dtype=torch.float64), logit_ld, 784)
    assert (terms["total"] - 8.0).abs().max() < 1e-12
    assert (terms["logit_logdet"].abs() > 0.1).all()


def test_bits_per_dim_terms_sum_and_match_log_prob():
    model = tiny_glow(torch.float64, side=28, scale=0.05, steps=1)
    x = mnist.images("test")[:20].double()
    terms = model.bits_per_dim_terms(x, generator=gen(10))
    parts = terms["prior"] + terms["flow_logdet"] + terms["logit_logdet"] + terms["quantization"]
    assert (parts - terms["total"]).abs().max() < 1e-12
    nll = -model.log_prob(x, generator=gen(10))
    assert (terms["total"] * 784 * math.log(2) - nll).abs().max() < 1e-9
    assert not torch.equal(nll, -model.log_prob(x, generator=gen(11)))  # the dequantization is drawn


@pytest.fixture(scope="module")
def briefly_trained():
    """The tiny preset after 30 Adam steps on MNIST grey digits (actnorm initialized by the first batch)."""
    model = api.build("glow", **api.preset("glow", "tiny")["config"])
    trainer = api.make_trainer(model, {"epochs": 1, "batch_size": 64, "lr": 2e-3, "max_steps": 30}, seed=0,
                               log_every=1000)
    updates = list(trainer.run())
    return model.eval(), updates


def test_training_lowers_bits_per_dim_and_reports_terms(briefly_trained):
    model, updates = briefly_trained
    assert updates[-1]["step"] == 30 and math.isfinite(updates[-1]["loss"])
    x = mnist.images("valid")[:500]
    before = api.build("glow", **api.preset("glow", "tiny")["config"]).bits_per_dim(x)["total"]
    assert model.bits_per_dim(x)["total"] < before - 0.2


def test_two_dequantization_seeds_agree(briefly_trained):
    model, _ = briefly_trained
    x = mnist.images("test")[:1000]
    a, b = (model.bits_per_dim(x, generator=gen(s))["total"] for s in (1, 2))
    assert a != b and abs(a - b) < 0.005


def test_evaluate_reports_the_four_terms(briefly_trained, monkeypatch):
    model, _ = briefly_trained
    subset = mnist.images("test")[:300]
    monkeypatch.setattr(glow_model.mnist, "images", lambda split="train", **kw: subset)
    r = glow_model.evaluate(model, batch_size=128)["test_bits_per_dim"]
    assert r["images"] == 300 and r["quantization"] == 8.0
    assert abs(r["prior"] + r["flow_logdet"] + r["logit_logdet"] + r["quantization"] - r["total"]) < 1e-6
    assert abs(r["total"] - model.bits_per_dim(subset, generator=gen(glow_model.DEQUANTIZATION_SEED))["total"]) < 1e-5


# --- actnorm --------------------------------------------------------------------------------------------
def test_actnorm_initializes_from_the_first_batch():
    layer = ActNorm(3).train()
    x = 2 + 5 * torch.randn(64, 3, 5, 5, generator=gen(12))
    z, _ = layer.inverse(x)
    assert bool(layer.initialized)
    assert z.mean((0, 2, 3)).abs().max() < 1e-5 and (z.std((0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4
    z2, _ = layer.inverse(x + 10)  # initialized once: a later batch does not reset it
    assert (z2.mean((0, 2, 3)) > 1).all()


def test_actnorm_initialization_is_saved(tmp_path):
    model = api.build("glow", **api.preset("glow", "tiny")["config"]).train()
    first, later = mnist.images("train")[:64], mnist.images("train")[64:128] * 0.5
    model.log_prob(first)  # the data-dependent initialization happens here
    checkpoint.save(model, tmp_path)
    loaded = checkpoint.load(tmp_path)
    # in training mode an uninitialized actnorm would re-initialize on `later` and change log p
    with torch.no_grad():
        assert torch.equal(model.log_prob(later, generator=gen(13)), loaded.train().log_prob(later, generator=gen(13)))
    fresh = api.build("glow", **api.preset("glow", "tiny")["config"]).train()
    fresh.load_state_dict({k: v for k, v in model.state_dict().items()})
    assert all(bool(m.initialized) for m in fresh.modules() if isinstance(m, ActNorm))


# --- sampling and the training schedule -----------------------------------------------------------------
def test_samples_are_8_bit_images_and_temperature_zero_is_the_mode():
    model = tiny_glow(torch.float32, side=28, scale=0.05, steps=1)
    s = model.sample(6, generator=gen(14), temperature=0.7)
    assert s.shape == (6, 784) and s.min() >= 0 and s.max() <= 255 / 256
    assert torch.equal(s * 256, (s * 256).round())
    cold = model.sample(3, generator=gen(15), temperature=0.0)
    assert torch.equal(cold, model.sample(3, generator=gen(16), temperature=0.0))
    assert not torch.equal(model.sample(3, generator=gen(15), temperature=1.0), cold)


def test_learning_rate_schedule_survives_resume():
    model = api.build("glow", **api.preset("glow", "tiny")["config"])
    opts = model.make_optimizers(lr=1e-3, warmup=2, total_steps=6)
    x = mnist.images("train")[:16]
    lrs = [model.train_step(x, opts, generator=gen(s))["lr"] for s in range(4)]
    assert lrs[:3] == pytest.approx([5e-4, 1e-3, 1e-3]) and lrs[3] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 4)))
    again = model.make_optimizers(lr=1e-3, warmup=2, total_steps=6)
    again[0].load_state_dict(opts[0].state_dict())
    resumed = model.train_step(x, again, generator=gen(4))["lr"]  # step 5 of 6, not step 1 again
    assert resumed == pytest.approx(warmup_cosine(1e-3, 4, 2, 6)) and resumed < lrs[3]
