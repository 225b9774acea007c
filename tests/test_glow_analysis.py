"""What the Glow page computes (engine.glow_analysis), on a randomized 28x28 Glow: the latent vector layout,
one set of latents across temperatures, the exact round trip, interpolation endpoints, the kept top latent
and the layer-by-layer trace."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import glow_analysis as ga
from engine.data import mnist
from tests.test_glow_math import tiny_glow


@pytest.fixture(scope="module")
def model():
    return tiny_glow(torch.float32, side=28, scale=0.05, steps=2, hidden=8).requires_grad_(False)


@pytest.fixture(scope="module")
def digits():
    return mnist.images("test")[:4]


def test_latent_vector_round_trips_and_has_one_number_per_pixel(model, digits):
    zs = model.encode(model.bin_centres(digits))
    v = ga.latent_vector(zs)
    assert v.shape == (4, 784)
    back = ga.latents_from_vector(model, v)
    assert all(torch.equal(a, b) for a, b in zip(zs, back))


def test_temperatures_scale_one_draw_of_latents(model):
    grids, overflowed = ga.temperature_grids(model, 6, [0.0, 0.5, 1.0], seed=3)
    assert grids.shape == (3, 6, 784) and overflowed.tolist() == [0, 0, 0]
    assert np.all(grids[0] == grids[0, :1])  # T = 0: every sample decodes the zero latent
    assert not np.all(grids[2] == grids[2, :1])
    again, _ = ga.temperature_grids(model, 6, [1.0], seed=3)
    assert np.array_equal(again[0], grids[2])  # same seed, same samples
    assert not np.array_equal(ga.temperature_grids(model, 6, [1.0], seed=4)[0][0], grids[2])
    levels = grids * 256
    assert np.array_equal(levels, np.round(levels)) and grids.min() >= 0 and grids.max() <= 255 / 256


def test_overflowing_samples_are_counted_and_blacked_out(model, monkeypatch):
    decode = model.decode
    def broken(zs):  # the second sample of every batch overflows
        y = decode(zs).clone()
        y[1] = float("nan")
        return y
    monkeypatch.setattr(model, "decode", broken)
    grids, overflowed = ga.temperature_grids(model, 4, [0.5, 1.0], seed=0)
    assert overflowed.tolist() == [1, 1] and np.all(grids[:, 1] == 0) and np.isfinite(grids).all()


def test_round_trip_is_exact_on_real_digits(model, digits):
    result = ga.round_trip(model, digits)
    assert result["identical_8bit"]
    assert result["max_error"] < 1e-4
    assert [z.shape[1:] for z in result["latents"]] == [tuple(s) for s in model.flow.z_shapes]
    terms = result["bits_per_dim"]
    parts = terms["prior"] + terms["flow_logdet"] + terms["logit_logdet"] + terms["quantization"]
    assert np.allclose(parts, terms["total"], atol=1e-5)


def test_round_trip_reports_a_corrupted_decoder(model, digits, monkeypatch):
    """The identity check can fail: a decoder that drifts by two grey levels is caught."""
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda zs: decode(zs) + 2 / 256)
    result = ga.round_trip(model, digits)
    assert not result["identical_8bit"] and result["max_error"] > 1e-3


@pytest.mark.parametrize("kind", ["linear", "spherical"])
def test_interpolation_starts_and_ends_at_the_digits(model, digits, kind):
    path = ga.interpolation(model, digits[0], digits[1], 7, kind=kind)
    assert path.shape == (7, 784)
    assert np.array_equal(path[0], digits[0].numpy()) and np.array_equal(path[-1], digits[1].numpy())
    assert not np.array_equal(path[3], path[0]) and not np.array_equal(path[3], path[-1])


def test_redraw_fine_keeps_the_top_latent_and_varies_the_rest(model, digits, monkeypatch):
    decoded = []
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda zs: decoded.append(zs) or decode(zs))
    images = ga.redraw_fine(model, digits[0], 5, 0.7, seed=1)
    assert images.shape == (5, 784) and len({im.tobytes() for im in images}) == 5
    (zs,) = decoded
    kept = model.encode(model.bin_centres(digits[:1]))[-1]
    assert torch.equal(zs[-1], kept.expand_as(zs[-1]))  # the digit's own top latent in every sample
    fine = zs[0].flatten(1)
    assert fine.std(0).mean() > 0.5 and abs(float(fine.std()) - 0.7) < 0.05  # fresh draws at T = 0.7


def test_layer_states_follow_the_flow_to_its_latents(model, digits):
    states = ga.layer_states(model, digits)
    assert states[0]["layer"] == "Logit" and len(states) == len(model.trace(model.bin_centres(digits[:1])))
    last = states[-1]
    top = model.encode(model.bin_centres(digits[:1]))[-1][0].numpy()
    assert np.allclose(last["state"], top, atol=1e-5)
    for s in states:
        counts, edges = s["histogram"]
        assert counts.sum() + s["outside"] == pytest.approx(1.0, abs=1e-9)
        assert len(edges) == len(counts) + 1 and s["gaussian"].sum() == pytest.approx(1.0, abs=1e-3)
        assert ("coupling" in s) == (s["layer"] == "Coupling")
    # the running log-det ends at the logit, flow and split-prior log-dets of the same (bin-centre) digits
    _, ld = model.latents(model.bin_centres(digits))
    expected = -float((ld["logit"] + ld["flow"] + ld["prior"]).double().mean()) / (784 * np.log(2))
    assert last["logdet_bpd"] == pytest.approx(expected, abs=1e-4)
