"""VAE/IWAE math on tiny models whose log p(x) is computed exactly by quadrature over a 1-D latent."""
from __future__ import annotations

import math

import torch

from engine import api


def tiny_vae(seed: int = 0, n_visible: int = 6):
    torch.manual_seed(seed)
    model = api.build("vae", n_visible=n_visible, hidden=(8,), latent=1, image_shape=(2, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)  # a less trivial posterior than the default init
    return model.eval()


def exact_log_px(model, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by the trapezoid rule on [-12, 12]. (B, D) -> (B,)."""
    z = torch.linspace(-12, 12, 48001, dtype=torch.float64)[:, None]  # (Z, 1)
    logits = model.decoder(z)  # (Z, D)
    log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, None, :].expand(-1, len(x), -1), x.expand(len(z), -1, -1), reduction="none").sum(-1)  # (Z, B)
    log_prior = -0.5 * (z ** 2 + math.log(2 * math.pi))  # (Z, 1)
    dz = (z[1] - z[0]).item()
    return torch.logsumexp(log_px_z + log_prior, 0) + math.log(dz)


def binary(n: int, d: int, seed: int) -> torch.Tensor:
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.5).double()


def test_exact_probabilities_sum_to_one_over_all_images():
    model = tiny_vae(1)
    every = torch.tensor([[(i >> j) & 1 for j in range(6)] for i in range(64)], dtype=torch.float64)
    with torch.no_grad():
        total = torch.logsumexp(exact_log_px(model, every), 0)
    assert abs(total.item()) < 1e-6


def test_importance_sampled_log_prob_converges_to_the_exact_value():
    """With a proposal q wider than the posterior (std 2), the k-sample estimate is well behaved."""
    model = tiny_vae(2)
    x = binary(4, 6, 3)
    with torch.no_grad():
        model.to_logvar.weight.zero_()
        model.to_logvar.bias.fill_(math.log(4.0))
        exact = exact_log_px(model, x)
        estimate = model.log_prob(x, k=40000, chunk=5000, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(estimate, exact, atol=0.02), (estimate, exact)


def test_bound_rises_with_k_towards_log_p():
    model = tiny_vae(5)
    x = binary(8, 6, 6)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        exact = exact_log_px(model, x).mean().item()
        bounds = [torch.stack([model.elbo(x, k, generator=g) for _ in range(400)]).mean().item()
                  for k in (1, 2, 5, 20, 100)]
    assert all(a < b for a, b in zip(bounds, bounds[1:])), bounds
    assert bounds[-1] <= exact + 0.01 and exact - bounds[-1] < exact - bounds[0]


def test_k1_bound_is_the_elbo_with_its_exact_kl():
    """E[log w] with one sample equals E_q[log p(x|z)] - KL(q || p): compare the Monte Carlo averages."""
    model = tiny_vae(8)
    x = binary(6, 6, 9)
    g = torch.Generator().manual_seed(10)
    with torch.no_grad():
        l1 = torch.stack([model.elbo(x, 1, generator=g) for _ in range(4000)]).mean(0)
        terms = [model.elbo_terms(x, generator=g)["elbo"] for _ in range(4000)]
    assert torch.allclose(l1, torch.stack(terms).mean(0), atol=0.05)


def test_kl_term_matches_the_closed_form_for_a_diagonal_gaussian():
    model = tiny_vae(11)
    x = binary(5, 6, 12)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        kl = model.elbo_terms(x, generator=torch.Generator().manual_seed(0))["kl"]
        q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
        p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert torch.allclose(kl, torch.distributions.kl_divergence(q, p).sum(-1))


def test_iwae_loss_is_the_negative_k_sample_bound():
    model = api.build("vae", n_visible=6, hidden=(8,), latent=2, k=5, image_shape=(2, 3)).double()
    x = binary(4, 6, 13)
    loss = model.loss(x, generator=torch.Generator().manual_seed(1))
    bound = model.elbo(x, 5, generator=torch.Generator().manual_seed(1)).mean()
    assert torch.allclose(loss["loss"], -bound) and set(loss) == {"loss", "iwae_5_bound"}


def test_active_units_count_latents_whose_posterior_mean_varies():
    model = api.build("vae", n_visible=6, hidden=(8,), latent=3, image_shape=(2, 3))
    with torch.no_grad():
        model.to_mu.weight.zero_()
        model.to_mu.bias.zero_()
        model.to_mu.weight[0] = 5.0  # only unit 0 depends on the input
    assert model.active_units(binary(200, 6, 14).float()) == 1


def test_latent_paths_start_and_end_at_the_codes_and_slerp_keeps_the_norm_between():
    from engine.models.vae import latent_path
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    for kind in ("linear", "spherical"):
        path = latent_path(z0, z1, 5, kind=kind)
        assert path.shape == (5, 2) and torch.allclose(path[0], z0) and torch.allclose(path[-1], z1, atol=1e-6)
    assert torch.allclose(latent_path(z0, z1, 5, kind="spherical").norm(dim=1), torch.full((5,), 3.0))
    assert latent_path(z0, z1, 3, kind="linear")[1].norm() < 2.2  # the straight line cuts towards the origin


def test_bound_estimates_are_independent_l_k_draws_in_small_groups():
    model = tiny_vae(15)
    x = binary(3, 6, 16)
    est = model.bound_estimates(x, 7, 10, generator=torch.Generator().manual_seed(2), max_rows=50)
    assert est.shape == (10, 3) and est.std(0).min() > 0  # different draws
    g = torch.Generator().manual_seed(3)
    same = model.elbo(x, 7, generator=torch.Generator().manual_seed(3))
    first = model.bound_estimates(x, 7, 1, generator=g)[0]
    assert torch.allclose(first, same)  # one group of one draw is exactly L_7
