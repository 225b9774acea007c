"""RBM math checked by brute-force enumeration on tiny models (float64 where the engine allows it).

Every identity here is computed twice: once by the engine, once from the energy
E(v, h) = -v^T W h - b^T v - a^T h summed over every visible and/or hidden configuration.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from engine.metrics import exact_log_z_rbm
from engine.models.rbm import RBM, ContrastiveDivergence, RBMConfig


def all_binary(n: int, dtype=torch.float64) -> torch.Tensor:
    """Every binary vector of length n: (2^n, n)."""
    codes = torch.arange(2 ** n)
    return ((codes[:, None] >> torch.arange(n)) & 1).to(dtype)


def tiny_rbm(n_visible: int = 10, n_hidden: int = 6, *, scale: float = 1.0, seed: int = 0,
             dtype=torch.float64) -> RBM:
    """An RBM with random weights of std `scale` and biases of std 0.5."""
    g = torch.Generator().manual_seed(seed)
    model = RBM(RBMConfig(n_visible=n_visible, n_hidden=n_hidden, image_shape=(1, n_visible), sample_steps=5))
    with torch.no_grad():
        model.W.copy_(torch.randn(n_visible, n_hidden, generator=g) * scale)
        model.b.copy_(torch.randn(n_visible, generator=g) * 0.5)
        model.a.copy_(torch.randn(n_hidden, generator=g) * 0.5)
    return model.to(dtype)


def joint_neg_energy(model: RBM, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """-E(v, h) for every pair, written out independently of model.energy: (Nv, D), (Nh, F) -> (Nv, Nh)."""
    W, b, a = model.W.detach(), model.b.detach(), model.a.detach()
    return v @ W @ h.t() + (v @ b)[:, None] + (h @ a)[None, :]


def random_binary(n: int, d: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.5).to(dtype)


# --- energies, free energy, partition function ---------------------------------------------------
def test_energy_matches_its_formula():
    model = tiny_rbm()
    v, h = random_binary(7, 10, 1), random_binary(7, 6, 2)
    expected = -torch.diagonal(joint_neg_energy(model, v, h))
    assert torch.allclose(model.energy(v, h), expected, atol=1e-12)


def test_free_energy_is_minus_log_sum_over_hidden():
    model = tiny_rbm(10, 6)
    v = all_binary(10)
    brute = -torch.logsumexp(joint_neg_energy(model, v, all_binary(6)), dim=1)  # (2^D,)
    with torch.no_grad():
        engine = model.free_energy(v)
    assert engine.shape == (2 ** 10,)
    assert torch.allclose(engine, brute, atol=1e-10)


def test_exact_log_z_matches_enumeration_of_visible_and_hidden():
    model = tiny_rbm(8, 6, seed=3)
    brute = torch.logsumexp(joint_neg_energy(model, all_binary(8), all_binary(6)).flatten(), 0).item()
    assert exact_log_z_rbm(model.W, model.b, model.a) == pytest.approx(brute, abs=1e-10)


def test_exact_log_p_v_sums_to_one():
    model = tiny_rbm(10, 7, seed=4)
    log_z = exact_log_z_rbm(model.W, model.b, model.a)
    with torch.no_grad():
        log_p = -model.free_energy(all_binary(10)) - log_z  # (2^D,)
    assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-10)
    assert log_p.max().item() < 0  # a genuine distribution, not one config taking all the mass


def test_exact_log_z_of_independent_model_is_closed_form():
    """W = 0: Z = prod_i (1 + e^{b_i}) prod_j (1 + e^{a_j})."""
    b, a = torch.randn(9, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    expected = F.softplus(b).sum().item() + F.softplus(a).sum().item()
    assert exact_log_z_rbm(torch.zeros(9, 5), b, a) == pytest.approx(expected, abs=1e-10)


# --- conditionals --------------------------------------------------------------------------------
def test_p_h_matches_conditional_of_joint():
    model = tiny_rbm(10, 6, seed=5)
    v, h = random_binary(12, 10, 6), all_binary(6)
    cond = torch.softmax(joint_neg_energy(model, v, h), dim=1)  # p(h | v): (12, 2^F)
    with torch.no_grad():
        p = model.p_h(v)  # (12, F)
    assert torch.allclose(p, cond @ h, atol=1e-12)  # marginals P(h_j = 1 | v)
    factorised = (p[:, None, :] * h + (1 - p[:, None, :]) * (1 - h)).prod(-1)  # (12, 2^F)
    assert torch.allclose(factorised, cond, atol=1e-12)  # and p(h|v) factorises over units


def test_p_v_matches_conditional_of_joint():
    model = tiny_rbm(8, 6, seed=7)
    v, h = all_binary(8), random_binary(9, 6, 8)
    cond = torch.softmax(joint_neg_energy(model, v, h).t(), dim=1)  # p(v | h): (9, 2^D)
    with torch.no_grad():
        p = model.p_v(h)  # (9, D)
    assert torch.allclose(p, cond @ v, atol=1e-12)
    factorised = (p[:, None, :] * v + (1 - p[:, None, :]) * (1 - v)).prod(-1)
    assert torch.allclose(factorised, cond, atol=1e-12)


def test_gibbs_chain_reaches_the_exact_distribution():
    model = tiny_rbm(6, 4, seed=9)
    log_z = exact_log_z_rbm(model.W, model.b, model.a)
    states = all_binary(6)
    with torch.no_grad():
        exact = torch.exp(-model.free_energy(states) - log_z)  # (64,)
        g = torch.Generator().manual_seed(0)
        v = random_binary(20000, 6, 10)
        for _ in range(40):
            v, _ = model.gibbs_step(v, g)
    codes = (v.long() << torch.arange(6)).sum(1)  # same code as all_binary's row index
    empirical = torch.bincount(codes, minlength=64).double() / len(v)
    total_variation = 0.5 * (empirical - exact).abs().sum().item()
    assert total_variation < 0.035, total_variation  # sampling noise alone is about 0.02


# --- gradients ------------------------------------------------------------------------------------
def test_free_energy_gradient_gives_exact_log_likelihood_gradient():
    """d/dW mean log p(v) = E_data[v p(h|v)^T] - E_model[v p(h|v)^T], with the model term by enumeration."""
    model = tiny_rbm(8, 5, seed=11)
    data, states = random_binary(20, 8, 12), all_binary(8)
    log_z = torch.logsumexp(-model.free_energy(states), 0)  # differentiable exact log Z
    mean_ll = (-model.free_energy(data) - log_z).mean()
    grad_W, grad_b, grad_a = torch.autograd.grad(mean_ll, (model.W, model.b, model.a))
    with torch.no_grad():
        p_model = torch.softmax(-model.free_energy(states), 0)  # (2^D,)
        ph_data, ph_states = model.p_h(data), model.p_h(states)
        expected_W = data.t() @ ph_data / len(data) - (states * p_model[:, None]).t() @ ph_states
        expected_b = data.mean(0) - p_model @ states
        expected_a = ph_data.mean(0) - p_model @ ph_states
    assert torch.allclose(grad_W, expected_W, atol=1e-10)
    assert torch.allclose(grad_b, expected_b, atol=1e-10)
    assert torch.allclose(grad_a, expected_a, atol=1e-10)


def surrogate_grads(model: RBM, batch: torch.Tensor, seed: int):
    """Autograd of the model's CD-1 surrogate loss F(v_pos).mean() - F(v_neg).mean() with a seeded v_neg."""
    terms = model.loss(batch, generator=torch.Generator().manual_seed(seed))
    grads = torch.autograd.grad(terms["loss"], (model.W, model.b, model.a))
    return grads, terms["free_energy_gap"].item()


def params(model: RBM) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (model.W, model.b, model.a)]


def test_cd_step_matches_autograd_of_surrogate_loss():
    """With momentum 0 and no weight decay, one CD-1 step is exactly -lr * grad of the surrogate.

    CD's step and model.loss draw h ~ p(h|v_data) then v_neg ~ p(v|h) in the same order, so equal
    seeds give both the same negative samples (their free-energy gaps agree, which confirms it)."""
    model = tiny_rbm(12, 8, seed=13, dtype=torch.float32)
    reference = copy.deepcopy(model)
    batch = random_binary(32, 12, 14, dtype=torch.float32)
    lr = 0.1
    before = params(model)
    cd = ContrastiveDivergence(model, lr=lr, k=1, persistent=False, momentum=0.0, weight_decay=0.0)
    out = cd.step(batch, generator=torch.Generator().manual_seed(99))
    grads, gap = surrogate_grads(reference, batch, 99)
    assert out["free_energy_gap"] == pytest.approx(gap, abs=1e-4)
    for after, prev, grad in zip(params(model), before, grads):
        delta = after - prev
        assert delta.abs().max() > 1e-3  # the step moved the parameter
        assert torch.allclose(delta, -lr * grad, atol=1e-6), (delta - -lr * grad).abs().max()


def test_cd_momentum_and_weight_decay():
    """Two steps: vel = m * vel - lr * (grad + wd * W) for W (no decay on biases), param += vel."""
    model = tiny_rbm(12, 8, seed=15, dtype=torch.float32)
    reference = copy.deepcopy(model)
    batch = random_binary(32, 12, 16, dtype=torch.float32)
    lr, m, wd = 0.1, 0.5, 0.05
    cd = ContrastiveDivergence(model, lr=lr, k=1, persistent=False, momentum=m, weight_decay=wd)
    gen = torch.Generator().manual_seed(5)
    vel = [torch.zeros_like(p) for p in params(model)]
    for step in range(2):
        before = params(model)
        reference.load_state_dict(model.state_dict())
        grads, _ = surrogate_grads(reference, batch, 100 + step)
        gen.manual_seed(100 + step)
        cd.step(batch, generator=gen)
        decay = [wd * before[0], 0, 0]
        vel = [m * v_ - lr * (g_ + d_) for v_, g_, d_ in zip(vel, grads, decay)]
        for after, prev, v_ in zip(params(model), before, vel):
            assert torch.allclose(after - prev, v_, atol=1e-6), (after - prev - v_).abs().max()
    assert vel[0].abs().max() > 1e-3


def test_pcd_chain_continues_from_the_negative_sample():
    """PCD keeps h ~ p(h | v_neg) as the fantasy state, and the next step's v_neg is drawn from it."""
    model = tiny_rbm(12, 8, seed=30, dtype=torch.float32)
    batch = random_binary(16, 12, 31, dtype=torch.float32)
    cd = ContrastiveDivergence(model, lr=0.0, k=1, persistent=True, momentum=0.0, weight_decay=0.0)
    cd.step(batch, generator=torch.Generator().manual_seed(8))
    g = torch.Generator().manual_seed(8)  # the same draws by hand: h0 | data, v_neg | h0, chain | v_neg
    with torch.no_grad():
        h0 = (torch.rand(16, 8, generator=g) < model.p_h(batch)).float()
        v_neg = (torch.rand(16, 12, generator=g) < model.p_v(h0)).float()
        chain = (torch.rand(16, 8, generator=g) < model.p_h(v_neg)).float()
    assert cd.chain_h.shape == (16, 8)
    assert torch.equal(cd.chain_h, chain)


def test_pcd_fantasy_chains_sample_the_model():
    """With lr = 0 the persistent chains are plain Gibbs chains: their h matches the exact marginal p(h)."""
    model = tiny_rbm(6, 4, seed=32, dtype=torch.float32)
    cd = ContrastiveDivergence(model, lr=0.0, k=1, persistent=True, momentum=0.0, weight_decay=0.0)
    data = random_binary(20000, 6, 33, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        cd.step(data, generator=g)
    h = all_binary(4)
    W, b, a = (p.detach().double() for p in (model.W, model.b, model.a))
    exact = torch.softmax(h @ a + F.softplus(h @ W.t() + b).sum(-1), 0)  # p(h), v summed out: (16,)
    codes = (cd.chain_h.long() << torch.arange(4)).sum(1)
    empirical = torch.bincount(codes, minlength=16).double() / len(codes)
    assert 0.5 * (empirical - exact).abs().sum().item() < 0.025  # sampling noise alone is about 0.01


def test_bf16_matmul_step_stays_close_to_fp32():
    """Same seed, same start: the bf16-matmul step lands within a few percent of the fp32 step.

    Rounded pre-activations flip the odd hidden sample, which gives 0.2-2% relative differences."""
    model32 = tiny_rbm(64, 32, seed=17, scale=0.3, dtype=torch.float32)
    with torch.no_grad():  # weights exactly representable in bf16, so only the products round
        model32.W.copy_(model32.W.to(torch.bfloat16).float())
    model16 = copy.deepcopy(model32)
    batch = random_binary(100, 64, 18, dtype=torch.float32)
    before = params(model32)
    settings = dict(lr=0.1, k=1, persistent=False, momentum=0.0, weight_decay=0.0)
    out32 = ContrastiveDivergence(model32, **settings).step(batch, generator=torch.Generator().manual_seed(3))
    out16 = ContrastiveDivergence(model16, matmul_dtype=torch.bfloat16, **settings).step(
        batch, generator=torch.Generator().manual_seed(3))
    for p32, p16, prev in zip(params(model32), params(model16), before):
        d32, d16 = p32 - prev, p16 - prev
        assert d32.norm() > 0.01
        assert ((d16 - d32).norm() / d32.norm()).item() < 0.05
    assert model16.W.dtype == torch.float32  # weights stay fp32
    assert out16["free_energy_gap"] == pytest.approx(out32["free_energy_gap"], abs=0.05 * abs(out32["free_energy_gap"]) + 0.05)


def test_gradient_terms_are_rao_blackwellised_statistics():
    model = tiny_rbm(10, 6, seed=19)
    v_data, v_model = random_binary(15, 10, 20), random_binary(11, 10, 21)
    data, model_term = model.gradient_terms(v_data, v_model)
    assert data.shape == model_term.shape == (10, 6)
    with torch.no_grad():
        expected = torch.einsum("bi,bj->ij", v_data, model.p_h(v_data)) / 15
        expected_model = torch.einsum("bi,bj->ij", v_model, model.p_h(v_model)) / 11
    assert torch.allclose(data, expected, atol=1e-12)
    assert torch.allclose(model_term, expected_model, atol=1e-12)
    surrogate = model.free_energy(v_data).mean() - model.free_energy(v_model).mean()
    (grad_W,) = torch.autograd.grad(surrogate, model.W)
    assert torch.allclose(data - model_term, -grad_W, atol=1e-12)


def test_decompose_reconstructs_from_top_units():
    model = tiny_rbm(10, 8, seed=22)
    v = random_binary(1, 10, 23)[0]
    parts = model.decompose(v, 3)
    assert parts["units"].shape == (3,) and parts["p"].shape == (3,)
    assert parts["features"].shape == (3, 10) and parts["reconstruction"].shape == (10,)
    with torch.no_grad():
        p_h = model.p_h(v[None])[0]
        order = torch.argsort(p_h, descending=True)[:3]
        assert torch.equal(parts["units"], order)
        assert torch.allclose(parts["p"], p_h[order])
        assert torch.allclose(parts["features"], model.W[:, order].t())
        expected = torch.sigmoid(model.b + model.W @ p_h)  # sigma(sum_j p(h_j=1|v) feature_j + b)
    assert torch.allclose(parts["reconstruction"], expected, atol=1e-12)


def test_decompose_with_baseline_ranks_by_activity_beyond_the_baseline():
    model = tiny_rbm(10, 8, seed=24)
    v = random_binary(1, 10, 25)[0]
    with torch.no_grad():
        p_h = model.p_h(v[None])[0]
    baseline = torch.linspace(0, 1, 8, dtype=p_h.dtype)
    parts = model.decompose(v, 3, baseline=baseline)
    assert torch.equal(parts["units"], torch.argsort(p_h - baseline, descending=True)[:3])
    assert torch.allclose(parts["p"], p_h[parts["units"]])  # weights stay p(h_j=1|v), not the score


def test_selectivity_is_mean_and_std_of_hidden_probabilities():
    model = tiny_rbm(10, 8, seed=26)
    data = random_binary(30, 10, 27)
    mean, std = model.selectivity(data)
    with torch.no_grad():
        p = torch.sigmoid(data @ model.W + model.a)
    assert torch.allclose(mean, p.mean(0)) and torch.allclose(std, p.std(0))


def test_pseudo_log_likelihood_is_d_times_log_conditional_of_flipped_bit():
    """PL = D * log p(v_i | v_-i) for the flipped bit i, with the conditional from exact log p."""
    D = 10
    model = tiny_rbm(D, 6, seed=24)
    v = random_binary(16, D, 25)
    pl = model.pseudo_log_likelihood(v, generator=torch.Generator().manual_seed(7))
    assert pl.shape == (16,)
    idx = torch.randint(D, (16,), generator=torch.Generator().manual_seed(7))  # the engine's draw
    flipped = v.clone()
    flipped[torch.arange(16), idx] = 1 - flipped[torch.arange(16), idx]
    log_z = exact_log_z_rbm(model.W, model.b, model.a)
    with torch.no_grad():
        log_p, log_p_flip = -model.free_energy(v) - log_z, -model.free_energy(flipped) - log_z
    expected = D * (log_p - torch.logaddexp(log_p, log_p_flip))
    assert torch.allclose(pl, expected, atol=1e-10)
    assert (pl < 0).all()


# --- sampling views -------------------------------------------------------------------------------
def test_gibbs_frames_shape_and_first_sweep():
    model = tiny_rbm(10, 6, seed=26, dtype=torch.float32)
    v0 = random_binary(4, 10, 27, dtype=torch.float32)
    frames = model.gibbs_frames(v0, 7, generator=torch.Generator().manual_seed(1))
    assert frames.shape == (8, 4, 10)
    assert torch.equal(frames[0], v0)
    assert frames.min() >= 0 and frames.max() <= 1
    g = torch.Generator().manual_seed(1)  # first sweep by hand: h ~ p(h|v0), frame = p(v|h)
    with torch.no_grad():
        h = (torch.rand(4, 6, generator=g) < model.p_h(v0)).float()
        assert torch.allclose(frames[1], model.p_v(h))
    again = model.gibbs_frames(v0, 7, generator=torch.Generator().manual_seed(1))
    assert torch.equal(frames, again)


def test_sample_shape_range_and_seed():
    model = tiny_rbm(10, 6, seed=28, dtype=torch.float32)
    s = model.sample(5, generator=torch.Generator().manual_seed(2), steps=20)
    assert s.shape == (5, 10)
    assert s.min() >= 0 and s.max() <= 1
    assert torch.equal(s, model.sample(5, generator=torch.Generator().manual_seed(2), steps=20))
    assert not torch.equal(s, model.sample(5, generator=torch.Generator().manual_seed(3), steps=20))


def test_kept_chains_roundtrip_and_are_dropped_when_the_weights_change(tmp_path):
    """engine.chains: the states come back as saved, binary and seeded; a file for other weights, a corrupt file or
    no file reads as None (the view then draws its own chains)."""
    from engine import chains, checkpoint
    model = tiny_rbm(10, 6, seed=29, dtype=torch.float32)
    checkpoint.save(model, tmp_path)
    states = chains.draw(model, n=40, sweeps=30, seed=1)
    assert states.shape == (40, 10) and set(states.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(states, chains.draw(model, n=40, sweeps=30, seed=1))
    assert chains.load(tmp_path) is None
    chains.save(tmp_path, states, sweeps=30, seed=1)
    kept, meta = chains.load(tmp_path)
    assert torch.equal(kept, states) and meta["sweeps"] == "30" and meta["seed"] == "1"
    with torch.no_grad():
        model.W.add_(0.1)
    checkpoint.save(model, tmp_path)  # retrained: the kept chains belong to the old weights
    assert chains.load(tmp_path) is None
    chains.save(tmp_path, states, sweeps=30, seed=1)
    (tmp_path / chains.FILE).write_bytes((tmp_path / chains.FILE).read_bytes()[:50])
    assert chains.load(tmp_path) is None


def test_bundled_rbm_keeps_chains_for_its_weights():
    """The bundled rbm-mnist ships the gradient view's model term: 500 chains after 1,000 sweeps, for these weights."""
    from engine import api, chains
    kept = chains.load(api.resolve("rbm-mnist"))
    assert kept is not None, "run: python -m engine chains assets/checkpoints/rbm-mnist"
    states, meta = kept
    assert states.shape == (500, 784) and meta["sweeps"] == "1000"
    assert 0.05 < float(states.mean()) < 0.25  # ink like digits, not noise (0.5) or blank
