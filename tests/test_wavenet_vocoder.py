"""The WaveNet vocoder (local conditioning on a log-mel spectrogram) and the spoken-digit classifier that judges
generated clips: the conditioned WaveNet is still causal in the audio while it reads the whole mel, the fast
(queue) sampler equals the naive one with the mel, the padded test-split evaluation equals clip by clip, the
warm start copies the audio path, and the classifier's log-mel features have the documented shape, filterbank
and standardization."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import api
from engine.data import fsdd
from engine.models import fsdd_classifier as clf
from engine.models.wavenet import WaveNet, bits_on_test_split


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def vocoder(scale: float = 0.4, dtype=torch.float64, **config) -> WaveNet:
    """A small vocoder (no digit label, 40 mel bands) with every parameter redrawn from N(0, scale^2)."""
    model = api.build("wavenet", **{"residual": 6, "gate": 5, "skip": 7, "local": 4, "n_classes": 0, "mel_bins": 40,
                                    "stacks": 2, "layers": 3, **config})
    g = gen(1)
    for p in model.parameters():
        p.copy_(scale * torch.randn(p.shape, generator=g))
    return model.to(dtype).eval()


def random_mel(n: int, frames: int, seed: int = 4) -> torch.Tensor:
    return -6 + 3 * torch.randn(n, 40, frames, generator=gen(seed), dtype=torch.float64)


# --- causal in the audio, not in the mel -------------------------------------------------------------------
def test_vocoder_output_at_t_reads_exactly_the_receptive_field_of_the_audio_and_the_whole_mel():
    model = vocoder()
    r = model.receptive_field()
    length = 2 * r + 9 * fsdd.HOP  # several mel frames
    mel = random_mel(1, 1 + length // fsdd.HOP).requires_grad_(True)
    h = torch.randn(1, model.config.residual, length, generator=gen(2), dtype=torch.float64, requires_grad=True)
    weights = torch.randn(256, generator=gen(3), dtype=torch.float64)
    for t in (length - 1, r + 2, r // 2, 3 * fsdd.HOP + 5):
        local = model.local_input(mel, length)
        logits = model.network(h, model.conditions(None), locals_=[b.local_of(local) for b in model.blocks])
        grad_h, grad_mel = torch.autograd.grad((logits[0, :, t] * weights).sum(), (h, mel))
        depends = grad_h[0].abs().sum(0) > 0
        allowed = torch.zeros(length, dtype=torch.bool)
        allowed[max(0, t - r + 1):t + 1] = True  # inputs t-R+1..t hold the levels q_{t-R}..q_{t-1}: never q_t or later
        assert torch.equal(depends, allowed), (t, depends.nonzero().flatten().tolist())
        frames = (grad_mel[0].abs().sum(0) > 0).nonzero().flatten().tolist()
        f = int(fsdd.frame_of_sample(length, mel.shape[-1])[t])
        assert frames == [x for x in (f - 1, f, f + 1) if 0 <= x < mel.shape[-1]]  # its nearest frame +- 1 (3-frame conv)


def test_teacher_forced_vocoder_reads_the_clips_own_mel_and_a_changed_future_changes_it():
    model = vocoder(dtype=torch.float32)
    q = torch.randint(256, (1, 600), generator=gen(5))
    own = model.logits(q, None)
    assert torch.allclose(own, model.logits(q, None, mel=model.mel_of(q)))
    later = q.clone()
    later[0, 400:] = 128  # silence from sample 400: the mel of the clip changes around and after it
    changed = (model.logits(later, None) - own).abs().amax(1)[0]  # (T,)
    assert changed[:400 - fsdd.N_FFT // 2 - 2 * fsdd.HOP].max() == 0  # far before: neither audio nor mel frames differ
    assert changed[300:400].max() > 1e-3  # before 400 but its mel frames hear the change: the vocoder reads the future mel


# --- fast == naive with the mel --------------------------------------------------------------------------
@pytest.mark.parametrize("config", [{"stacks": 2, "layers": 3}, {"stacks": 1, "layers": 3, "kernel_size": 3}])
def test_fast_generation_equals_naive_generation_with_the_mel(config):
    model = vocoder(scale=0.5, **config)
    r = model.receptive_field()
    length = 3 * r + 2 * fsdd.HOP  # every queue wraps, several mel frames
    mel = random_mel(2, 1 + length // fsdd.HOP)
    u = torch.rand(2, length, generator=gen(6), dtype=torch.float64)
    none = torch.zeros(2, dtype=torch.long)
    naive, naive_logits = model.generate_naive(none, u, return_logits=True, mel=mel)
    fast, fast_logits = model.generate_fast(none, u, return_logits=True, mel=mel)
    assert torch.equal(naive, fast)
    assert (naive_logits - fast_logits).abs().max() < 1e-5
    assert len(fast.unique()) > 20
    teacher = model.logits(fast, None, mel=mel).transpose(1, 2)  # the same logits in one teacher-forced pass
    assert (teacher - fast_logits).abs().max() < 1e-10
    other = model.generate_fast(none, u, mel=random_mel(2, mel.shape[-1], seed=9))
    assert not torch.equal(other, fast)  # the mel matters
    with pytest.raises(ValueError, match="vocoder"):
        model.generate_fast(none, u)  # no mel: a clear error, not a silent unconditioned sample


def test_vocoder_test_split_evaluation_in_padded_batches_equals_clip_by_clip():
    model = vocoder(dtype=torch.float32, stacks=1)
    batched = bits_on_test_split(model, batch_size=4, max_clips=8)
    single = bits_on_test_split(model, batch_size=1, max_clips=8)
    assert abs(batched["bits_per_sample"] - single["bits_per_sample"]) < 1e-4


def test_warm_start_copies_the_audio_path_and_leaves_the_conditioning_fresh():
    source = api.build("wavenet", residual=6, gate=5, skip=7, stacks=1, layers=3, seed=3)
    target = api.build("wavenet", residual=6, gate=5, skip=7, stacks=1, layers=3, n_classes=0, mel_bins=40, local=4)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    copied = target.init_from_checkpoint(source)
    assert "embed.weight" in copied and "blocks.0.dilated.weight" in copied and "head.3.weight" in copied
    assert not any("condition" in k or "local" in k or "mel_net" in k for k in copied)
    state = target.state_dict()
    for k in state:
        expected = source.state_dict()[k] if k in copied else fresh[k]
        assert torch.equal(state[k], expected), k


# --- the classifier's features ---------------------------------------------------------------------------
def test_log_mel_shape_and_a_tone_lands_in_its_band():
    t = torch.arange(fsdd.RATE) / fsdd.RATE
    tones = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in (300.0, 1000.0, 3000.0)])
    mel = fsdd.log_mel(tones)
    assert mel.shape == (3, fsdd.N_MELS, 1 + fsdd.RATE // fsdd.HOP)
    bank = fsdd.mel_filterbank()
    centres = np.linspace(0, fsdd.RATE / 2, fsdd.N_FFT // 2 + 1)[bank.argmax(1).numpy()]
    for row, f in zip(mel, (300.0, 1000.0, 3000.0)):
        band = int(row[:, 10:-10].mean(1).argmax())
        assert abs(centres[band] - f) < 0.15 * f, (f, centres[band])
    silence = fsdd.log_mel(torch.zeros(fsdd.RATE))
    assert torch.all(silence == math.log(fsdd.LOG_FLOOR))


def test_classifier_features_shape_and_standardization_on_the_training_split():
    q = torch.stack([clf.fit_length(x, fsdd.RATE) for x in fsdd.levels("train")[0][::9]])  # 300 training clips
    x = clf.features(q)
    assert x.shape == (300, 1, fsdd.N_MELS, 1 + fsdd.RATE // fsdd.HOP)
    assert abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1) < 0.1  # the measured constants standardize
    quiet = clf.features(fsdd.mu_law_encode(fsdd.mu_law_decode(q[:4]) * 0.25))  # a quieter copy of 4 clips
    assert (quiet - x[:4]).abs().mean() < 0.05  # each clip is scaled to peak 1 first: loudness hardly matters


def test_fit_length_keeps_the_middle_or_pads_with_silence():
    q = torch.arange(10)
    assert clf.fit_length(q, 4).tolist() == [3, 4, 5, 6]
    assert clf.fit_length(q, 12).tolist() == list(range(10)) + [fsdd.SILENCE] * 2


def test_bundled_classifier_is_right_on_real_test_clips():
    if "fsdd-classifier" not in api.bundled():
        pytest.skip("fsdd-classifier is not bundled")
    result = clf.accuracy_on_test_split(api.load("fsdd-classifier"))
    assert result["clips"] == 300 and result["accuracy"] >= 0.9
    assert sum(map(sum, result["confusion"])) == 300
