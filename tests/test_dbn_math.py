"""Deep belief net math on nets small enough to enumerate: the variational bound, importance sampling,
greedy layer addition with the transposed initialisation, the down-pass and greedy training."""
import math

import pytest
import torch

from engine.models.dbn import DBN, DBNConfig, GreedyLayerwise, _all_states, log_mean_exp
from engine.models.rbm import bernoulli


def tiny(sizes, *, seed=0, std=1.0, layers=None) -> DBN:
    torch.manual_seed(seed)
    dbn = DBN(DBNConfig(sizes=tuple(sizes), image_shape=(1, sizes[0])))
    with torch.no_grad():
        for rbm in dbn.rbms:
            for p in rbm.parameters():
                p.copy_(torch.randn(p.shape, dtype=torch.float64) * std)
    dbn.double()
    dbn.n_trained.fill_(layers or len(sizes) - 1)
    return dbn


def exact_bound(dbn: DBN, v: torch.Tensor) -> torch.Tensor:
    """E_q[log w] - log Z by enumerating every hidden configuration below the top: (B, D) -> (B,)."""
    from engine.metrics import exact_log_z_rbm
    L = dbn.layers
    grids = torch.meshgrid(*[torch.arange(2 ** n) for n in dbn.config.sizes[1:L]], indexing="ij")
    combos = [g.reshape(-1) for g in grids]
    out = []
    for x in v:
        hs = [_all_states(n, x.dtype, x.device)[c] for n, c in zip(dbn.config.sizes[1:L], combos)]
        log_w = dbn.log_weight_of(x.expand(len(combos[0]), -1), hs)  # (S,)
        log_q, below = torch.zeros_like(log_w), x.expand(len(combos[0]), -1)
        for rbm, h in zip(dbn.rbms, hs):
            p = rbm.p_h(below)
            log_q += (h * p.log() + (1 - h) * (1 - p).log()).sum(-1)
            below = h
        out.append((log_q.exp() * log_w).sum())
    top = dbn.top
    return torch.stack(out) - exact_log_z_rbm(top.W, top.b, top.a)


@pytest.mark.parametrize("sizes", [(6, 4, 5), (6, 4, 3, 4)])
def test_exact_log_prob_is_a_distribution(sizes):
    dbn = tiny(sizes)
    v = _all_states(sizes[0], torch.float64, "cpu")
    assert torch.logsumexp(dbn.exact_log_prob(v), 0).item() == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("sizes", [(6, 4, 5), (6, 4, 3, 4)])
def test_lower_bound_is_below_exact_log_prob(sizes):
    dbn = tiny(sizes, seed=1)
    v = _all_states(sizes[0], torch.float64, "cpu")
    bound, exact = exact_bound(dbn, v), dbn.exact_log_prob(v)
    assert (bound <= exact + 1e-9).all()
    assert (exact - bound).mean() > 0.05  # a real gap: q is not the true posterior for these weights
    # the sampled estimate of the bound (what the page and the card report) matches its enumeration
    sampled = dbn.log_weights(v, 20_000, generator=torch.Generator().manual_seed(0)).mean(1)
    from engine.metrics import exact_log_z_rbm
    sampled = sampled - exact_log_z_rbm(dbn.top.W, dbn.top.b, dbn.top.a)
    assert torch.allclose(sampled, bound, atol=0.05)


def test_importance_sampling_converges_to_exact():
    dbn = tiny((6, 4, 5), seed=2, std=0.7)
    v = _all_states(6, torch.float64, "cpu")[::7]
    from engine.metrics import exact_log_z_rbm
    log_z = exact_log_z_rbm(dbn.top.W, dbn.top.b, dbn.top.a)
    g = torch.Generator().manual_seed(0)
    errors = []
    for k in (1, 200_000):
        est = log_mean_exp(dbn.log_weights(v, k, generator=g)) - log_z
        errors.append((est - dbn.exact_log_prob(v)).abs().max().item())
    assert errors[1] < 0.02
    assert errors[0] > 5 * errors[1]  # one sample is only the (noisy) bound


def test_one_layer_dbn_is_its_rbm():
    dbn = tiny((6, 4, 5), seed=3, layers=1)
    v = _all_states(6, torch.float64, "cpu")
    from engine.metrics import exact_log_z_rbm
    rbm = dbn.rbms[0]
    expected = -rbm.free_energy(v) - exact_log_z_rbm(rbm.W, rbm.b, rbm.a)
    assert torch.allclose(dbn.exact_log_prob(v), expected)
    assert torch.allclose(dbn.log_weights(v, 3)[:, 0] - exact_log_z_rbm(rbm.W, rbm.b, rbm.a), expected)


def test_transposed_new_layer_keeps_the_model_and_the_bound():
    """Hinton et al. 2006: a new layer initialised as the transpose of the layer below leaves p(v) as it
    was, and q(h_1|v) is then the exact posterior, so the bound equals the old model's log-likelihood."""
    dbn = tiny((6, 4, 6), seed=4, layers=1)
    v = _all_states(6, torch.float64, "cpu")
    before = dbn.exact_log_prob(v)
    dbn.add_layer(2)
    assert dbn.layers == 2
    assert torch.allclose(dbn.exact_log_prob(v), before, atol=1e-9)
    assert torch.allclose(exact_bound(dbn, v), before, atol=1e-9)
    # the test can fail: with the transposed weights but zero biases, the model is no longer the RBM
    with torch.no_grad():
        dbn.rbms[1].a.zero_()
        dbn.rbms[1].b.zero_()
    assert (dbn.exact_log_prob(v) - before).abs().max() > 0.01


def test_training_the_new_layer_on_q_raises_the_bound():
    """Greedy learning improves the bound: the top RBM trained on samples of q(h_1|v) of the data
    (exact gradient ascent on E_data E_q[log p(h_1)]) raises the data's mean bound above the RBM's."""
    dbn = tiny((6, 4, 6), seed=5, layers=1)
    data = _all_states(6, torch.float64, "cpu")[torch.randperm(64, generator=torch.Generator().manual_seed(1))[:12]]
    before = dbn.exact_log_prob(data).mean()
    dbn.add_layer(2)
    top = dbn.rbms[1]
    h_states = _all_states(4, torch.float64, "cpu")
    with torch.no_grad():
        q = torch.exp((h_states[None] * dbn.rbms[0].p_h(data)[:, None].log()
                       + (1 - h_states[None]) * (1 - dbn.rbms[0].p_h(data)[:, None]).log()).sum(-1)).mean(0)  # (16,)
    from engine.metrics import exact_log_z_rbm
    opt = torch.optim.SGD(top.parameters(), lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        loss = -(q * -top.free_energy(h_states)).sum() + exact_log_z_rbm_autograd(top)
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = exact_bound(dbn, data).mean()
    assert after > before + 0.01
    assert after <= dbn.exact_log_prob(data).mean() + 1e-9


def exact_log_z_rbm_autograd(rbm) -> torch.Tensor:
    h = _all_states(rbm.config.n_hidden, torch.float64, "cpu")
    return torch.logsumexp(h @ rbm.a + torch.nn.functional.softplus(h @ rbm.W.t() + rbm.b).sum(-1), 0)


@pytest.mark.parametrize("sizes", [(5, 3, 4), (5, 3, 2, 3)])
def test_down_pass_reproduces_the_model_marginal(sizes):
    """Exact samples of the top RBM's joint, pushed down by down_pass, have the DBN's p(v)."""
    dbn = tiny(sizes, seed=6, std=0.8)
    top, n = dbn.top, 400_000
    joint = torch.cat([_all_states(top.config.n_visible + top.config.n_hidden, torch.float64, "cpu")])
    vis, hid = joint[:, :top.config.n_visible], joint[:, top.config.n_visible:]
    log_p = -top.energy(vis, hid)
    g = torch.Generator().manual_seed(0)
    idx = torch.multinomial(torch.softmax(log_p, 0), n, replacement=True, generator=g)
    v = bernoulli(dbn.down_pass(hid[idx], g), g)
    codes = (v * 2 ** torch.arange(sizes[0], dtype=torch.float64)).sum(-1).long()
    empirical = torch.bincount(codes, minlength=2 ** sizes[0]).double() / n
    exact = dbn.exact_log_prob(_all_states(sizes[0], torch.float64, "cpu")).exp()
    assert 0.5 * (empirical - exact).abs().sum() < 0.01
    # wrong direction (the recognition weights used generatively) would be detected:
    assert 0.5 * (exact - torch.full_like(exact, 1 / len(exact))).abs().sum() > 0.05


def test_gibbs_in_the_top_rbm_then_down_pass_samples_the_model():
    dbn = tiny((5, 3, 4), seed=7, std=0.8)
    g = torch.Generator().manual_seed(1)
    frames = dbn.top_gibbs_frames(100_000, [0, 100], generator=g)  # (2, n, 5) probabilities
    v = bernoulli(frames[-1], g)
    codes = (v * 2 ** torch.arange(5, dtype=torch.float64)).sum(-1).long()
    empirical = torch.bincount(codes, minlength=32).double() / len(v)
    exact = dbn.exact_log_prob(_all_states(5, torch.float64, "cpu")).exp()
    assert 0.5 * (empirical - exact).abs().sum() < 0.015


def test_greedy_trainer_builds_layer_by_layer_and_freezes_the_layers_below():
    torch.manual_seed(0)
    dbn = DBN(DBNConfig(sizes=(8, 5, 6), image_shape=(2, 4)))
    greedy = GreedyLayerwise(dbn, layer_epochs=[1, 3], lr=0.1, k=1, persistent=True, momentum=0.5,
                             weight_decay=0.0)
    data = (torch.rand(20, 8) < 0.3).float()
    greedy.set_progress(0.0)
    greedy.step(data)
    assert greedy.layer == 1 and dbn.layers == 1
    greedy.set_progress(0.25)  # epoch 1 of 4: layer 2's share begins
    w1 = dbn.rbms[0].W.detach().clone()
    out = greedy.step(data)
    assert greedy.layer == 2 and dbn.layers == 2 and out["layer"] == 2.0
    assert torch.equal(dbn.rbms[0].W, w1)  # frozen
    # the new layer's visible biases start at the log-odds of its input's mean (6 != 8: no transpose)
    greedy.set_progress(0.5)
    with pytest.raises(ValueError):
        GreedyLayerwise(DBN(DBNConfig(sizes=(8, 5, 6))), layer_epochs=[0, 1])  # layer 1 not built


def test_filters_and_top_down_shapes():
    dbn = tiny((6, 4, 5), seed=8)
    assert dbn.filters(1).shape == (4, 6) and dbn.filters(2).shape == (5, 6)
    assert torch.allclose(dbn.filters(2), (dbn.rbms[0].W @ dbn.rbms[1].W.clamp_min(0)).t())
    img = dbn.top_down_images(2, torch.tensor([0, 3]))
    expected = dbn.rbms[0].p_v(dbn.rbms[1].p_v(torch.eye(5, dtype=torch.float64)[[0, 3]]))
    assert torch.allclose(img, expected)
    assert math.isfinite(float(dbn.up_probs(torch.ones(2, 6, dtype=torch.float64))[-1].sum()))
