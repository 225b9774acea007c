"""The Free Spoken Digit Dataset (FSDD, "spoken MNIST"): 8 kHz mono recordings of the digits 0-9, mu-law
companded to 256 levels for WaveNet.

Source: `recordings/{digit}_{speaker}_{index}.wav` in `engine.data.data_dir() / "fsdd"`, that is
`DGM_DATA_DIR/fsdd` or `../shared/data/fsdd` beside the checkout (3,000 RIFF WAV files, PCM 16-bit, mono,
8,000 Hz; 6 speakers x 10 digits x 50 takes; Jackson et al., CC BY-SA 4.0).

The dataset's own split: takes 0-4 of each speaker and digit are the test set (300 clips), takes 5-49 the
training set (2,700 clips). FSDD has no validation split.

Mu-law companding (ITU-T G.711; WaveNet, van den Oord et al. 2016, section 2.2) with mu = 255:
f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu) for x in [-1, 1], quantized to q = floor((f + 1) / 2 * mu + 1/2)
in 0..255. Silence (x = 0) is level 128. Each clip is scaled to peak amplitude 1 before companding
(`peak_normalize`): the recordings' peaks run from 0.01 to 1, and unscaled quiet clips would use a handful of
levels. With that scaling the count baselines on the test split are 7.83 bits/sample (unigram) and 6.28
(previous-sample bigram); without it they would be 7.18 and 5.45.
"""
from __future__ import annotations

import io
import math
import re
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from engine.data import DatasetUnavailable, data_dir

RATE = 8000  # samples per second
MU = 255  # mu-law parameter; 256 levels 0..MU
LEVELS = MU + 1
SILENCE = 128  # mu_law_encode(0)
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
TEST_TAKES = range(0, 5)  # the dataset's own split: takes 0-4 of every speaker and digit are test
SPLITS = ("train", "test")
_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
_HINT = ("put the FSDD recordings (recordings/{digit}_{speaker}_{index}.wav, from "
         "github.com/Jakobovski/free-spoken-digit-dataset) in an `fsdd` folder under DGM_DATA_DIR, "
         "or under ../shared/data next to the checkout")


@dataclass(frozen=True)
class Clip:
    """One recording: waveform in [-1, 1) (float32 numpy (T,)), its digit, speaker and take (0-49)."""

    audio: np.ndarray
    digit: int
    speaker: str
    take: int

    @property
    def split(self) -> str:
        return "test" if self.take in TEST_TAKES else "train"

    @property
    def name(self) -> str:
        return f"{self.digit}_{self.speaker}_{self.take}"

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


# --- mu-law -------------------------------------------------------------------------------------------
def mu_law_encode(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Waveform in [-1, 1] (any shape; clipped) -> mu-law levels 0..255, int64 of the same shape."""
    x = torch.as_tensor(x).double().clamp(-1.0, 1.0)
    f = torch.sign(x) * torch.log1p(MU * x.abs()) / math.log1p(MU)  # companded, in [-1, 1]
    return torch.floor((f + 1) / 2 * MU + 0.5).long()


def mu_law_decode(q: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Mu-law levels 0..255 (any shape) -> waveform in [-1, 1], float32 of the same shape (the inverse
    of `mu_law_encode` up to its quantization: encode(decode(q)) == q)."""
    f = 2 * torch.as_tensor(q).double() / MU - 1  # companded value of the level
    return (torch.sign(f) * torch.expm1(f.abs() * math.log1p(MU)) / MU).float()


def peak_normalize(audio: np.ndarray) -> np.ndarray:
    """A clip scaled to peak amplitude 1 (a silent clip is returned unchanged): float32 (T,)."""
    peak = float(np.abs(audio).max(initial=0.0))
    return (audio / peak).astype(np.float32) if peak > 0 else audio.astype(np.float32)


# --- files ----------------------------------------------------------------------------------------------
def folder() -> Path | None:
    """Where the recordings are expected (None when there is no data folder at all)."""
    root = data_dir()
    return None if root is None else root / "fsdd" / "recordings"


def available() -> bool:
    f = folder()
    return f is not None and f.is_dir() and any(f.glob("*.wav"))


def read_wav(path: Path | str) -> np.ndarray:
    """A 16-bit mono 8 kHz WAV file -> float32 (T,) in [-1, 1). Raises DatasetUnavailable otherwise."""
    try:
        with wave.open(str(path), "rb") as w:
            shape = (w.getnchannels(), w.getsampwidth(), w.getframerate())
            raw = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as e:
        raise DatasetUnavailable(f"could not read the FSDD recording {path}: {e}") from e
    if shape != (1, 2, RATE):
        raise DatasetUnavailable(f"{path}: expected mono 16-bit {RATE} Hz, got (channels, bytes, rate) = {shape}")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


@lru_cache(maxsize=2)
def _all(where: str) -> tuple[Clip, ...]:
    clips = []
    for path in sorted(Path(where).glob("*.wav")):
        match = _NAME.match(path.name)
        if match is None:
            continue
        digit, speaker, take = int(match[1]), match[2], int(match[3])
        clips.append(Clip(read_wav(path), digit, speaker, take))
    if not clips:
        raise DatasetUnavailable(f"FSDD: no recordings named digit_speaker_take.wav in {where}; {_HINT}")
    return tuple(sorted(clips, key=lambda c: (c.digit, c.speaker, c.take)))


def all_clips() -> tuple[Clip, ...]:
    """Every recording, ordered by (digit, speaker, take). Raises DatasetUnavailable when absent."""
    f = folder()
    if f is None or not f.is_dir():
        where = "no data folder was found (DGM_DATA_DIR unset, no ../shared/data)" if f is None else f"{f} is missing"
        raise DatasetUnavailable(f"Free Spoken Digit Dataset not available: {where}; {_HINT}")
    return _all(str(f))


def clips(split: str) -> list[Clip]:
    """The clips of one split of the dataset's own split ("test": takes 0-4, "train": takes 5-49)."""
    if split not in SPLITS:
        raise ValueError(f"unknown FSDD split {split!r}; choose from {', '.join(SPLITS)}")
    return [c for c in all_clips() if c.split == split]


def labels(split: str) -> tuple[torch.Tensor, list[str]]:
    """(digits (N,) int64, speakers (N,) names) of a split, in the order of `clips(split)`."""
    cs = clips(split)
    return torch.tensor([c.digit for c in cs]), [c.speaker for c in cs]


@lru_cache(maxsize=4)
def _levels_in(where: str, split: str) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    cs = [c for c in _all(where) if c.split == split]
    return tuple(mu_law_encode(peak_normalize(c.audio)) for c in cs), torch.tensor([c.digit for c in cs])


def _levels(split: str) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """The cached (levels, digits) of a split of the current data folder."""
    clips(split)  # checks the split name and that the recordings are there
    return _levels_in(str(folder()), split)


def levels(split: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(mu-law levels of every peak-normalized clip, each int64 (T_i,); digits (N,) int64) for a split."""
    qs, digits = _levels(split)
    return list(qs), digits.clone()


# --- training batches -------------------------------------------------------------------------------
def crop(q: torch.Tensor, length: int, *, generator: torch.Generator) -> torch.Tensor:
    """A random window of `length` levels from a clip (T,); a shorter clip is padded with silence after its
    end (the recordings are trimmed to near-minimal silence, so this is the trailing silence)."""
    if len(q) <= length:
        return torch.cat([q, torch.full((length - len(q),), SILENCE, dtype=q.dtype)])
    start = int(torch.randint(len(q) - length + 1, (1,), generator=generator))
    return q[start:start + length]


def labelled(digits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """digits (B,) and levels (B, T) -> (B, 1 + T) int64 rows [digit, q_0, ..., q_{T-1}] (WaveNet's batches)."""
    return torch.cat([digits.long()[:, None], q.long()], 1)


def batches(batch_size: int, length: int, *, generator: torch.Generator, split: str = "train"):
    """One epoch: every clip of the split once in shuffled order, as a random crop of `length` levels:
    (batch_size, 1 + length) int64 rows [digit, q_0, ..., q_{length-1}] (see `labelled`)."""
    qs, digits = _levels(split)
    order = torch.randperm(len(qs), generator=generator)
    for i in range(0, len(qs) - batch_size + 1, batch_size):
        idx = order[i:i + batch_size]
        yield labelled(digits[idx], torch.stack([crop(qs[j], length, generator=generator) for j in idx]))


def fixed_crops(split: str, n: int, length: int, *, seed: int = 0) -> torch.Tensor:
    """n seeded crops (the same every call) from a split, as (n, 1 + length) rows: a monitor batch."""
    g = torch.Generator().manual_seed(seed)
    qs, digits = _levels(split)
    idx = torch.randperm(len(qs), generator=g)[:n]
    return labelled(digits[idx], torch.stack([crop(qs[j], length, generator=g) for j in idx]))


# --- baselines (bits per sample on the test split, counts from the train split) ---------------------------
def count_models() -> tuple[torch.Tensor, torch.Tensor]:
    """The two count models fitted on the training clips with add-one smoothing: unigram p(q_t) (256,) and
    previous-sample (bigram) p(q_t | q_{t-1}) (256, 256), rows indexed by q_{t-1} (silence before a clip)."""
    _levels("train")
    return _count_models_in(str(folder()))


@lru_cache(maxsize=2)
def _count_models_in(where: str) -> tuple[torch.Tensor, torch.Tensor]:
    uni, bi = _counts(_levels_in(where, "train")[0])
    return (uni + 1) / (uni + 1).sum(), (bi + 1) / (bi + 1).sum(1, keepdim=True)


def baseline_bits(qs) -> dict[str, float]:
    """Bits per sample of the clips qs (a list of (T_i,) levels) under the unigram and bigram count models,
    every sample counted, each clip's first sample conditioned on silence (as WaveNet's start)."""
    p_uni, p_bi = count_models()
    prev, cur = _pairs(qs)
    return {"unigram": -torch.log2(p_uni[cur]).mean().item(), "bigram": -torch.log2(p_bi[prev, cur]).mean().item()}


def baselines() -> dict:
    """Cross-entropy in bits per sample of every test sample under the count models (`count_models`)."""
    _levels("test")
    return dict(_baselines_in(str(folder())))


@lru_cache(maxsize=2)
def _baselines_in(where: str) -> dict:
    test = _levels_in(where, "test")[0]
    return {**baseline_bits(test), "samples": sum(len(q) for q in test), "clips": len(test),
            "split": describe("test"), "fitted_on": describe("train"), "unit": "bits per sample"}


def _pairs(qs) -> tuple[torch.Tensor, torch.Tensor]:
    """(previous, current) levels of every sample of every clip, silence before each clip's first sample."""
    prev = torch.cat([torch.cat([torch.tensor([SILENCE]), q[:-1]]) for q in qs])
    return prev, torch.cat(list(qs))


def _counts(qs) -> tuple[torch.Tensor, torch.Tensor]:
    prev, cur = _pairs(qs)
    uni = torch.bincount(cur, minlength=LEVELS).double()
    bi = torch.bincount(prev * LEVELS + cur, minlength=LEVELS * LEVELS).double().reshape(LEVELS, LEVELS)
    return uni, bi


# --- audio for the page ------------------------------------------------------------------------------
def wav_bytes(audio: torch.Tensor | np.ndarray, rate: int = RATE) -> bytes:
    """A waveform in [-1, 1] (T,) -> the bytes of a 16-bit mono WAV file (for st.audio or a download)."""
    x = np.clip(np.asarray(audio, dtype=np.float64).reshape(-1), -1.0, 1.0)
    pcm = np.round(x * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


def describe(split: str = "test") -> str:
    takes = "takes 0-4" if split == "test" else "takes 5-49"
    n = len(SPEAKERS) * 10 * (len(TEST_TAKES) if split == "test" else 50 - len(TEST_TAKES))
    return (f"Free Spoken Digit Dataset {split} split (the dataset's own: {takes} of each speaker and digit, "
            f"{n} clips), 8 kHz, mu-law 256 levels")


# --- log-mel features (the digit classifier's input and the vocoder's local condition) ------------------------
N_FFT, HOP, N_MELS = 256, 64, 40  # 32 ms windows every 8 ms, 40 mel bands from 0 to 4 kHz
LOG_FLOOR = 1e-5  # log-mel of silence: ln(1e-5) = -11.5


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = RATE) -> torch.Tensor:
    """Triangular filters (n_mels, n_fft // 2 + 1) on the HTK mel scale, m = 2595 log10(1 + f / 700), spaced evenly
    in mel from 0 Hz to rate / 2, each peaking at 1 (not area-normalized)."""
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(0, _hz_to_mel(rate / 2), n_mels + 2))
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising, falling = (freqs - low) / (centre - low), (high - freqs) / (high - centre)
    return torch.from_numpy(np.maximum(0, np.minimum(rising, falling))).float()


def log_mel(audio: torch.Tensor | np.ndarray, *, n_mels: int = N_MELS, n_fft: int = N_FFT, hop: int = HOP) -> torch.Tensor:
    """Waveforms (T,) or (B, T) in [-1, 1] -> natural-log mel power spectrogram (n_mels, F) or (B, n_mels, F),
    F = 1 + T // hop frames; frame f is centred on sample f * hop (the signal is zero-padded by n_fft // 2 at both
    ends), Hann window, power |X|^2 / n_fft, floored at LOG_FLOOR before the log. Differentiable (torch.stft)."""
    x = torch.as_tensor(audio, dtype=torch.float32)
    single = x.dim() == 1
    x = x[None] if single else x
    spec = torch.stft(x, n_fft, hop_length=hop, window=torch.hann_window(n_fft, device=x.device), center=True,
                      pad_mode="constant", return_complex=True)  # (B, n_fft/2 + 1, F)
    power = spec.abs() ** 2 / n_fft
    mel = torch.log(torch.clamp(mel_filterbank(n_mels, n_fft).to(x.device) @ power, min=LOG_FLOOR))
    return mel[0] if single else mel


def frame_of_sample(length: int, frames: int, hop: int = HOP) -> torch.Tensor:
    """For every sample t < length, the index of the frame centred nearest to it: round(t / hop), at most frames - 1
    (the nearest-neighbour upsampling of frames to the sample rate)."""
    return torch.clamp((torch.arange(length) + hop // 2) // hop, max=frames - 1)
