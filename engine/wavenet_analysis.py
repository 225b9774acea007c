"""What the WaveNet page shows, computed on the real model: the dilated causal stack's dependencies measured
with autograd, a clip's teacher-forced conditionals beside the count baselines, naive and fast generation timed
from the same uniforms, and spectrograms.

References: van den Oord et al. (2016), "WaveNet: A Generative Model for Raw Audio", arXiv:1609.03499 (figure 3:
the stack of dilated causal convolutions); Paine et al. (2016), "Fast Wavenet Generation Algorithm",
arXiv:1611.09482. Units: samples at 8 kHz, bits per sample, seconds of wall time.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from engine.data import fsdd
from engine.models.wavenet import WaveNet, WaveNetConfig


# --- mu-law companding ----------------------------------------------------------------------------------------
def companding(audio: np.ndarray) -> dict:
    """A clip (T,) in [-1, 1] peak-normalized (as WaveNet sees it), its mu-law levels (T,) 0..255 and their decoded
    waveform, beside plain 256-level uniform quantization of the same clip: how many of the 256 levels each uses
    and its signal-to-quantization-noise ratio in dB (10 log10 of signal power over error power), over the whole
    clip and over its quieter half (the samples below the median amplitude)."""
    x = fsdd.peak_normalize(np.asarray(audio, dtype=np.float32))
    q = fsdd.mu_law_encode(x)  # (T,) int64
    decoded = fsdd.mu_law_decode(q).numpy()
    uniform_q = np.clip(np.floor((x + 1) / 2 * 256), 0, 255).astype(np.int64)  # 256 equal bins over [-1, 1]
    uniform = (uniform_q + 0.5) / 128 - 1  # bin centres

    quiet = np.abs(x) < np.median(np.abs(x))  # the quieter half of the samples

    def snr(y: np.ndarray, where=slice(None)) -> float:
        signal, error = np.sum(x[where].astype(np.float64) ** 2), np.sum((x[where] - y[where]) ** 2)
        return float(10 * np.log10(max(signal, 1e-30) / max(error, 1e-30)))

    return {"normalized": x, "levels": q.numpy(), "decoded": decoded.astype(np.float32),
            "mu_law_levels_used": int(len(np.unique(q.numpy()))), "uniform_levels_used": int(len(np.unique(uniform_q))),
            "mu_law_snr_db": snr(decoded), "uniform_snr_db": snr(uniform),
            "mu_law_quiet_snr_db": snr(decoded, quiet), "uniform_quiet_snr_db": snr(uniform, quiet)}


# --- the dilated causal stack ----------------------------------------------------------------------------
def receptive_field(dilations: tuple[int, ...], kernel_size: int = 2) -> int:
    """The formula: the prediction of q_t reads R = 1 + sum_l (k - 1) d_l past levels (dilations: every layer's)."""
    return 1 + (kernel_size - 1) * sum(dilations)


def stack_dependencies(dilations: tuple[int, ...], *, kernel_size: int = 2, width: int | None = None) -> dict:
    """Which positions of every layer the prediction at the last time step depends on, measured with autograd
    on a small WaveNet with these layer dilations (every weight drawn from N(0, 0.5^2), float64, so no
    dependency hides behind a zero weight).

    Returns rows (L + 1, W) bool: row 0 the input (the level q_{s-1} sits at input position s), row l the output
    of layer l's residual stream (the last layer's: its skip output, the only path it has to the prediction);
    `receptive_field` (the formula), `span` (how far back the oldest input the last prediction reads lies, by
    autograd: always the formula's R) and `measured` (how many inputs it reads: R too when the dilations tile the
    past, fewer when they leave holes, e.g. 8 of 14 for dilations 1, 3, 9)."""
    r = receptive_field(dilations, kernel_size)
    width = width or r + 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = WaveNet(WaveNetConfig(residual=2, gate=2, skip=2, stacks=1, dilations=tuple(dilations),
                                      kernel_size=kernel_size, n_classes=0, crop=width)).double()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.5)
    h = torch.randn(1, 2, width, dtype=torch.float64, requires_grad=True)
    states, skips, x = [h], 0, h
    for i, block in enumerate(model.blocks):
        x, skip = block(x, None)  # (1, 2, W) each
        skips = skips + skip
        if i < len(model.blocks) - 1:
            states.append(x)
    # the last layer's residual output is x itself (no residual convolution): its own state is its skip input
    states.append(skip)
    for s in states:
        s.retain_grad()
    # the head is a per-position map of the skip sum (ReLU, 1x1, ReLU, 1x1): the skip sum at the last position is
    # what the prediction reads (a random projection of it, so that no dependency cancels)
    (skips[0, :, -1] * torch.tensor([0.7, -1.3], dtype=torch.float64)).sum().backward()
    rows = np.stack([(s.grad[0].abs().sum(0) > 0).numpy() for s in states])  # (L + 1, W)
    read = np.nonzero(rows[0])[0]
    return {"rows": rows, "receptive_field": r, "span": int(width - read[0]) if len(read) else 0,
            "measured": int(len(read)), "dilations": tuple(dilations),
            "kernel_size": kernel_size, "milliseconds": 1000 * r / fsdd.RATE}


# --- teacher forcing on a clip ---------------------------------------------------------------------------
@torch.no_grad()
def clip_predictions(model: WaveNet, q: torch.Tensor, digit: int, *, baselines: bool = True) -> dict:
    """One clip q (T,) levels with its digit: p(q_t = . | q_<t) (T, 256) float32, the surprisal -log2 p of each
    true sample (T,), the clip's bits per sample, and (unless `baselines` is False: fitting them reads every
    training clip once) the count baselines' bits per sample on the same clip."""
    was_training = model.training
    model.eval()
    probs = model.conditionals(q, digit)  # (T, 256)
    model.train(was_training)
    surprisal = -torch.log2(probs.double()[torch.arange(len(q)), q.long()].clamp_min(1e-300))  # (T,)
    return {"probs": probs.numpy(), "surprisal": surprisal.float().numpy(), "bits": float(surprisal.mean()),
            "baselines": fsdd.baseline_bits([q.long()]) if baselines else {}, "samples": len(q)}


# --- generation: naive against fast ------------------------------------------------------------------------
def uniforms(seed: int, samples: int) -> torch.Tensor:
    """The seeded uniforms (1, samples) float64 that both samplers draw one clip from (inverse-CDF sampling)."""
    return torch.rand(1, samples, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@torch.no_grad()
def generate_timed(model: WaveNet, digit: int, u: torch.Tensor, *, naive: bool = False) -> tuple[torch.Tensor, float]:
    """One clip of `digit` from the uniforms u (1, T): levels (T,) int64 and the sampler's wall time in seconds
    (on this thread's torch settings). naive: a forward pass over the last R inputs per sample; else the queues.
    The model must be in eval mode (the bundled one always is)."""
    digits = torch.tensor([digit])
    start = time.perf_counter()
    levels = (model.generate_naive if naive else model.generate_fast)(digits, u)[0].cpu()  # (T,)
    return levels, time.perf_counter() - start


def timed_generation(model: WaveNet, digit: int, seed: int, *, fast_samples: int, naive_samples: int) -> dict:
    """A clip of `fast_samples` by the fast sampler and its first `naive_samples` by the naive one, from the same
    seeded uniforms, each timed; `identical`: the naive levels equal the fast ones over the naive length."""
    u = uniforms(seed, fast_samples)
    fast, fast_s = generate_timed(model, digit, u)
    naive, naive_s = generate_timed(model, digit, u[:, :naive_samples], naive=True)
    return {"fast": fast, "naive": naive, "fast_s": fast_s, "naive_s": naive_s,
            "identical": bool(torch.equal(naive, fast[:naive_samples]))}


# --- spectrogram -----------------------------------------------------------------------------------------
def spectrogram(audio: np.ndarray | torch.Tensor, *, rate: int = fsdd.RATE, frame: int = 256,
                hop: int = 64) -> dict:
    """Power spectrogram in dB (F, N) of a waveform (T,) with a Hann window of `frame` samples every `hop`
    (a clip shorter than a frame is padded with zeros); freqs (F,) in Hz, times (N,) in seconds (frame centres).
    dB relative to the loudest cell, floored at -80."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    n = 1 + (len(x) - frame) // hop
    frames = np.stack([x[i * hop:i * hop + frame] for i in range(n)]) * np.hanning(frame)  # (N, frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (N, F)
    db = 10 * np.log10(power + 1e-12)
    db = np.maximum(db - db.max(), -80.0).T  # (F, N)
    return {"db": db.astype(np.float32), "freqs": np.fft.rfftfreq(frame, 1 / rate),
            "times": (np.arange(n) * hop + frame / 2) / rate}


def milliseconds(samples: int) -> float:
    return 1000 * samples / fsdd.RATE



# --- the judge: a spoken-digit classifier on generated and vocoded clips ---------------------------------------
JUDGE_SECONDS = 0.6  # length of each digit-conditioned generated clip that the classifier judges


@torch.no_grad()
def recognised_generated(model: WaveNet, classifier, *, per_digit: int = 2, seconds: float = JUDGE_SECONDS,
                         seed: int = 0) -> dict:
    """How many digit-conditioned clips the classifier recognises: `per_digit` clips of every digit (seeded:
    uniforms from seed), `seconds` long, by the fast sampler in one batch; the classifier (engine.models.
    fsdd_classifier) judges each clip as a whole (cut or padded to its 1 s like a real clip)."""
    digits = torch.arange(10).repeat_interleave(per_digit)
    length = int(seconds * fsdd.RATE)
    u = torch.rand(len(digits), length, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    start = time.perf_counter()
    levels = model.eval().generate_fast(digits, u).cpu()
    elapsed = time.perf_counter() - start
    predicted = classifier.predict(list(levels))
    return {"recognised": int((predicted == digits).sum()), "clips": len(digits), "per_digit": per_digit,
            "seconds_each": seconds, "seed": seed, "digits": digits.tolist(), "predicted": predicted.tolist(),
            "sampler": "fast (queues)", "generation_s": round(elapsed, 1)}


def vocoder_mels(vocoder: WaveNet, qs: list[torch.Tensor]) -> torch.Tensor:
    """The log-mel spectrograms of clips qs (each (T_i,) levels) for one batch (N, M, F_max): each clip's own
    frames, then the frames of silence (the log floor) up to the longest clip's."""
    mels = [vocoder.mel_of(q[None].long())[0].cpu() for q in qs]
    frames = max(m.shape[-1] for m in mels)
    return torch.stack([F.pad(m, (0, frames - m.shape[-1]), value=float(np.log(fsdd.LOG_FLOOR))) for m in mels])


@torch.no_grad()
def vocode(vocoder: WaveNet, qs: list[torch.Tensor], *, seed: int = 0) -> tuple[list[torch.Tensor], float]:
    """Render the clips qs (levels (T_i,)) from their mel-spectrograms alone by the fast sampler, all in one batch
    (seeded uniforms): the vocoded levels (each (T_i,)) and the wall time in seconds."""
    longest = max(len(q) for q in qs)
    u = torch.rand(len(qs), longest, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    mel = vocoder_mels(vocoder, qs)
    start = time.perf_counter()
    out = vocoder.eval().generate_fast(torch.zeros(len(qs), dtype=torch.long), u, mel=mel).cpu()
    return [out[i, :len(q)] for i, q in enumerate(qs)], time.perf_counter() - start


@torch.no_grad()
def recognised_vocoded(vocoder: WaveNet, classifier, *, per_digit: int = 2, seed: int = 0) -> dict:
    """How many vocoded test clips the classifier recognises, beside how many of the same real clips it
    recognises: `per_digit` test clips of every digit (takes 0, 1, ... of the speakers in turn), each rendered
    from its own log-mel spectrogram by the fast sampler."""
    chosen = []
    for d in range(10):
        for i in range(per_digit):
            chosen.append((d, fsdd.SPEAKERS[(d + i) % len(fsdd.SPEAKERS)], i % 5))
    clips = {(c.digit, c.speaker, c.take): c for c in fsdd.clips("test")}
    qs = [fsdd.mu_law_encode(fsdd.peak_normalize(clips[k].audio)) for k in chosen]
    vocoded, elapsed = vocode(vocoder, qs, seed=seed)
    digits = torch.tensor([k[0] for k in chosen])
    predicted, real = classifier.predict(vocoded), classifier.predict(qs)
    return {"recognised": int((predicted == digits).sum()), "real_recognised": int((real == digits).sum()),
            "clips": len(chosen), "names": [f"{d}_{s}_{t}" for d, s, t in chosen], "predicted": predicted.tolist(),
            "seconds_of_audio": round(sum(len(q) for q in qs) / fsdd.RATE, 2), "generation_s": round(elapsed, 1),
            "seed": seed, "sampler": "fast (queues), one batch"}
