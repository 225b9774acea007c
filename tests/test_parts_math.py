"""The part-based features stack (engine.models.parts): its two measurements on constructed filters, the
Gaussian-visible RBM's conditionals and free energy against brute force on a tiny model, and the training
rule's constraints (non-negative weights, the sparsity target, greedy layer order). No dataset needed."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from engine.models.parts import GreedyParts, PartsConfig, PartsDBN, dead_units, locality


# --- locality and dead units on constructed filters -------------------------------------------------
def test_locality_of_a_one_pixel_blob_is_one_and_of_a_flat_filter_a_tenth():
    blob = torch.zeros(1, 625)
    blob[0, 312] = 3.0
    flat = torch.full((1, 625), 0.2)
    assert locality(blob).item() == pytest.approx(1.0)
    assert locality(flat).item() == pytest.approx(63 / 625)  # the top 10% is 63 pixels of 625
    assert abs(locality(flat).item() - 0.1) < 0.001
    assert locality(torch.full((1, 100), -1.0)).item() == pytest.approx(0.1)  # mass is |w|


def test_locality_ranks_a_patch_between_a_blob_and_a_face_wide_filter():
    patch = torch.zeros(625)
    patch[:63] = 1.0  # exactly as many pixels as the top 10%
    spread = torch.zeros(625)
    spread[:126] = 1.0  # twice as many: half its mass is outside its top 10%
    loc = locality(torch.stack([patch, spread]))
    assert loc[0].item() == pytest.approx(1.0) and loc[1].item() == pytest.approx(0.5)


def test_dead_units_are_the_ones_whose_response_does_not_change_across_faces():
    p = torch.tensor([[0.01, 0.5, 0.05, 0.3, 0.9],
                      [0.98, 0.5, 0.06, 0.7, 0.2],
                      [0.02, 0.5, 0.04, 0.5, 0.95]])
    # unit 0 switches on for one face; 1 is stuck at 0.5 (e.g. L1 shrank its weights to zero); 2 never
    # switches on; 3 changes by only 0.4; 4 switches off for one face
    assert dead_units(p).tolist() == [False, True, True, True, False]


# --- the Gaussian-visible RBM against brute force -------------------------------------------------
def tiny(visible: str = "gaussian", seed: int = 0) -> PartsDBN:
    torch.manual_seed(seed)
    model = PartsDBN(PartsConfig(n_visible=2, image_shape=(1, 2), n_hidden=3, n_top=2, visible=visible))
    with torch.no_grad():
        model.W.copy_(torch.randn(2, 3))  # signed, so nothing relies on W >= 0
        model.b.copy_(torch.randn(2))
        model.a.copy_(torch.randn(3))
    return model.double()


HIDDEN = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=torch.float64)  # (8, 3)


def test_gaussian_conditionals_and_free_energy_match_enumeration():
    model = tiny()
    v = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-0.7, 0.1]], dtype=torch.float64)
    with torch.no_grad():
        for row in v:
            minus_e = -model.energy(row.expand(8, 2), HIDDEN)  # (8,)
            post = torch.softmax(minus_e, 0)
            assert torch.allclose(post @ HIDDEN, model.p_h(row[None])[0], atol=1e-12)  # p(h_j=1|v) by summing
            assert model.free_energy(row[None])[0].item() == pytest.approx(-torch.logsumexp(minus_e, 0).item(), abs=1e-10)


def test_gaussian_p_v_given_h_is_the_unit_variance_normal_around_b_plus_wh():
    """For fixed h, exp(-E(v, h)) as a function of v must be N(v; b + W h, I) up to a constant."""
    model = tiny()
    g = torch.Generator().manual_seed(1)
    v = torch.randn(6, 2, generator=g, dtype=torch.float64) * 2
    with torch.no_grad():
        for h in HIDDEN:
            mean = model.v_mean(h[None])[0]
            log_normal = -0.5 * ((v - mean) ** 2).sum(1)
            minus_e = -model.energy(v, h.expand(6, 3))
            assert torch.allclose(minus_e - minus_e[0], log_normal - log_normal[0], atol=1e-10)


def test_gaussian_free_energy_normalizes_to_the_closed_form_partition_function():
    """Integrate exp(-F(v)) over a fine 2-D grid and compare with Z = sum_h (2 pi) exp(a.h + b.Wh + |Wh|^2 / 2)."""
    model = tiny(seed=3)
    with torch.no_grad():
        Wh = HIDDEN @ model.W.t()  # (8, 2)
        log_z = torch.logsumexp(math.log(2 * math.pi) + HIDDEN @ model.a + Wh @ model.b + 0.5 * (Wh ** 2).sum(1), 0)
        axis = torch.linspace(-14, 14, 1401, dtype=torch.float64)
        grid = torch.cartesian_prod(axis, axis)  # (N, 2)
        step = (axis[1] - axis[0]).item()
        numeric = torch.logsumexp(-model.free_energy(grid), 0) + 2 * math.log(step)
    assert numeric.item() == pytest.approx(log_z.item(), abs=1e-6)


def test_binary_visible_free_energy_matches_enumeration():
    model = tiny("binary")
    with torch.no_grad():
        for v in torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)), dtype=torch.float64):
            minus_e = -model.energy(v.expand(8, 2), HIDDEN)
            assert model.free_energy(v[None])[0].item() == pytest.approx(-torch.logsumexp(minus_e, 0).item(), abs=1e-10)
            assert torch.allclose(model.v_mean(HIDDEN)[:, 0], torch.sigmoid(model.b[0] + HIDDEN @ model.W[0]))


# --- the training rule --------------------------------------------------------------------------------
def faces_like(n: int = 200, seed: int = 0) -> torch.Tensor:
    """Random 4x4 'faces' in [0, 1]: a light background with a few dark strokes."""
    g = torch.Generator().manual_seed(seed)
    x = 0.8 + 0.1 * torch.rand(n, 16, generator=g)
    strokes = torch.rand(n, 16, generator=g) < 0.2
    return torch.where(strokes, 0.2 * torch.rand(n, 16, generator=g), x)


def trained(steps: int, *, top: bool = False, **hparams) -> tuple[PartsDBN, GreedyParts]:
    torch.manual_seed(0)
    model = PartsDBN(PartsConfig(n_visible=16, image_shape=(4, 4), n_hidden=12, n_top=4))
    data = faces_like()
    model.init_from_data(data)
    trainer = GreedyParts(model, **hparams)
    trainer.set_progress(0.9 if top else 0.0)
    g = torch.Generator().manual_seed(1)
    for i in range(steps):
        trainer.step(data[torch.randint(len(data), (20,), generator=g)], generator=g)
    return model, trainer


def test_weights_stay_non_negative_through_training_and_go_negative_without_the_constraint():
    model, _ = trained(60, lr=0.05)
    assert model.W.min().item() >= 0 and model.W.max().item() > 0.01
    model, _ = trained(60, lr=0.05, top=True)  # layer 2's weights too
    assert model.W2.min().item() >= 0 and model.W2.max().item() > 0.01
    free, _ = trained(60, lr=0.05, nonnegative=False)
    assert free.W.min().item() < 0


def test_the_sparsity_target_moves_mean_activations_toward_it():
    data = faces_like(seed=5)
    means = {}
    for target in (0.0, 0.02, 0.3):
        model, _ = trained(300, lr=0.05, sparsity=target, sparsity_cost=2.0)
        with torch.no_grad():
            means[target] = model.p_h(model.visible(data)).mean().item()
    assert abs(means[0.02] - 0.02) < abs(means[0.0] - 0.02)  # closer to the target than without it
    assert means[0.02] < means[0.3]  # a higher target gives higher activations
    assert abs(means[0.3] - 0.3) < abs(means[0.02] - 0.3)


def test_greedy_order_layer_one_first_then_only_layer_two_changes():
    model, trainer = trained(0)
    trainer.set_progress(0.59)
    assert trainer.layer == 1
    trainer.set_progress(0.6)
    assert trainer.layer == 2
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(2)
    trainer.step(faces_like(20), generator=g)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"W2", "b2", "a2"}


def test_a_group_picture_is_the_positive_weighted_sum_of_the_parts():
    model, _ = trained(0)
    with torch.no_grad():
        model.W2.copy_(torch.randn(12, 4))
        group = model.group(1, 3)
        expected = model.W @ model.W2[:, 1].clamp_min(0)
    assert group["units"].tolist() == model.W2[:, 1].topk(3).indices.tolist()
    assert torch.allclose(group["picture"].flatten(), model._pictures(expected[None], signed=bool((expected < 0).any()))[0].flatten())


def test_visible_and_picture_are_inverse():
    model, _ = trained(0)
    x = faces_like(5)
    assert torch.allclose(model.picture(model.visible(x)), x, atol=1e-6)
