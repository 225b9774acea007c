"""PixelCNN and gated PixelCNN math: the autoregressive property by Jacobian, normalization over every
3x3 binary image, cached sampler == naive sampler on the same uniforms, the measured blind spot, completion,
the all-zero-logit NLL and a short training run against the independent-Bernoulli baseline. Weights are
randomized (biases and all) so that a wrong mask or a wrong cache cannot pass by a zero."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.autograd.functional import jacobian

from engine import api
from engine.data import mnist
from engine import pixelcnn_analysis as analysis
from engine.models.pixelcnn import sample_cached, sample_naive, start_state
from engine.nn.masked_conv import causal_mask, horizontal_mask, vertical_mask

NETS = ["pixelcnn", "gated-pixelcnn"]


@torch.no_grad()
def randomized(name: str, *, seed: int = 0, dtype=torch.float64, scale: float = 0.3, **config):
    """A small net of the family with every parameter perturbed by N(0, scale^2)."""
    model = api.build(name, **{"channels": 6, "layers": 3, **config}).to(dtype).eval()
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(scale * torch.randn(p.shape, generator=g, dtype=dtype))
    return model


def test_masks():
    a, b = causal_mask(7, "A"), causal_mask(3, "B")
    assert a.sum() == 24 and a[3, 3] == 0 and a[3, :3].all() and not a[4:].any()
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert vertical_mask(3).tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]
    assert horizontal_mask(3, "A").tolist() == [[1, 0, 0]] and horizontal_mask(3, "B").tolist() == [[1, 1, 0]]
    with pytest.raises(ValueError):
        causal_mask(4, "A")


def dependency(model, probes: int = 3, seed: int = 0) -> torch.Tensor:
    """|d logit_i / d x_j| summed over random continuous inputs: (D, D), rows i, columns j."""
    g = torch.Generator().manual_seed(seed)
    total = 0
    for _ in range(probes):
        x = torch.rand(model.n_pixels, generator=g, dtype=torch.float64)
        total = total + jacobian(lambda v: model.logits(v[None])[0], x).abs()
    return total


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", NETS)
def test_autoregressive_property_by_jacobian(name, seed):
    model = randomized(name, seed=seed, image_shape=(5, 6))
    dep = dependency(model, seed=seed)
    d = model.n_pixels
    assert torch.equal(dep[torch.ones(d, d).triu().bool()], torch.zeros(d * (d + 1) // 2, dtype=dep.dtype))
    width = 6
    for i in range(d):
        r, c = divmod(i, width)
        if c > 0:
            assert dep[i, i - 1] > 0  # left neighbour
        if r > 0:
            assert dep[i, i - width] > 0  # the pixel above
    if name == "gated-pixelcnn":  # no blind spot: on a 5x6 image every earlier pixel is in the field
        assert (dep[torch.ones(d, d).tril(-1).bool()] > 0).all()
    else:  # PixelCNN's blind spot: (2, 0) cannot see (1, 4) (3 right of the row above), yet sees (0, 4)
        assert dep[2 * width, width + 4] == 0 and dep[2 * width, 4] > 0 and dep[2 * width, width + 3] > 0


@pytest.mark.parametrize("name", NETS)
def test_probabilities_of_all_3x3_images_sum_to_one(name):
    model = randomized(name, image_shape=(3, 3), scale=1.0)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9)), dtype=torch.float64)
    with torch.no_grad():
        total = model.log_prob(images).exp().sum().item()
    assert abs(total - 1.0) < 1e-6
    assert model.log_prob(images).std() > 0.5  # not the uniform distribution


@pytest.mark.parametrize("name", NETS)
def test_cached_sampler_matches_naive_on_a_whole_image(name):
    model = randomized(name, dtype=torch.float32, image_shape=(12, 11), scale=0.5)
    canvas, u, start = start_state(model, 3, torch.Generator().manual_seed(4))
    x_cached, l_cached = sample_cached(model, canvas, u, start)
    x_naive, l_naive = sample_naive(model, canvas, u, start)
    assert torch.equal(x_cached, x_naive)
    assert (l_cached - l_naive).abs().max() < 1e-5
    with torch.no_grad():  # each logit it drew from is the conditional of the finished image
        assert (model.logits(x_cached) - l_cached).abs().max() < 1e-5
    assert 0.05 < x_cached.mean() < 0.95


@pytest.mark.parametrize("name", NETS)
def test_cached_sampler_matches_naive_from_given_pixels(name):
    """Completion from the top rows and a start in the middle of a row: caches filled from a full pass."""
    model = randomized(name, dtype=torch.float64, image_shape=(7, 6), seed=2)
    given = (torch.rand(2, 42, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    for start in (18, 21):
        canvas, u, _ = start_state(model, 2, torch.Generator().manual_seed(start))
        canvas[:, :start] = given[:, :start]
        x_cached, l_cached = sample_cached(model, canvas, u, start)
        x_naive, l_naive = sample_naive(model, canvas, u, start)
        assert torch.equal(x_cached, x_naive) and torch.equal(x_cached[:, :start], given[:, :start])
        assert (l_cached[:, start:] - l_naive[:, start:]).abs().max() < 1e-10


def test_same_uniforms_same_samples_and_generator_seeds():
    model = randomized("pixelcnn", dtype=torch.float32, image_shape=(6, 6))
    u = torch.rand(2, 36, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.sample(2, uniforms=u), model.sample(2, uniforms=u))
    assert torch.equal(model.sample(2, generator=torch.Generator().manual_seed(0)), model.sample(2, uniforms=u))


@pytest.mark.parametrize("name, expected", [("pixelcnn", 28), ("gated-pixelcnn", 0)])
def test_blind_spot_at_the_centre(name, expected):
    """7x7 type A + 7 x 3x3 type B: the triangle above-right of (14, 14) that no layer reaches has 28
    pixels (7 + 6 + ... + 1); the gated net has none. The field grows layer by layer."""
    model = api.build(name, channels=4, layers=8).eval()
    field = analysis.receptive_field(model, (14, 14))
    assert analysis.blind_spot(field, (14, 14)).sum() == expected
    assert not field.flatten()[14 * 28 + 14:].any() and field[14, 13] and field[13, 14]
    previous = torch.zeros_like(field)
    for layers in range(1, 9):
        grown = analysis.receptive_field(model, (14, 14), layers=layers)
        assert (grown | previous).equal(grown) and grown.sum() > previous.sum()
        previous = grown
    assert previous.equal(field)
    if name == "pixelcnn":
        assert analysis.receptive_field(model, (14, 14), layers=1).sum() == 24  # the type-A kernel alone


def test_completion_keeps_the_given_pixels():
    model = randomized("gated-pixelcnn", dtype=torch.float32)
    digits = mnist.binarized("test")[:2]
    out = analysis.complete(model, digits, 14, per_digit=3, seed=1)
    assert out.shape == (2, 3, 784)
    assert torch.equal(out[:, :, :14 * 28], digits[:, None, :14 * 28].expand(2, 3, -1))
    assert not torch.equal(out[0, 0], out[0, 1])  # the completions differ
    with pytest.raises(ValueError):
        analysis.complete(model, digits, 29)


def test_generation_frames():
    model = randomized("pixelcnn", dtype=torch.float32, image_shape=(6, 5))
    frames = analysis.generation_frames(model, 2, stride=4, seed=3)
    images, beliefs, pixel = frames["images"], frames["beliefs"], frames["pixel"]
    assert images.shape == beliefs.shape == (len(pixel), 2, 6, 5) and images.dtype == beliefs.dtype == "uint8"
    assert pixel.tolist() == [0, 4, 8, 12, 16, 20, 24, 28, 30]
    assert images[0].sum() == 0 and torch.equal(torch.from_numpy(images[-1]).flatten(1).float(), frames["samples"])
    assert torch.equal(frames["samples"], model.sample(2, generator=torch.Generator().manual_seed(3)))
    expected = analysis.to_uint8(frames["probabilities"]).reshape(2, 6, 5)  # p each pixel was drawn from
    assert (abs(beliefs[-1].astype(int) - expected.astype(int)) <= 1).all()
    assert abs(frames["p_pixel"][1] - frames["probabilities"][:, 4].numpy()).max() < 1e-6


@pytest.mark.parametrize("name", ["pixelcnn", "gated-pixelcnn"])
def test_rows_are_reported_as_they_are_drawn(name):
    """on_row sees every row once, in order, with exactly the rows drawn so far (the page's live preview)."""
    model = randomized(name, dtype=torch.float32, image_shape=(6, 5))
    seen = []
    frames = analysis.generation_frames(model, 3, stride=4, seed=3, on_row=lambda r, canvas: seen.append((r, canvas)))
    assert [r for r, _ in seen] == list(range(6))
    for r, canvas in seen:
        drawn = torch.arange(30) < (r + 1) * 5
        assert torch.equal(canvas[:, drawn], frames["samples"][:, drawn]) and canvas[:, ~drawn].sum() == 0


def test_all_zero_logits_give_784_ln_2():
    model = api.build("pixelcnn", channels=4, layers=2)
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()
        nll = -model.log_prob(mnist.binarized("test")[:50]).mean().item()
    assert abs(nll - 784 * math.log(2)) < 1e-3 and abs(nll - 543.4) < 0.05


def test_short_training_beats_the_independent_bernoulli_baseline():
    torch.manual_seed(0)
    model = api.build("pixelcnn", **api.preset("pixelcnn", "tiny")["config"])
    optimizers = model.make_optimizers(lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for step, batch in zip(range(50), mnist.batches("train", 32, generator=g)):
        model.train_step(batch, optimizers)
    test = mnist.binarized("test")[:500]
    p = mnist.images("train").mean(0).clamp(1e-3, 1 - 1e-3)  # independent Bernoulli with the pixel means
    baseline = -(test * p.log() + (1 - test) * (1 - p).log()).sum(1).mean().item()
    with torch.no_grad():
        nll = -model.log_prob(test).mean().item()
    assert nll < baseline - 20, (nll, baseline)
