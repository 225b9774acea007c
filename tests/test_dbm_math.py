"""DBM math checked by brute-force enumeration on tiny models (float64).

Every quantity is computed twice: by the engine and from the energy
E(v, h1, h2) = -v^T W1 h1 - h1^T W2 h2 - b^T v - c^T h1 - d^T h2 summed over every configuration.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.metrics import ais
from engine.models.dbm import DBM, DBMConfig, DBMLearning


def all_binary(n: int) -> torch.Tensor:
    codes = torch.arange(2 ** n)
    return ((codes[:, None] >> torch.arange(n)) & 1).double()


def tiny_dbm(D: int = 6, F1: int = 5, F2: int = 4, *, scale: float = 1.0, seed: int = 0) -> DBM:
    g = torch.Generator().manual_seed(seed)
    model = DBM(DBMConfig(n_visible=D, n_hidden1=F1, n_hidden2=F2, image_shape=(1, D), mf_steps=30)).double()
    with torch.no_grad():
        model.W1.copy_(torch.randn(D, F1, generator=g, dtype=torch.float64) * scale)
        model.W2.copy_(torch.randn(F1, F2, generator=g, dtype=torch.float64) * scale)
        for p in (model.b, model.c, model.d):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return model


def brute_log_p_star(model: DBM) -> torch.Tensor:
    """log sum_{h1, h2} exp(-E(v, h1, h2)) for every v (2^D,), from the full energy table."""
    D, F1, F2 = model.config.n_visible, model.config.n_hidden1, model.config.n_hidden2
    v, h1, h2 = all_binary(D), all_binary(F1), all_binary(F2)
    W1, W2, b, c, d = (t.detach() for t in (model.W1, model.W2, model.b, model.c, model.d))
    neg_e = ((v @ W1 @ h1.t())[:, :, None] + (h1 @ W2 @ h2.t())[None] + (v @ b)[:, None, None]
             + (h1 @ c)[None, :, None] + (h2 @ d)[None, None, :])  # (2^D, 2^F1, 2^F2)
    return torch.logsumexp(neg_e.reshape(len(v), -1), 1)


def test_energy_matches_its_formula():
    model = tiny_dbm()
    g = torch.Generator().manual_seed(3)
    v, h1, h2 = (torch.randint(0, 2, (4, n), generator=g).double() for n in (6, 5, 4))
    expected = -(torch.einsum("bi,ij,bj->b", v, model.W1, h1) + torch.einsum("bj,jk,bk->b", h1, model.W2, h2)
                 + v @ model.b + h1 @ model.c + h2 @ model.d)
    assert torch.allclose(model.energy(v, h1, h2), expected.detach(), atol=1e-12)


def test_exact_log_z_and_log_p_star_match_full_enumeration():
    model = tiny_dbm()
    brute = brute_log_p_star(model)
    assert model.exact_log_z() == pytest.approx(torch.logsumexp(brute, 0).item(), abs=1e-9)
    assert torch.allclose(model.exact_log_p_star(all_binary(6)), brute, atol=1e-9)
    # and the h1-summed form is the RBM over [v, h2]: log p*(v, h2) via the engine's RBM view
    W, bv, a = model.rbm_view()
    vh2 = torch.cat([all_binary(6).repeat_interleave(16, 0), all_binary(4).repeat(64, 1)], 1)
    log_p_vh2 = vh2 @ bv + F.softplus(vh2 @ W + a).sum(-1)
    assert torch.logsumexp(log_p_vh2, 0).item() == pytest.approx(model.exact_log_z(), abs=1e-9)


def test_ais_on_the_h1_summed_dbm_is_within_a_tenth_of_a_nat():
    """A tiny DBM (20 visible, 10 + 8 hidden): AIS over [v, h2] with h1 summed out vs enumeration of h1."""
    model = tiny_dbm(20, 10, 8, scale=0.5, seed=1)
    W, bv, a = model.rbm_view()
    base = torch.zeros(28, dtype=torch.float64)
    result = ais(W, bv, a, base, n_runs=100, n_betas=1500, generator=torch.Generator().manual_seed(0))
    assert abs(result.log_z - model.exact_log_z()) < 0.1
    assert result.log_z_std < 0.05


def test_mean_field_fixed_point_satisfies_its_equations():
    model = tiny_dbm(scale=1.5, seed=2)
    v = all_binary(6)
    with torch.no_grad():
        mu1, mu2 = model.mean_field(v, steps=500)
        r1 = torch.sigmoid(model.c + v @ model.W1 + mu2 @ model.W2.t()) - mu1
        r2 = torch.sigmoid(model.d + mu1 @ model.W2) - mu2
    assert r1.abs().max() < 1e-6 and r2.abs().max() < 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_bound_never_decreases_over_sweeps(seed):
    """Each half-sweep is exact coordinate ascent on the bound, so it can only rise (strong weights, where a
    simultaneous update of both layers oscillates)."""
    model = tiny_dbm(scale=3.0, seed=seed)
    for v in all_binary(6)[::3]:
        bound = model.mean_field_frames(v, 40)["bound"]
        assert (bound[1:] - bound[:-1]).min() > -1e-10


def test_simultaneous_updates_would_break_monotonicity():
    """The check above can fail: updating mu1 and mu2 at once from the old values (from random starts)
    does decrease the bound."""
    model = tiny_dbm(scale=3.0, seed=0)
    v = all_binary(6)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        mu1, mu2 = torch.rand(64, 5, generator=g, dtype=torch.float64), torch.rand(64, 4, generator=g, dtype=torch.float64)
        worst = 0.0
        prev = model.bound_unnormalized(v, mu1, mu2)
        for _ in range(40):
            mu1, mu2 = torch.sigmoid(model.c + v @ model.W1 + mu2 @ model.W2.t()), torch.sigmoid(model.d + mu1 @ model.W2)
            now = model.bound_unnormalized(v, mu1, mu2)
            worst = min(worst, (now - prev).min().item())
            prev = now
    assert worst < -1e-3


def test_bound_is_below_exact_log_p():
    model = tiny_dbm(scale=1.5, seed=4)
    v = all_binary(6)
    log_z = model.exact_log_z()
    exact = model.exact_log_p_star(v) - log_z
    bound = model.mf_bound(v, log_z, steps=50)
    assert (bound <= exact + 1e-9).all()
    assert (exact - bound).max() > 1e-3  # a factorial q is not exact here


def test_importance_sampling_converges_to_exact_log_p():
    model = tiny_dbm(scale=1.5, seed=5)
    v = all_binary(6)[::7]
    exact = model.exact_log_p_star(v)
    g = torch.Generator().manual_seed(0)
    errs = {}
    for k in (1, 10, 10000):
        out = model.importance_log_p_star(v, k, generator=g)
        errs[k] = (out["log_p_star"] - exact).abs().mean().item()
        assert (out["ess"] <= k + 1e-6).all() and (out["ess"] >= 1 - 1e-6).all()
    assert errs[10000] < 0.02
    assert errs[10000] < errs[10] < errs[1] or errs[10000] < errs[1]


def test_doubling_first_mean_field_input_equals_pretraining_input():
    """Composed with RBM 1's h1 biases, the DBM's first mean-field h1 is RBM 1's doubled pretraining p(h1|v)."""
    model = tiny_dbm(scale=1.0, seed=6)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name in ("rbm1_W", "rbm1_b", "rbm1_c", "rbm2_W", "rbm2_c", "rbm2_d"):
            buf = getattr(model, name)
            buf.copy_(torch.randn(buf.shape, generator=g, dtype=torch.float64))
    v = all_binary(6)
    model.compose("first")
    mu1, _ = model.mf_init(v)
    assert torch.allclose(mu1, torch.sigmoid(model.rbm1_c + 2 * v @ model.rbm1_W), atol=1e-12)
    assert torch.allclose(mu1, model.stack_up(v)[0], atol=1e-12)
    model.compose("average")
    assert torch.allclose(model.c, (model.rbm1_c + model.rbm2_c) / 2)


def test_centred_update_is_the_centred_energy_gradient():
    """One joint step with centring equals a step on the centred parameters, mapped back: the model's
    energy differences after the step match the centred energy's (constants cancel)."""
    model = tiny_dbm(scale=0.5, seed=7)
    model.phase.fill_(2)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        model.offset_v.copy_(torch.rand(6, generator=g, dtype=torch.float64))
        model.offset_h1.copy_(torch.rand(5, generator=g, dtype=torch.float64))
        model.offset_h2.copy_(torch.rand(4, generator=g, dtype=torch.float64))
    ov, o1, o2 = model.offset_v.clone(), model.offset_h1.clone(), model.offset_h2.clone()
    W1, W2 = model.W1.detach().clone(), model.W2.detach().clone()
    # centred biases before the step: b' = b + W1 o1, c' = c + W1^T ov + W2 o2, d' = d + W2^T o1
    bp, cp, dp = model.b + W1 @ o1, model.c + W1.t() @ ov + W2 @ o2, model.d + W2.t() @ o1
    learner = DBMLearning(model, pretrain_epochs=0, centring=False, momentum=0.0, weight_decay=0.0,
                          n_chains=8, pcd_steps=1)
    learner.velocity = [torch.zeros_like(p) for p in learner._params(2)]
    v = torch.randint(0, 2, (8, 6), generator=g).double()
    learner.chains = (torch.randint(0, 2, (8, 6), generator=g).double(), torch.randint(0, 2, (8, 4), generator=g).double())
    learner.step(v, generator=g)
    dW1, dW2, db, dc, dd = learner.velocity
    # the centred parameters after the step, and their energy vs the model's on random states
    W1n, W2n = W1 + dW1, W2 + dW2
    bn, cn, dn = bp + db, cp + dc, dp + dd
    vs, h1s, h2s = (torch.randint(0, 2, (20, n), generator=g).double() for n in (6, 5, 4))
    centred = -(torch.einsum("bi,ij,bj->b", vs - ov, W1n, h1s - o1) + torch.einsum("bj,jk,bk->b", h1s - o1, W2n, h2s - o2)
                + vs @ bn + h1s @ cn + h2s @ dn)
    model_e = model.energy(vs, h1s, h2s).detach()
    diff = centred - model_e
    assert torch.allclose(diff, diff[0].expand_as(diff), atol=1e-9)


def test_mean_field_with_missing_pixels_bounds_the_marginal_and_never_decreases():
    """Unobserved pixels as mean-field variables: the bound rises every sweep and stays below the exact
    log sum over the missing pixels of p*(v)."""
    model = tiny_dbm(scale=1.5, seed=8)
    missing = torch.tensor([False, False, True, False, True, True])
    v_all = all_binary(6)
    for v in v_all[::5]:
        out = model.mean_field_frames(v, 40, missing=missing)
        bound = out["bound"]
        assert (bound[1:] - bound[:-1]).min() > -1e-10
        completions = v_all[(v_all[:, ~missing] == v[~missing]).all(1)]  # the 8 fillings of the missing pixels
        exact = torch.logsumexp(model.exact_log_p_star(completions), 0)
        assert bound[-1] <= exact + 1e-9
        assert torch.equal(out["v"][0][missing], torch.zeros(3, dtype=torch.float64))


def test_averaging_ends_training_on_the_mean_of_the_epoch_end_weights():
    """With average_from = 1, the DBM ends on the mean of its weights after joint epochs 2..4, and a resume state
    taken mid-way carries the running sum."""
    from engine.models.dbm import DBMLearning
    from engine.train import Trainer
    torch.manual_seed(0)
    model = DBM(DBMConfig(n_visible=12, n_hidden1=6, n_hidden2=4, image_shape=(3, 4)))
    data = [(torch.rand(10, 12) < 0.4).float() for _ in range(3)]
    trainer = Trainer(model=model, batches=lambda g: iter(data), epochs=4,
                      hparams={"pretrain_epochs": 0, "average_from": 1, "ais_every": 0, "n_chains": 10, "verbose": False})
    ends = []
    for update in trainer.run():
        if update.get("epoch_end"):
            ends.append([p.clone() for p in (model.W1, model.W2, model.b, model.c, model.d)])
    (learner,) = trainer.optimizers
    assert learner.averaged == 3
    for i, p in enumerate((model.W1, model.W2, model.b, model.c, model.d)):
        assert torch.allclose(p, torch.stack([e[i] for e in ends[1:]]).mean(0), atol=1e-6)
        assert not torch.allclose(p, ends[-1][i])
    fresh = DBMLearning(DBM(model.config), pretrain_epochs=0, average_from=1)
    fresh.load_state_dict(learner.state_dict())
    assert fresh.averaged == 3 and all(torch.equal(a, b) for a, b in zip(fresh.average_sum, learner.average_sum))
    later_stage = DBMLearning(DBM(model.config), pretrain_epochs=0, average_from=3)  # a new stage: its own average
    later_stage.load_state_dict(learner.state_dict())
    assert later_stage.averaged == 0 and later_stage.average_sum is None
    old_state = {**learner.state_dict(), "counters": learner.state_dict()["counters"][:3]}  # written before the stage was kept
    fresh.load_state_dict(old_state)
    assert fresh.averaged == 0 and fresh.average_sum is None
