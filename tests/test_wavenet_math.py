"""WaveNet's math and its data: causality and the receptive field by autograd, fast (queue) generation equal to
the naive one on the same uniforms, mu-law companding, the dataset's own split, the count baselines, and a short
training run that beats the previous-sample baseline. Weights are randomized first (larger than the default
init) so that no dependency hides behind a small weight."""
from __future__ import annotations

import io
import math
import wave

import numpy as np
import pytest
import torch

from engine import api
from engine.data import DatasetUnavailable, fsdd
from engine.models.wavenet import WaveNet, bits_on_test_split


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def randomized(scale: float = 0.4, dtype=torch.float64, **config) -> WaveNet:
    """A WaveNet with every parameter redrawn from N(0, scale^2), in float64 unless asked."""
    model = api.build("wavenet", **{"residual": 6, "gate": 5, "skip": 7, **config})
    g = gen(1)
    for p in model.parameters():
        p.copy_(scale * torch.randn(p.shape, generator=g))
    return model.to(dtype).eval()


ARCHITECTURES = [  # (config, receptive field expected from the formula 1 + sum (k - 1) d)
    ({"stacks": 1, "layers": 4}, 1 + (1 + 2 + 4 + 8)),
    ({"stacks": 2, "layers": 3}, 1 + 2 * (1 + 2 + 4)),
    ({"stacks": 3, "layers": 1, "dilations": (1, 3, 2)}, 1 + 3 * (1 + 3 + 2)),
    ({"stacks": 2, "layers": 2, "kernel_size": 3}, 1 + 2 * 2 * (1 + 2)),
]


# --- causality and the receptive field -----------------------------------------------------------------
def dependence(model: WaveNet, t: int, length: int, digit: int = 3) -> torch.Tensor:
    """Which input positions the logits at time t depend on: (length,) bool, from the gradient of a random
    projection of the 256 logits with respect to the embedded inputs (input s holds the level q_{s-1})."""
    h = torch.randn(1, model.config.residual, length, generator=gen(2), dtype=torch.float64, requires_grad=True)
    logits = model.network(h, model.conditions(torch.tensor([digit])))  # (1, 256, length)
    weights = torch.randn(256, generator=gen(3), dtype=torch.float64)
    (grad,) = torch.autograd.grad((logits[0, :, t] * weights).sum(), h)
    return grad[0].abs().sum(0) > 0


@pytest.mark.parametrize("config,expected", ARCHITECTURES)
def test_output_at_t_depends_on_exactly_the_receptive_field_before_t(config, expected):
    model = randomized(**config)
    r = model.receptive_field()
    assert r == expected
    length = 2 * r + 5
    for t in (length - 1, r + 2, r // 2):
        depends = dependence(model, t, length)
        allowed = torch.zeros(length, dtype=torch.bool)
        allowed[max(0, t - r + 1):t + 1] = True  # inputs t-R+1..t, i.e. the levels q_{t-R}..q_{t-1}
        assert torch.equal(depends, allowed), (t, depends.nonzero().flatten().tolist())
    assert int(dependence(model, length - 1, length).sum()) == r  # autograd counts R positions


def test_perturbing_a_level_changes_exactly_the_later_predictions_it_reaches():
    model = randomized(stacks=2, layers=3)
    r, length = model.receptive_field(), 40
    q = torch.randint(256, (1, length), generator=gen(4))
    digit = torch.tensor([5])
    base = model.logits(q, digit)
    s = 10
    moved = q.clone()
    moved[0, s] = (q[0, s] + 100) % 256
    changed = (model.logits(moved, digit) - base).abs().amax(1)[0] > 0  # (length,)
    expected = torch.zeros(length, dtype=torch.bool)
    expected[s + 1:s + 1 + r] = True  # q_s is read by the predictions of q_{s+1} .. q_{s+R}
    assert torch.equal(changed, expected)


def test_the_digit_conditions_every_gate():
    model = randomized(stacks=1, layers=3)
    q = torch.randint(256, (2, 30), generator=gen(5))
    logits = model.logits(q, torch.tensor([1, 8]))
    assert not torch.allclose(logits, model.logits(q, torch.tensor([1, 1])))
    logits.sum().backward()
    for block in model.blocks:
        used = block.condition.weight.grad.abs().sum(1) > 0
        assert used.tolist() == [i in (1, 8) for i in range(10)]
    unconditional = randomized(stacks=1, layers=3, n_classes=0)
    assert all(b.condition is None for b in unconditional.blocks)
    assert torch.equal(unconditional.logits(q, torch.tensor([1, 8])), unconditional.logits(q, None))


# --- fast generation == naive generation ------------------------------------------------------------------
@pytest.mark.parametrize("config", [{"stacks": 2, "layers": 3}, {"stacks": 2, "layers": 2, "kernel_size": 3}])
def test_fast_generation_equals_naive_generation_beyond_the_receptive_field(config):
    model = randomized(scale=0.5, **config)
    r = model.receptive_field()
    length = 3 * r + 7  # every queue wraps around several times
    digits = torch.tensor([0, 4, 9])
    u = torch.rand(3, length, generator=gen(6), dtype=torch.float64)
    naive, naive_logits = model.generate_naive(digits, u, return_logits=True)
    fast, fast_logits = model.generate_fast(digits, u, return_logits=True)
    assert torch.equal(naive, fast)
    assert (naive_logits - fast_logits).abs().max() < 1e-5
    assert len(naive.unique()) > 20  # a varied signal, not one repeated level
    whole, whole_logits = model.generate_naive(digits, u, window=False, return_logits=True)  # growing signal
    assert torch.equal(whole, naive) and (whole_logits - naive_logits).abs().max() < 1e-10
    teacher = model.logits(fast, digits).transpose(1, 2)  # the logits each sample was drawn from, in one pass
    assert (teacher - fast_logits).abs().max() < 1e-10


def test_fast_equals_naive_in_float32_and_sampling_is_seeded():
    model = randomized(scale=0.5, dtype=torch.float32, stacks=2, layers=3)
    u = torch.rand(2, 50, generator=gen(7), dtype=torch.float64)
    naive, naive_logits = model.generate_naive(torch.tensor([2, 7]), u, return_logits=True)
    fast, fast_logits = model.generate_fast(torch.tensor([2, 7]), u, return_logits=True)
    assert torch.equal(naive, fast) and (naive_logits - fast_logits).abs().max() < 1e-5
    a = model.sample(3, generator=gen(8), length=30)
    assert a.shape == (3, 30) and a.dtype == torch.long and 0 <= a.min() and a.max() <= 255
    assert torch.equal(a, model.sample(3, generator=gen(8), length=30, fast=False))
    assert not torch.equal(a, model.sample(3, generator=gen(9), length=30))
    assert torch.equal(a, model.sample(3, uniforms=torch.rand(3, 30, generator=gen(8), dtype=torch.float64)))


def test_inverse_cdf_draw_follows_the_probabilities():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25] + [0.0] * 253]).clamp_min(1e-300))
    u = torch.tensor([0.0, 0.49, 0.51, 0.74, 0.76, 0.999])
    levels = api.wavenet_draw(logits.expand(6, -1), u)
    assert levels.tolist() == [0, 0, 1, 1, 2, 2]


# --- likelihoods -------------------------------------------------------------------------------------------
def test_log_prob_is_the_sum_of_the_conditionals():
    model = randomized(stacks=1, layers=3)
    q = torch.randint(256, (20,), generator=gen(10))
    p = model.conditionals(q, 4)  # (T, 256)
    assert p.shape == (20, 256) and torch.allclose(p.sum(1), torch.ones(20), atol=1e-6)
    log_p = model.log_prob(fsdd.labelled(torch.tensor([4]), q[None]))
    assert abs(log_p.item() - torch.log(p.double()[torch.arange(20), q]).sum().item()) < 1e-4
    assert abs(model.bits_per_sample(q, 4) - (-log_p.item() / 20 / math.log(2))) < 1e-9
    zero = randomized(stacks=1, layers=3)
    with torch.no_grad():
        zero.head[-1].weight.zero_(), zero.head[-1].bias.zero_()
    assert abs(zero.bits_per_sample(q, 4) - 8.0) < 1e-12  # uniform over 256 levels: exactly 8 bits


def test_test_split_evaluation_in_padded_batches_equals_clip_by_clip():
    model = randomized(stacks=1, layers=3, dtype=torch.float32)
    batched = bits_on_test_split(model, batch_size=4, max_clips=8)
    single = bits_on_test_split(model, batch_size=1, max_clips=8)
    qs, _ = fsdd.levels("test")
    assert batched["clips"] == 8 and batched["samples"] == sum(sorted(len(q) for q in qs)[:8])
    assert abs(batched["bits_per_sample"] - single["bits_per_sample"]) < 1e-4


# --- mu-law -------------------------------------------------------------------------------------------
def compand(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(255 * x.abs()) / math.log(256)


def test_mu_law_round_trip_within_a_level():
    q = torch.arange(256)
    assert torch.equal(fsdd.mu_law_encode(fsdd.mu_law_decode(q)), q)
    assert fsdd.mu_law_decode(q).diff().min() > 0 and fsdd.mu_law_decode(torch.tensor([0, 255])).tolist() == [-1, 1]
    x = torch.linspace(-1, 1, 20001, dtype=torch.float64)
    levels = fsdd.mu_law_encode(x)
    assert levels.min() == 0 and levels.max() == 255 and (levels.diff() >= 0).all()
    assert fsdd.mu_law_encode(torch.tensor([0.0])).item() == fsdd.SILENCE == 128
    error = (compand(fsdd.mu_law_decode(levels).double()) - compand(x)).abs()  # in the companded domain
    assert error.max() <= 1 / 255 + 1e-6  # half a level (levels are 2/255 apart)
    small = x.abs() < 0.01  # companding spends its levels near zero: a small error there
    assert (fsdd.mu_law_decode(levels)[small].double() - x[small]).abs().max() < 3e-4


def test_wav_bytes_round_trip(tmp_path):
    x = np.sin(np.linspace(0, 200, 4000)) * 0.8
    data = fsdd.wav_bytes(x)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8000, 4000)
    (tmp_path / "x.wav").write_bytes(data)
    assert np.abs(fsdd.read_wav(tmp_path / "x.wav") - x).max() < 1.5 / 32768


# --- the data ------------------------------------------------------------------------------------------
def test_split_is_the_datasets_own():
    test, train = fsdd.clips("test"), fsdd.clips("train")
    assert len(test) == 300 and len(train) == 2700
    assert {c.take for c in test} == set(range(5)) and {c.take for c in train} == set(range(5, 50))
    for split, per in ((test, 5), (train, 45)):
        counts = {}
        for c in split:
            counts[c.digit, c.speaker] = counts.get((c.digit, c.speaker), 0) + 1
        assert len(counts) == 60 and set(counts.values()) == {per}
    digits, speakers = fsdd.labels("test")
    assert digits.tolist() == [c.digit for c in test] and set(speakers) == set(fsdd.SPEAKERS)
    assert all(len(c.audio) > 1000 and np.abs(c.audio).max() <= 1 for c in test)


def test_training_batches_are_crops_of_training_clips_with_their_digit():
    qs, digits = fsdd.levels("train")
    batch = next(fsdd.batches(4, 500, generator=gen(0)))
    assert batch.shape == (4, 501) and batch.dtype == torch.long
    assert 0 <= batch[:, 1:].min() and batch[:, 1:].max() <= 255
    for row in batch:
        found = [i for i, q in enumerate(qs) if digits[i] == row[0] and len(q) >= 500
                 and (q.unfold(0, 500, 1) == row[1:]).all(1).any()]
        assert found, "a crop is a window of a training clip of its digit"


def test_baselines_match_the_issue_figures():
    b = fsdd.baselines()
    assert b["clips"] == 300 and b["samples"] > 1_000_000
    assert 7.7 < b["unigram"] < 7.9 and 6.2 < b["bigram"] < 6.4  # issue: ~7.8 and ~6.3


def test_missing_data_folder_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetUnavailable, match=r"Free Spoken Digit Dataset.*fsdd.*DGM_DATA_DIR"):
        fsdd.clips("test")
    model = api.build("wavenet", **api.preset("wavenet", "tiny")["config"])
    with pytest.raises(DatasetUnavailable, match="fsdd"):
        api.make_trainer(model, api.preset("wavenet", "tiny")["train"])
    (tmp_path / "fsdd" / "recordings").mkdir(parents=True)
    with pytest.raises(DatasetUnavailable, match="no recordings"):
        fsdd.clips("train")
    with pytest.raises(ValueError, match="unknown FSDD split"):
        fsdd.clips("valid")


def test_a_folder_of_wav_files_is_read_and_split(monkeypatch, tmp_path):
    folder = tmp_path / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    for take in (0, 7):
        (folder / f"3_theo_{take}.wav").write_bytes(fsdd.wav_bytes(np.full(100, 0.25 * (take + 1) / 8)))
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))
    (test,), (train,) = fsdd.clips("test"), fsdd.clips("train")
    assert (test.name, train.name) == ("3_theo_0", "3_theo_7")
    qs, digits = fsdd.levels("train")
    assert digits.tolist() == [3] and torch.equal(qs[0], torch.full((100,), 255))  # peak-normalized to 1


# --- training ----------------------------------------------------------------------------------------
QUICK = {"residual": 16, "gate": 16, "skip": 32, "stacks": 1, "layers": 6, "crop": 256}


def test_a_short_training_run_beats_the_previous_sample_baseline():
    """250 Adam steps (lr 1e-2, 16 crops of 256 samples) through the Trainer; measured: 5.96 bits/sample on the
    40 shortest test clips against 6.23 for the bigram (7.87 unigram) on the same clips (5.92 on all 300 test
    clips against 6.28); 17 s of CPU (282 s of wall time on the busy 2-core machine, niced)."""
    torch.manual_seed(0)
    model = api.build("wavenet", **QUICK)
    trainer = api.make_trainer(model, {"epochs": 2, "batch_size": 16, "lr": 1e-2, "max_steps": 250}, log_every=250)
    updates = list(trainer.run())
    assert trainer.step == 250 and "test_crops_bps" in updates[-1]
    result = bits_on_test_split(model, max_clips=40)
    qs, _ = fsdd.levels("test")
    baseline = fsdd.baseline_bits(sorted(qs, key=len)[:40])
    assert result["samples"] == sum(len(q) for q in sorted(qs, key=len)[:40])
    assert result["bits_per_sample"] < baseline["bigram"] < baseline["unigram"], (result, baseline)
