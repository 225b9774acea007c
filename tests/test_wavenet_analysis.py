"""The WaveNet page's analysis: the stack's dependencies by autograd equal the receptive-field formula (and the
classic picture for dilations 1, 2, 4, 8), mu-law against uniform bins, a clip's predictions against the model's own
bits per sample, naive and fast generation identical from the same uniforms, and the spectrogram's frequency axis."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import api
from engine.wavenet_analysis import (clip_predictions, companding, receptive_field, spectrogram,
                                     stack_dependencies, timed_generation)


@pytest.mark.parametrize("dilations,kernel", [((1, 2, 4, 8), 2), ((1, 2, 4) * 2, 2), ((1, 3, 9), 2),
                                              ((1, 2) * 3, 3), ((5,), 2), ((2, 1, 7, 1), 3)])
def test_autograd_agrees_with_the_formula(dilations, kernel):
    deps = stack_dependencies(dilations, kernel_size=kernel)
    r = 1 + (kernel - 1) * sum(dilations)
    assert deps["receptive_field"] == receptive_field(dilations, kernel) == r
    assert deps["span"] == r  # the oldest input read is R back
    rows = deps["rows"]
    assert rows.shape == (len(dilations) + 1, r + 4) and not rows[0, :-r].any()
    reachable = {0}  # offsets back from the newest input: sums of one tap j * d_l per layer, j < k
    for d in dilations:
        reachable = {a + j * d for a in reachable for j in range(kernel)}
    assert sorted(r + 3 - np.nonzero(rows[0])[0]) == sorted(reachable) and deps["measured"] == len(reachable)
    assert rows[-1].tolist() == [False] * (r + 3) + [True]  # the output layer: the last position only


def test_dilations_that_do_not_tile_leave_holes():
    deps = stack_dependencies((1, 3, 9))
    assert deps["span"] == 14 and deps["measured"] == 8  # offsets {0, 1, 3, 4, 9, 10, 12, 13}
    assert stack_dependencies((1, 2, 4, 8))["measured"] == 16  # doubling tiles: every one of the R inputs


def test_the_classic_picture_of_dilations_1_2_4_8():
    rows = stack_dependencies((1, 2, 4, 8), width=16)["rows"]
    every = lambda step: [(15 - s) % step == 0 for s in range(16)]  # noqa: E731
    assert rows[1].tolist() == every(2) and rows[2].tolist() == every(4) and rows[3].tolist() == every(8)


def test_mu_law_spends_its_levels_on_quiet_samples():
    t = np.arange(4000) / 8000
    x = np.sin(2 * np.pi * 200 * t) * np.exp(-6 * t)  # a decaying tone: mostly quiet
    r = companding(x.astype(np.float32))
    assert np.abs(r["normalized"]).max() == pytest.approx(1.0)
    assert r["levels"].min() >= 0 and r["levels"].max() <= 255
    assert r["mu_law_quiet_snr_db"] > r["uniform_quiet_snr_db"] + 6  # measured 37.7 against 28.4 dB
    assert r["mu_law_snr_db"] == pytest.approx(r["mu_law_quiet_snr_db"], abs=3)  # mu-law: about even everywhere


def test_clip_predictions_are_the_models_bits_per_sample():
    model = api.build("wavenet", residual=4, gate=4, skip=8, stacks=1, layers=3).eval()
    q = torch.randint(256, (300,), generator=torch.Generator().manual_seed(0))
    pred = clip_predictions(model, q, digit=2)
    assert pred["probs"].shape == (300, 256)
    assert np.allclose(pred["probs"].sum(1), 1, atol=1e-5)
    assert pred["bits"] == pytest.approx(model.bits_per_sample(q, 2), rel=1e-5)
    if api.fsdd.available():
        assert set(pred["baselines"]) == {"unigram", "bigram"}


def test_naive_and_fast_generation_are_identical_beyond_the_receptive_field():
    model = api.build("wavenet", residual=4, gate=4, skip=8, stacks=2, layers=3).eval()  # R = 15
    out = timed_generation(model, 5, seed=1, fast_samples=60, naive_samples=40)
    assert out["identical"] and len(out["fast"]) == 60 and len(out["naive"]) == 40
    assert out["fast_s"] > 0 and out["naive_s"] > 0


def test_spectrogram_of_a_tone_peaks_at_its_frequency():
    t = np.arange(8000) / 8000
    spec = spectrogram(np.sin(2 * np.pi * 1000 * t))
    peak = spec["freqs"][spec["db"].mean(1).argmax()]
    assert abs(peak - 1000) <= 8000 / 256 and spec["db"].max() == 0 and spec["db"].min() >= -80
    assert spectrogram(np.zeros(10))["db"].shape[1] == 1  # shorter than a frame: padded, one frame
