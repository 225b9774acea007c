"""The Helmholtz machine's math, checked by enumeration on tiny sigmoid belief nets, and the explaining-away toy
checked against brute force (issue 9's Tests: exact log p(x), ELBO below it, IS converging to it, the wake and
sleep identities, the two factorial fits matching their definitions)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import api
from engine import helmholtz_analysis as ha

D, H = 5, 3


def tiny(seed: int = 0, *, gaussian: bool = False):
    """A tiny SBN (5 pixels, 3 hidden units) with random weights large enough to make the posterior correlated."""
    torch.manual_seed(seed)
    kw = {"latent": "gaussian", "objective": "elbo"} if gaussian else {}
    model = api.build("helmholtz", n_visible=D, n_hidden=H, image_shape=(1, D), **kw)
    with torch.no_grad():
        for name, p in model.named_parameters():  # a broad q (smaller recognition weights) keeps IS efficient
            p.copy_(torch.randn(p.shape) * (0.5 if name.startswith("recognition") else 1.5))
    return model


def exact_q_table(model, x):
    """q(h|x) for every hidden state: (2^H, B)."""
    h = ha.all_binary(H)[:, None, :].expand(-1, len(x), -1)
    return model.log_q(x, h).exp()


def flat_grad(value, params):
    grads = torch.autograd.grad(value, params, allow_unused=True, retain_graph=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def cosine(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def test_exact_log_prob_sums_to_one_over_all_images():
    model = tiny()
    every_x = ha.all_binary(D)
    assert abs(torch.logsumexp(ha.exact_log_prob(model, every_x), 0).item()) < 1e-5


def test_elbo_is_below_exact_log_prob_and_the_estimator_is_unbiased():
    model = tiny(1)
    x = ha.all_binary(D)[[3, 17, 30]]
    log_w = ha.exact_log_joint_table(model, x) - model.log_q(x, ha.all_binary(H)[:, None, :].expand(-1, 3, -1))
    exact_elbo = (exact_q_table(model, x) * log_w).sum(0)  # E_q[log w] by enumeration
    exact = ha.exact_log_prob(model, x)
    assert (exact_elbo < exact - 1e-3).all()
    estimate = model.elbo(x.repeat(20000, 1), 1, generator=torch.Generator().manual_seed(0)).reshape(20000, 3).mean(0)
    assert torch.allclose(estimate, exact_elbo, atol=0.05)


def test_importance_sampling_converges_to_exact_log_prob():
    model = tiny(2)
    x = ha.all_binary(D)[[1, 12, 25]]
    exact = ha.exact_log_prob(model, x)
    g = torch.Generator().manual_seed(0)
    gaps = [(exact - model.log_prob(x, k=k, chunk=20000, generator=g)).abs().max().item() for k in (1, 30, 200000)]
    assert gaps[-1] < 0.02 < 0.1 < gaps[0]
    assert gaps[2] < gaps[1] < gaps[0]


def test_wake_update_under_the_exact_posterior_is_the_gradient_of_log_p():
    model = tiny(3)
    x = ha.all_binary(D)[[6]]
    params = [model.prior_logits, model.generative.weight, model.generative.bias]
    target = flat_grad(ha.exact_log_prob(model, x).sum(), params)
    table = ha.exact_log_joint_table(model, x)  # (S, 1)
    posterior = torch.softmax(table.detach(), 0)
    wake = flat_grad((posterior * table).sum(), params)  # sum_h p(h|x) grad log p(x, h)
    assert torch.allclose(wake, target, atol=1e-5)
    # the model's RWS surrogate with many samples from q approaches it; plain wake-sleep (k = 1) follows q instead
    rws = api.build("helmholtz", n_visible=D, n_hidden=H, image_shape=(1, D), objective="rws", k=20000, sleep=False)
    rws.load_state_dict(model.state_dict())
    loss = rws.loss(x, generator=torch.Generator().manual_seed(1))["loss"]
    rws_params = [rws.prior_logits, rws.generative.weight, rws.generative.bias]
    assert cosine(-flat_grad(loss, rws_params), target) > 0.999


def test_wake_sleep_wake_step_is_the_gradient_under_q():
    """Plain wake-sleep's generative update, averaged over codes from q, is E_q[grad log p(x, h)] (not the
    gradient of log p(x), unless q is the posterior)."""
    model = tiny(4)
    x = ha.all_binary(D)[[9]].repeat(20000, 1)
    params = [model.prior_logits, model.generative.weight, model.generative.bias]
    table = ha.exact_log_joint_table(model, x[:1])
    expected = flat_grad((exact_q_table(model, x[:1]).detach() * table).sum(), params)  # E_q[grad log p(x, h)]
    estimate = -flat_grad(model.loss(x, generator=torch.Generator().manual_seed(0))["loss"], params)
    assert cosine(estimate, expected) > 0.995
    assert torch.allclose(estimate, expected, atol=0.1)
    exact_posterior = flat_grad(ha.exact_log_prob(model, x[:1]).sum(), params)
    assert cosine(expected, exact_posterior) < 0.99  # q is not the posterior here: the wake step is biased


def test_sleep_update_is_minus_the_gradient_of_the_inclusive_kl():
    model = tiny(5)
    rec = [model.recognition.weight, model.recognition.bias]
    every_x, every_h = ha.all_binary(D), ha.all_binary(H)
    log_joint = ha.exact_log_joint_table(model, every_x).detach()  # (S, X): log p(x, h)
    p_joint = log_joint.exp()
    log_q = model.log_q(every_x, every_h[:, None, :].expand(-1, len(every_x), -1))  # (S, X)
    sleep = flat_grad((p_joint * log_q).sum(), rec)  # E_{p(h, x)}[grad log q(h|x)]
    posterior = torch.softmax(log_joint, 0)
    inclusive_kl = (p_joint.sum(0) * (posterior * (posterior.log() - log_q)).sum(0)).sum()  # E_p(x) KL(p(h|x) || q)
    assert torch.allclose(sleep, -flat_grad(inclusive_kl, rec), atol=1e-5)
    # the model's own sleep surrogate (dreams from the model) estimates the same direction
    g = torch.Generator().manual_seed(0)
    h_s, x_s = model.dream(50000, generator=g)
    estimate = flat_grad(model.log_q(x_s, h_s).sum() / 50000, rec)
    assert cosine(estimate, sleep) > 0.99


@pytest.mark.parametrize("setting", [((0.1, 0.1), (10.0, 10.0), -5.0), ((0.3, 0.2), (4.0, 7.0), -3.0),
                                     ((0.05, 0.4), (8.0, 3.0), -4.0)])
def test_explaining_away_fits_match_their_definitions(setting):
    result = ha.explaining_away(*setting)
    posterior, sleep, elbo = result["posterior"], result["fits"]["sleep"], result["fits"]["elbo"]
    assert abs(posterior.sum() - 1) < 1e-12
    # brute force over a grid of factorial q: the sleep fit minimises KL(p || q), the ELBO fit KL(q || p)
    t = np.linspace(0.0005, 0.9995, 400)
    q1, q2 = (a.reshape(-1) for a in np.meshgrid(t, t, indexing="ij"))
    f = np.stack([(1 - q1) * (1 - q2), (1 - q1) * q2, q1 * (1 - q2), q1 * q2], -1)  # every grid q, (G*G, 4)
    incl = (posterior * (np.log(posterior) - np.log(f))).sum(1).min()
    excl = (f * (np.log(f) - np.log(posterior))).sum(1).min()
    assert sleep["kl_p_q"] <= incl + 1e-9 and elbo["kl_q_p"] <= excl + 1e-9
    assert np.allclose(sleep["q"], [posterior[2] + posterior[3], posterior[1] + posterior[3]])
    assert sleep["kl_p_q"] <= elbo["kl_p_q"] and elbo["kl_q_p"] <= sleep["kl_q_p"]
    assert abs(elbo["elbo"] - (result["log_evidence"] - elbo["kl_q_p"])) < 1e-9


def test_explaining_away_sleep_averages_the_modes_and_the_elbo_picks_one():
    result = ha.explaining_away((0.1, 0.1), (12.0, 12.0), -6.0)
    posterior = result["posterior"]
    assert posterior[1] > 0.4 and posterior[2] > 0.4  # two explanations, each enough alone
    assert np.allclose(result["fits"]["sleep"]["q"], [0.5, 0.5], atol=0.05)  # both causes at one half
    q = result["fits"]["elbo"]["q"]
    assert max(q) > 0.95 and min(q) < 0.15  # one cause on, the other back near its prior (0.1)


def test_gradient_snr_estimators_agree_in_the_mean_and_differ_in_noise():
    model = tiny(6, gaussian=True)
    x = ha.all_binary(D)[[7, 20]]
    r = ha.gradient_snr(model, x, draws=40000, seed=1)
    for name in ("score", "score_baseline"):  # all three are unbiased estimates of the same gradient
        assert torch.allclose(r[name]["mean"], r["reparam"]["mean"], rtol=0.05, atol=0.1), name
    assert r["reparam"]["median_snr"] > r["score_baseline"]["median_snr"] > r["score"]["median_snr"]
    sbn = ha.gradient_snr(tiny(6), x, draws=40000, seed=1)
    assert "reparam" not in sbn and sbn["score_baseline"]["median_snr"] > sbn["score"]["median_snr"]


def test_wake_sleep_frames_raise_what_each_phase_ascends():
    model = tiny(7)
    f = ha.wake_sleep_frames(model, ha.all_binary(D)[11], step_size=0.01)
    assert [fr["phase"] for fr in f["frames"]] == ["wake"] * 4 + ["sleep"] * 4
    assert f["wake"]["log_p_xh_after"] > f["wake"]["log_p_xh_before"]
    assert f["sleep"]["log_q_after"] > f["sleep"]["log_q_before"]
