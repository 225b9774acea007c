"""Annealed importance sampling (engine.metrics) against exact log Z on RBMs small enough to enumerate."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.metrics import AISResult, ais, ais_betas, base_rate_bias, exact_log_z_rbm, iter_ais, softplus_gap


def random_rbm(seed: int, *, n_visible: int = 20, n_hidden: int = 10, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64) * scale
    b = torch.randn(n_visible, generator=g, dtype=torch.float64) * 0.5 - 0.5
    a = torch.randn(n_hidden, generator=g, dtype=torch.float64) * 0.5
    return W, b, a


def exact_samples(W, b, a, n: int, seed: int) -> torch.Tensor:
    """Exact samples from the RBM: h from its marginal (enumerated over 2^F), then v ~ p(v|h). (n, D)."""
    g = torch.Generator().manual_seed(seed)
    n_hidden = W.shape[1]
    h = ((torch.arange(2 ** n_hidden)[:, None] >> torch.arange(n_hidden)) & 1).double()  # (2^F, F)
    log_p_h = h @ a + F.softplus(h @ W.t() + b).sum(-1)
    idx = torch.multinomial(torch.softmax(log_p_h, 0), n, replacement=True, generator=g)
    return (torch.rand(n, W.shape[0], generator=g, dtype=torch.float64) < torch.sigmoid(h[idx] @ W.t() + b)).double()


@pytest.mark.parametrize("seed", [0, 3])
def test_ais_matches_exact_log_z(seed):
    W, b, a = random_rbm(seed)
    exact = exact_log_z_rbm(W, b, a)
    base = base_rate_bias(exact_samples(W, b, a, 2000, seed))
    result = ais(W, b, a, base, n_runs=100, n_betas=1000, generator=torch.Generator().manual_seed(0))
    assert isinstance(result, AISResult)
    assert result.n_runs == 100 and result.n_betas == 1000
    assert abs(result.log_z - exact) < 0.1, (result.log_z, exact)
    assert math.isfinite(result.log_z_std) and 0 < result.log_z_std < 0.05
    low, high = result.log_z_interval
    assert low < exact < high  # log(Z_hat -/+ 3 std) brackets the truth
    # the base model is far from the target, so agreement is AIS's doing, not luck
    assert abs(result.log_z_base - exact) > 1


def test_ais_is_deterministic_for_a_seed():
    W, b, a = random_rbm(1, scale=0.5)
    base = base_rate_bias(exact_samples(W, b, a, 500, 1))
    runs = [ais(W, b, a, base, n_runs=20, n_betas=200, generator=torch.Generator().manual_seed(4)) for _ in range(2)]
    assert runs[0] == runs[1]
    other = ais(W, b, a, base, n_runs=20, n_betas=200, generator=torch.Generator().manual_seed(5))
    assert other.log_z != runs[0].log_z


def test_ais_on_independent_units_weights_the_bias_terms_correctly():
    """W = 0 but visible biases differ from the base and hidden biases are non-zero: exact log Z is closed form."""
    g = torch.Generator().manual_seed(2)
    b, a = torch.randn(20, generator=g, dtype=torch.float64), torch.randn(10, generator=g, dtype=torch.float64)
    base = torch.randn(20, generator=g, dtype=torch.float64) * 0.3
    exact = F.softplus(b).sum().item() + F.softplus(a).sum().item()
    assert exact_log_z_rbm(torch.zeros(20, 10), b, a) == pytest.approx(exact, abs=1e-10)
    result = ais(torch.zeros(20, 10, dtype=torch.float64), b, a, base, n_runs=100, n_betas=500,
                 generator=torch.Generator().manual_seed(0))
    assert abs(result.log_z - exact) < 0.05, (result.log_z, exact)


def test_ais_of_the_base_model_itself_is_exact():
    base = torch.linspace(-2, 1, 15, dtype=torch.float64)
    W, a = torch.zeros(15, 6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    result = ais(W, base, a, base, n_runs=10, n_betas=50, generator=torch.Generator().manual_seed(0))
    exact = exact_log_z_rbm(W, base, a)  # = sum softplus(b) + F log 2
    assert result.log_z_base == pytest.approx(exact, abs=1e-10)
    assert result.log_z == pytest.approx(exact, abs=1e-10)  # every importance weight is exactly 1
    assert result.log_z_std == pytest.approx(0.0, abs=1e-12)


def test_log_z_base_is_the_base_rate_models_exact_log_z():
    W, b, a = random_rbm(5, n_visible=12, n_hidden=7)
    base = base_rate_bias(exact_samples(W, b, a, 300, 5))
    result = ais(W, b, a, base, n_runs=5, n_betas=20, generator=torch.Generator().manual_seed(0))
    assert result.log_z_base == pytest.approx(
        exact_log_z_rbm(torch.zeros(12, 7), base, torch.zeros(7)), abs=1e-10)


@pytest.mark.parametrize("n", [*range(6, 40), 100, 1000, 14500])
def test_ais_betas_schedule(n):
    betas = ais_betas(n)
    assert betas.shape == (n,)
    assert betas.dtype == torch.float64
    assert betas[0].item() == 0.0 and betas[-1].item() == 1.0
    assert (betas[1:] > betas[:-1]).all()


def test_ais_betas_are_denser_near_one():
    betas = ais_betas(14500)
    steps = betas[1:] - betas[:-1]
    assert steps[-1] < steps[0] / 10
    assert ((betas >= 0.9).sum() / len(betas)).item() == pytest.approx(10000 / 14500, abs=0.01)


def test_base_rate_bias_is_smoothed_log_odds():
    data = torch.tensor([[1, 0, 1], [1, 0, 0], [1, 0, 1], [1, 0, 0]], dtype=torch.float32)
    bias = base_rate_bias(data, smoothing=0.5)
    expected = torch.tensor([4.5 / 5, 0.5 / 5, 2.5 / 5], dtype=torch.float64)
    assert bias.shape == (3,)
    assert torch.allclose(torch.sigmoid(bias), expected, atol=1e-12)
    assert torch.isfinite(base_rate_bias(data)).all()  # all-on / all-off pixels stay finite


def test_iter_ais_reports_progress_then_result():
    W, b, a = random_rbm(6, n_visible=10, n_hidden=5, scale=0.5)
    base = torch.zeros(10, dtype=torch.float64)
    updates = list(iter_ais(W, b, a, base, n_runs=8, n_betas=101, report_every=20,
                            generator=torch.Generator().manual_seed(0)))
    progress = [u["progress"] for u in updates]
    assert progress == sorted(progress) and progress[-1] == 1.0 and progress[0] < 0.5
    assert len(updates) == 6  # after betas 20, 40, 60, 80, 100 (the last), then the result
    assert all(math.isfinite(u["log_z"]) for u in updates)
    assert "result" in updates[-1] and all("result" not in u for u in updates[:-1])
    assert updates[-1]["result"].log_z == pytest.approx(updates[-1]["log_z"])


@pytest.mark.parametrize("seed", [0, 2])
def test_ais_is_unbiased_even_with_few_betas(seed):
    """Z_hat is unbiased for any schedule when every transition leaves its p_k invariant, so with many
    runs even 10 betas land within a few standard errors; Gibbs steps at the wrong temperature do not."""
    W, b, a = random_rbm(seed, n_visible=10, n_hidden=6, scale=2.0)
    exact = exact_log_z_rbm(W, b, a)
    result = ais(W, b, a, torch.zeros(10, dtype=torch.float64), n_runs=20000, n_betas=10,
                 generator=torch.Generator().manual_seed(0))
    assert abs(result.log_z - exact) < min(0.1, 4 * result.log_z_std), (result.log_z - exact, result.log_z_std)


@pytest.mark.parametrize("beta_prev, beta", [(0.99999, 1.0), (0.5, 0.50007), (0.0, 0.3), (0.2, 0.9)])
def test_softplus_gap_is_the_difference_of_softplus_and_stays_accurate_in_float32(beta_prev, beta):
    """AIS's weight term sum_j softplus(beta x_j) - softplus(beta' x_j): the float32 identity against float64 directly."""
    x = torch.linspace(-60, 60, 481, dtype=torch.float64).reshape(1, -1)
    def softplus(y):  # exact, unlike F.softplus, which returns y itself above y = 20
        return torch.logaddexp(torch.zeros_like(y), y)

    exact = (softplus(beta * x) - softplus(beta_prev * x)).sum(-1)
    assert torch.allclose(softplus_gap(x, beta_prev, beta), exact, rtol=1e-10, atol=1e-10)
    in_float32 = softplus_gap(x.float(), beta_prev, beta).double()
    assert torch.allclose(in_float32, exact, rtol=1e-5, atol=1e-6), (in_float32 - exact).abs().max()
    naive_float32 = (softplus(beta * x.float()) - softplus(beta_prev * x.float())).sum(-1).double()
    if beta - beta_prev < 1e-3:  # the plain float32 difference loses the small gap the identity keeps
        assert (naive_float32 - exact).abs().max() > 10 * (in_float32 - exact).abs().max()
