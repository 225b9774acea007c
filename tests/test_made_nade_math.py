"""MADE's and NADE's math: the autoregressive property by autograd Jacobians (zeros where they must be,
non-zeros where the masks allow), the dependency matrix drawn from the masks against the Jacobian, exact
normalization over all 2^n binary vectors, the mask ensemble as a mixture, the incremental sampler against
the naive one from the same uniforms, and a short training run against the independent-Bernoulli baseline.
Networks are randomized first (random weights, biases in [1, 2] so ReLU units are alive), and small
ones run in float64 so "sums to 1" means to 1e-6 and "zero" means exactly zero."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.autograd.functional import jacobian

from engine import api
from engine.data import mnist
from engine.models.made import (bernoulli_log_prob, evaluate, in_order, independent_bernoulli_nll, make_ordering,
                                ranks, uniforms_for)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def randomize(model, seed: int = 0, positive: bool = False):
    """Random weights ~ N(0, 1/fan_in) (U(0.1, 1)/fan_in when `positive`), biases ~ U(1, 2), in float64.
    Positive weights on inputs in [0, 1] keep every ReLU unit alive and let no two paths cancel, so a
    logit's gradient is non-zero exactly where some path of allowed connections exists."""
    g = gen(seed)
    for name, p in model.named_parameters():
        if p.dim() == 2:
            if positive:
                p.copy_((0.1 + 0.9 * torch.rand(p.shape, generator=g)) / p.shape[1])
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
        else:
            p.copy_(1 + torch.rand(p.shape, generator=g))
    return model.double().eval()


def made(side=(3, 4), hidden=(16,), seed: int = 0, positive: bool = False, **config):
    return randomize(api.build("made", image_shape=side, hidden=hidden, **config), seed, positive)


def nade(side=(3, 4), hidden: int = 8, seed: int = 0, **config):
    return randomize(api.build("nade", image_shape=side, hidden=hidden, **config), seed)


def all_binary_vectors(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)  # (2^n, n)


def jacobian_pattern(logits_fn, n: int, samples: int = 6) -> torch.Tensor:
    """(D, D) bool: d logit_i / d x_j != 0 at some of `samples` random points x in [0, 1]^D."""
    total = torch.zeros(n, n, dtype=torch.float64)
    for s in range(samples):
        x = torch.rand(n, generator=gen(100 + s), dtype=torch.float64)
        total += jacobian(lambda v: logits_fn(v[None])[0], x).abs()
    return total > 0


def strictly_earlier(order: torch.Tensor) -> torch.Tensor:
    """(D, D) bool: pixel j comes before pixel i in the ordering (the entries a conditional may use)."""
    rank = ranks(order)
    return rank[None, :] < rank[:, None]


ORDERINGS = [{"ordering": "natural"}, {"ordering": "random", "order_seed": 5},
             {"ordering": "explicit", "permutation": (11, 0, 10, 1, 9, 2, 8, 3, 7, 4, 6, 5)}]


# --- the autoregressive property ----------------------------------------------------------------------------
@pytest.mark.parametrize("ordering", ORDERINGS, ids=lambda o: o["ordering"])
@pytest.mark.parametrize("hidden", [(16,), (16, 16), (24, 12, 16)], ids=str)
@pytest.mark.parametrize("mask_seed", [0, 3])
def test_made_jacobian_is_the_mask_dependency_matrix(ordering, hidden, mask_seed):
    model = made(hidden=hidden, mask_seed=mask_seed, positive=True, **ordering)
    dependency = model.connectivity(0).dependency
    pattern = jacobian_pattern(model.logits, model.n_dims)
    assert torch.equal(pattern, dependency)  # zeros where the masks forbid, non-zeros wherever they allow
    assert not (pattern & ~strictly_earlier(model.order)).any()  # d logit_i / d x_j = 0 when order(j) >= order(i)
    assert torch.equal(in_order(dependency, model.order), in_order(dependency, model.order).tril(-1))
    assert pattern.sum() >= 0.5 * model.n_dims * (model.n_dims - 1) / 2  # a real net, not an empty one


def test_made_direct_connection_fills_the_lower_triangle():
    model = made(hidden=(4,), mask_seed=1, direct=True, ordering="random", order_seed=2, positive=True)
    pattern = jacobian_pattern(model.logits, model.n_dims)
    assert torch.equal(pattern, model.connectivity(0).dependency)
    assert torch.equal(pattern, strictly_earlier(model.order))  # the direct weights reach every earlier pixel


def test_made_jacobian_at_full_size():
    """28x28 with a random ordering: no logit sees its own or a later pixel."""
    model = made(side=(28, 28), hidden=(32,), ordering="random", order_seed=1, positive=True)
    pattern = jacobian_pattern(model.logits, model.n_dims, samples=2)
    assert torch.equal(pattern, model.connectivity(0).dependency)
    assert not (pattern & ~strictly_earlier(model.order)).any() and pattern.sum() > 10_000


@pytest.mark.parametrize("ordering", ORDERINGS, ids=lambda o: o["ordering"])
def test_nade_jacobian_is_strictly_lower_triangular_in_its_ordering(ordering):
    model = nade(**ordering)
    pattern = jacobian_pattern(model.logits, model.n_dims, samples=2)
    assert torch.equal(pattern, strictly_earlier(model.order))  # every earlier pixel, and nothing else


def test_degrees_and_masks_follow_germain_et_al():
    model = made(hidden=(16, 16), ordering="random", order_seed=4, mask_seed=2)
    conn = model.connectivity(0)
    n = model.n_dims
    assert torch.equal(conn.degrees[0], ranks(model.order) + 1)  # inputs: 1..D in sampling order
    for earlier, later, mask in zip(conn.degrees[:-1], conn.degrees[1:], conn.masks[:-1]):
        assert later.min() >= earlier.min() and later.max() <= n - 1
        assert torch.equal(mask, (later[:, None] >= earlier[None, :]).float())
    assert torch.equal(conn.masks[-1], (conn.degrees[0][:, None] > conn.degrees[-1][None, :]).float())
    other = model.connectivity(1)  # mask seed + 1: new connectivity, same ordering
    assert not torch.equal(conn.degrees[1], other.degrees[1]) and torch.equal(conn.degrees[0], other.degrees[0])
    reordered = made(hidden=(16, 16), ordering="natural", mask_seed=2).connectivity(0)
    assert not torch.equal(reordered.dependency, conn.dependency)


def test_orderings_are_permutations_and_bad_ones_are_refused():
    assert torch.equal(make_ordering(5), torch.arange(5))
    order = make_ordering(50, "random", order_seed=3)
    assert torch.equal(order.sort().values, torch.arange(50)) and not torch.equal(order, torch.arange(50))
    assert torch.equal(order, make_ordering(50, "random", order_seed=3))
    with pytest.raises(ValueError, match="exactly once"):
        make_ordering(3, "explicit", permutation=(0, 0, 1))
    with pytest.raises(ValueError, match="unknown ordering"):
        make_ordering(3, "spiral")
    with pytest.raises(ValueError, match="only used with"):
        make_ordering(3, "natural", permutation=(2, 1, 0))


# --- normalization and the mixture -----------------------------------------------------------------------
@pytest.mark.parametrize("which", ["made", "made-deep-direct", "made-ensemble-4", "nade"])
def test_probabilities_of_all_1024_vectors_sum_to_one(which):
    x = all_binary_vectors(10)
    with torch.no_grad():
        if which == "nade":
            log_p = nade(side=(2, 5), ordering="random", order_seed=1).log_prob(x)
        elif which == "made-deep-direct":
            log_p = made(side=(2, 5), hidden=(16, 16), direct=True).log_prob(x)
        else:
            masks = 4 if which == "made-ensemble-4" else 1
            log_p = made(side=(2, 5), hidden=(16,), ordering="random", order_seed=7).log_prob(x, masks=masks)
    assert abs(log_p.exp().sum().item() - 1) < 1e-6
    assert log_p.exp().min() > 0 and log_p.std() > 0.1  # not the uniform distribution


def test_all_zero_logits_give_n_ln_2():
    x = mnist.binarized("test")[:20].double()
    for model in (made(side=(28, 28), hidden=(32,)), nade(side=(28, 28), hidden=8)):
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.startswith("layers.1") or name in ("V", "b"):
                    p.zero_()  # the output layer: every logit is 0, whatever the hidden units do
            assert torch.allclose(-model.log_prob(x), torch.full((20,), 784 * math.log(2), dtype=torch.float64))
    assert round(784 * math.log(2), 1) == 543.4


def test_mask_ensemble_is_log_mean_exp_of_joint_probabilities():
    model = made(hidden=(16,), ordering="random", order_seed=3)
    x = (torch.rand(30, model.n_dims, generator=gen(2)) < 0.4).double()
    K = 5
    with torch.no_grad():
        joint = []
        for k in range(K):  # p_k(x) = prod_i p_i^x_i (1 - p_i)^(1 - x_i), written out by hand
            p = torch.sigmoid(model.logits(x, k))
            joint.append(torch.prod(p ** x * (1 - p) ** (1 - x), dim=1))
        manual = torch.log(torch.stack(joint).mean(0))  # log of the mean probability
        ensemble = model.log_prob(x, masks=K)
        assert torch.allclose(ensemble, manual, atol=1e-10)
        averaged_logits = torch.stack([model.logits(x, k) for k in range(K)]).mean(0)
        wrong = bernoulli_log_prob(x, averaged_logits)
        assert (wrong - ensemble).abs().mean() > 1e-2  # a different model, not the ensemble's mixture
        curve = model.ensemble_curve(x, K)
        assert curve == pytest.approx([-model.log_prob(x, masks=k).mean().item() for k in range(1, K + 1)], abs=1e-9)
        assert curve[0] == pytest.approx(-bernoulli_log_prob(x, model.logits(x, 0)).mean().item())


def test_connectivity_agnostic_training_cycles_the_masks():
    model = api.build("made", image_shape=(3, 4), hidden=(16,), n_masks=3)
    optimizers = model.make_optimizers(lr=1e-3)
    batch = (torch.rand(8, 12, generator=gen(0)) < 0.5).float()
    for step in range(6):
        with torch.no_grad():
            expected = model.loss(batch, step % 3)["loss"].item()
            others = [model.loss(batch, k)["loss"].item() for k in range(3) if k != step % 3]
        got = model.train_step(batch, optimizers)["loss"]
        assert got == pytest.approx(expected, abs=1e-6) and all(abs(got - o) > 1e-6 for o in others)


# --- sampling ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [
    {"hidden": (16,)}, {"hidden": (16, 12), "ordering": "random", "order_seed": 2},
    {"hidden": (8,), "direct": True, "mask_seed": 4}], ids=["one-layer", "two-layers-random", "direct"])
def test_made_incremental_sampler_equals_naive(config):
    model = made(**config)
    u = uniforms_for(64, model.n_dims, gen(9)).double()
    naive, naive_p = model.sample_naive(u)
    fast, fast_p = model.sample_incremental(u)
    assert torch.equal(naive, fast) and 0.1 < fast.mean() < 0.9
    assert torch.allclose(naive_p, fast_p, atol=1e-5)
    with torch.no_grad():  # each pixel was drawn with its exact conditional given the earlier pixels
        assert torch.allclose(torch.sigmoid(model.logits(fast)), fast_p, atol=1e-5)


def test_made_samplers_agree_at_full_size_in_float32():
    model = api.build("made", hidden=(32,), ordering="random", order_seed=1, mask_seed=2).eval()
    u = uniforms_for(3, 784, gen(4))
    naive, naive_p = model.sample_naive(u)
    fast, fast_p = model.sample_incremental(u)
    assert torch.equal(naive, fast) and torch.allclose(naive_p, fast_p, atol=1e-5)
    assert torch.equal(model.sample(3, generator=gen(4)), fast)  # sample() is the incremental path
    assert torch.equal(model.sample(3, uniforms=u), fast) and not torch.equal(model.sample(3, generator=gen(5)), fast)


def test_made_frames_replay_the_sample():
    model = made(hidden=(16,), ordering="random", order_seed=3)
    u = uniforms_for(2, model.n_dims, gen(1)).double()
    frames = model.sampling_frames(2, uniforms=u, every=5)
    x, p = model.sample_incremental(u)
    assert frames["step"].tolist() == [0, 5, 10, 12] and torch.equal(frames["samples"], x)
    assert torch.equal(frames["images"][-1].reshape(2, -1), x) and frames["images"][0].isnan().all()
    for t, pixel, probs in zip(frames["step"][:-1], frames["pixel"][:-1], frames["probs"][:-1]):
        probs = probs.reshape(2, -1)
        assert pixel == model.order[t] and torch.allclose(probs[:, pixel], p[:, pixel], atol=1e-6)
        assert probs[:, model.order[:t]].isnan().all() and not probs[:, model.order[t:]].isnan().any()


def test_nade_sampler_uses_its_exact_conditionals():
    model = nade(hidden=8, ordering="random", order_seed=2)
    u = uniforms_for(50, model.n_dims, gen(3)).double()
    x, probs, _ = model.sample_with_probs(u)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(model.logits(x)), probs, atol=1e-10)
    frames = model.sampling_frames(50, uniforms=u, every=4)
    assert torch.equal(frames["samples"], x) and torch.equal(model.sample(50, uniforms=u), x)
    for t, canvas, p in zip(frames["step"], frames["images"], frames["probs"]):
        canvas, p = canvas.reshape(50, -1).nan_to_num(0.0), p.reshape(50, -1)
        undrawn = model.order[t:]
        with torch.no_grad():  # the running activation's read-out equals the full pass on the canvas
            assert torch.allclose(p[:, undrawn], torch.sigmoid(model.logits(canvas))[:, undrawn], atol=1e-10)


@pytest.mark.parametrize("side", [(5, 7), (28, 28)], ids=["35-pixels-padded-blocks", "784-pixels"])
def test_nade_blocked_running_sums_equal_the_sequential_ones(side):
    """logits() sums W[:, o_s] x_{o_s} in blocks of 28 positions; the sampler adds one column at a time."""
    model = nade(side=side, hidden=6, ordering="random", order_seed=1)
    x, probs, _ = model.sample_with_probs(uniforms_for(4, model.n_dims, gen(2)).double())
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(model.logits(x)), probs, atol=1e-10)


# --- baselines and a short training run ---------------------------------------------------------------------
def test_independent_bernoulli_nll_by_hand():
    train = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    test = torch.tensor([[1.0, 1.0]])
    # p = (1 - eps clamp of 1.0, 0.5)
    assert independent_bernoulli_nll(train, test, eps=1e-3) == pytest.approx(-math.log(0.999) + math.log(2))


def test_short_training_beats_the_independent_bernoulli_baseline():
    model = api.new_model_for_training("made", {"hidden": (32,)})  # output biases at the pixel marginals
    with torch.no_grad():
        at_start = -model.log_prob(mnist.binarized("test")[:1000]).mean().item()
    trainer = api.make_trainer(model, {"epochs": 1, "batch_size": 100, "lr": 3e-3, "max_steps": 150}, seed=0,
                               log_every=50)
    updates = list(trainer.run())
    test = mnist.binarized("test")[:1000]
    with torch.no_grad():
        nll = -model.log_prob(test).mean().item()
    baseline = independent_bernoulli_nll(mnist.images("train"), test)
    assert 190 < baseline < 220  # pixels independent: about 206 nats on binarized MNIST
    assert at_start == pytest.approx(baseline, abs=15)  # starts near the baseline (hidden units add noise)
    assert nll < baseline - 20
    assert updates[0]["valid_nll"] > updates[-1]["valid_nll"]


def test_evaluate_reports_exact_nll_and_the_ensemble_curve(monkeypatch):
    test = (torch.rand(40, 12, generator=gen(0)) < 0.5).float()
    monkeypatch.setattr(mnist, "binarized", lambda split="test": test)
    monkeypatch.setattr(mnist, "images", lambda split="train": torch.full((5, 12), 0.5))
    model = made(hidden=(16,), n_masks=3).float()
    result = evaluate(model)
    with torch.no_grad():
        expected = -model.log_prob(test).mean().item()
    assert result["test_nll"]["nats"] == pytest.approx(expected, rel=1e-6)
    assert result["test_nll"]["bits_per_dim"] == pytest.approx(expected / (12 * math.log(2)), rel=1e-6)
    assert result["test_nll"]["mask_ensemble"]["masks"] == [1, 2, 3]
    assert result["baseline_independent_bernoulli"] == pytest.approx(12 * math.log(2), rel=1e-6)
    assert "nats" in evaluate(nade(hidden=4).float())["test_nll"]
