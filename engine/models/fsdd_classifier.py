"""A spoken-digit classifier on the Free Spoken Digit Dataset: log-mel features and a small convnet. It is the
judge of the WaveNet page: how many generated (digit-conditioned) or vocoded clips does a classifier that is
right on real test clips recognise?

References:
- Jackson et al., Free Spoken Digit Dataset (github.com/Jakobovski/free-spoken-digit-dataset), CC BY-SA 4.0.
- Davis & Mermelstein (1980), "Comparison of parametric representations for monosyllabic word recognition in
  continuously spoken sentences" (mel-scale filterbank features for word recognition).

Input: a clip as mu-law levels (the WaveNet's own representation, so real, generated and vocoded clips pass
the same way), decoded, scaled to peak 1 and cut or padded with silence to exactly `length` samples (1 s: a
longer clip keeps its middle second); features are its log-mel spectrogram (40 bands, 8 ms hop,
engine.data.fsdd.log_mel) standardized by constants measured on the training split, (log-mel - FEATURE_MEAN) /
FEATURE_STD, as a (B, 1, 40, 126) image. Network: three conv3x3-BatchNorm-ReLU blocks (w, 2w, 4w channels) with
2x2 max-pooling after the first two, then the mean and the maximum over time of every channel at each of the 10
frequency rows (time-shift invariant, the frequency kept), dropout, a linear layer to 10 logits.

Training batches are the WaveNet's (B, 1 + length) rows [digit, levels] ("fsdd-mulaw" in make_trainer: a random
`length` window of each longer training clip, shorter ones padded with silence), each shifted in time by a random
circular roll of up to `shift` samples during training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import fsdd
from engine.models.base import Model
from engine.models.dcgan import BatchNorm  # float running statistics only (no integer batch counter in the file)
from engine.registry import register

# Mean and standard deviation of every log-mel value of the training split's 1-s clips (peak 1, silence padded),
# measured once with `feature_statistics()`; tests/test_fsdd_classifier.py checks they still standardize the split.
FEATURE_MEAN, FEATURE_STD = -9.68, 2.97


@dataclass(frozen=True)
class FSDDClassifierConfig:
    width: int = 16  # channels of the first conv block (then 2w, 4w)
    n_classes: int = 10
    crop: int = fsdd.RATE  # clip length in samples (the training windows): 1 s
    shift: int = 2400  # training augmentation: random circular time shift of up to this many samples (0.3 s)
    dropout: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.width < 1 or self.crop < fsdd.N_FFT or not 0 <= self.shift < self.crop or not 0 <= self.dropout < 1:
            raise ValueError(f"fsdd-classifier: width >= 1, crop >= {fsdd.N_FFT}, 0 <= shift < crop, 0 <= dropout < 1: "
                             f"{self}")


def fit_length(q: torch.Tensor, length: int) -> torch.Tensor:
    """Levels (T,) -> (length,): a longer clip keeps its middle `length` samples, a shorter one is padded with
    silence after its end (as the training windows)."""
    if len(q) >= length:
        start = (len(q) - length) // 2
        return q[start:start + length]
    return torch.cat([q, torch.full((length - len(q),), fsdd.SILENCE, dtype=q.dtype)])


def features(q: torch.Tensor) -> torch.Tensor:
    """Levels (B, T) -> standardized log-mel features (B, 1, 40, 1 + T // 64): decoded, scaled to peak 1 per clip
    (a silent clip stays silent), log-mel (fsdd.log_mel), minus FEATURE_MEAN, over FEATURE_STD."""
    audio = fsdd.mu_law_decode(q.cpu())  # (B, T)
    peak = audio.abs().amax(1, keepdim=True)
    audio = torch.where(peak > 0, audio / peak.clamp(min=1e-12), audio)
    return ((fsdd.log_mel(audio) - FEATURE_MEAN) / FEATURE_STD)[:, None]


def feature_statistics(split: str = "train") -> tuple[float, float]:
    """Mean and standard deviation of every raw log-mel value of a split's clips fitted to 1 s (peak 1)."""
    qs, _ = fsdd.levels(split)
    values = []
    for i in range(0, len(qs), 256):
        q = torch.stack([fit_length(x, fsdd.RATE) for x in qs[i:i + 256]])
        values.append(features(q) * FEATURE_STD + FEATURE_MEAN)
    v = torch.cat(values).double()
    return float(v.mean()), float(v.std())


@register("fsdd-classifier", FSDDClassifierConfig)
class FSDDClassifier(Model):
    """Spoken digit (0-9) from a clip of mu-law levels; `predict(list of clips)` for clips of any length."""

    dataset = "fsdd-mulaw"
    presets = {
        # 15 epochs of 84 batches of 32 one-second windows: about 0.25 s of CPU a step on one thread.
        "bundled": {"config": {}, "train": {"epochs": 15, "batch_size": 32, "lr": 3e-3}},
        "tiny": {"config": {"width": 2, "crop": 1024, "shift": 256},
                 "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "max_steps": 5}},
    }

    def __init__(self, config: FSDDClassifierConfig) -> None:
        super().__init__(config)
        w = config.width
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)

            def block(a: int, b: int) -> list[nn.Module]:
                return [nn.Conv2d(a, b, 3, padding=1, bias=False), BatchNorm(b), nn.ReLU()]

            self.trunk = nn.Sequential(*block(1, w), nn.MaxPool2d(2), *block(w, 2 * w), nn.MaxPool2d(2),
                                       *block(2 * w, 4 * w))  # (B, 4w, 10, frames / 4)
            self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(2 * 4 * w * 10, config.n_classes))

    def logits(self, q: torch.Tensor) -> torch.Tensor:
        """Levels (B, crop) -> logits (B, 10)."""
        h = self.trunk(features(q).to(self.device))  # (B, 4w, 10, frames / 4)
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], 1).flatten(1))  # time pooled, frequency kept

    @torch.no_grad()
    def probabilities(self, clips: list[torch.Tensor], *, batch_size: int = 100) -> torch.Tensor:
        """Clips of levels (each (T_i,), any length; fitted to `crop` by `fit_length`) -> p(digit) (N, 10), eval mode."""
        was_training = self.training
        self.eval()
        fitted = torch.stack([fit_length(torch.as_tensor(q).long(), self.config.crop) for q in clips])
        out = torch.cat([torch.softmax(self.logits(fitted[i:i + batch_size]), 1).cpu()
                         for i in range(0, len(fitted), batch_size)])
        self.train(was_training)
        return out

    def predict(self, clips: list[torch.Tensor]) -> torch.Tensor:
        """The most probable digit of every clip (N,) int64."""
        return self.probabilities(clips).argmax(1)

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy (nats) on rows (B, 1 + crop) [digit, levels], each clip rolled by a random shift."""
        digits, q = batch[:, 0].long().to(self.device), batch[:, 1:].long()
        if self.training and self.config.shift:
            shifts = torch.randint(self.config.shift + 1, (len(q),)).tolist()
            q = torch.stack([torch.roll(row, s) for row, s in zip(q, shifts)])
        logits = self.logits(q)
        return {"loss": F.cross_entropy(logits, digits),
                "accuracy": (logits.argmax(1) == digits).float().mean().detach()}

    def example_batch(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, 1 + crop) rows of random digits and levels: a training-shaped batch for tests without data."""
        digits = torch.randint(self.config.n_classes, (n,), generator=generator)
        return fsdd.labelled(digits, torch.randint(fsdd.LEVELS, (n, self.config.crop), generator=generator))

    @torch.no_grad()
    def monitor(self, rows: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Accuracy on a fixed batch of test-split windows (monitoring only; nothing is chosen by it)."""
        return {"test_windows_accuracy": float((self.predict(list(rows[:, 1:])) == rows[:, 0].cpu()).float().mean())}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A classifier has no model of audio: n rows [predicted digit, random levels] in the training format (for
        the contract tests only; never shown as samples)."""
        q = torch.randint(fsdd.LEVELS, (n, self.config.crop), generator=generator)
        return fsdd.labelled(self.predict(list(q)), q)


@torch.no_grad()
def accuracy_on_test_split(model: FSDDClassifier) -> dict:
    """Accuracy on all 300 test clips (each whole clip, fitted to 1 s), overall and per digit, and the confusion
    matrix (rows: true digit, columns: predicted)."""
    qs, digits = fsdd.levels("test")
    predicted = model.predict(qs)
    confusion = torch.zeros(10, 10, dtype=torch.long)
    for t, p in zip(digits.tolist(), predicted.tolist()):
        confusion[t, p] += 1
    return {"accuracy": float((predicted == digits).float().mean()), "clips": len(qs), "correct": int((predicted == digits).sum()),
            "per_digit": [float(confusion[d, d] / confusion[d].sum()) for d in range(10)],
            "confusion": confusion.tolist(), "split": fsdd.describe("test")}


def evaluate(model: FSDDClassifier) -> dict:
    return {"test_accuracy": accuracy_on_test_split(model)}
