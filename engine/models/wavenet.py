"""WaveNet on the Free Spoken Digit Dataset: a 256-way softmax over mu-law levels, conditioned on the digit,
with teacher-forced likelihoods, naive generation and exact queue-based fast generation.

References:
- van den Oord, Dieleman, Zen, Simonyan, Vinyals, Graves, Kalchbrenner, Senior & Kavukcuoglu (2016), "WaveNet:
  A Generative Model for Raw Audio", arXiv:1609.03499 (dilated causal convolutions in stacks of dilations 1, 2,
  ..., 512; gated activation units; residual and skip connections; mu-law to 256 levels and a softmax; global
  conditioning on a label added inside every gate).
- Paine, Khorrami, Chang, Zhang, Ramachandran, Hasegawa-Johnson & Huang (2016), "Fast Wavenet Generation
  Algorithm", arXiv:1611.09482 (per-layer queues of past activations: O(layers) work per sample instead of a
  pass over the whole receptive field).

Shapes and units: levels q (B, T) int64 in 0..255 (engine.data.fsdd.mu_law_encode of 8 kHz audio); digits (B,)
int64; a training batch is (B, 1 + T) rows [digit, q_0, ..., q_{T-1}] (fsdd.labelled). The network reads the
input sequence [silence, q_0, ..., q_{T-2}] (each level embedded, i.e. one-hot times a matrix) and its output
at t is p(q_t | q_<t, digit): the prediction of q_t reads q_{t-R}, ..., q_{t-1} with R = receptive_field()
(levels before the clip's start are silence for q_{-1} and zero activations before that). Likelihoods are in
nats per clip or bits per sample.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import fsdd
from engine.models.base import Model
from engine.nn.wavenet import GatedResidualBlock
from engine.registry import register

LEVELS = fsdd.LEVELS  # 256 mu-law levels
START = fsdd.SILENCE  # the input before the first sample: level 128, silence


@dataclass(frozen=True)
class WaveNetConfig:
    residual: int = 32  # residual channels
    gate: int = 32  # channels of each of the tanh and sigmoid halves
    skip: int = 64  # skip channels (and the output head's hidden width)
    stacks: int = 2  # repetitions of the dilation pattern
    layers: int = 10  # layers per stack, dilations 1, 2, 4, ..., 2^(layers - 1) (1..512, the paper's) unless `dilations`
    dilations: tuple[int, ...] = ()  # one stack's dilations (overrides `layers`)
    kernel_size: int = 2
    n_classes: int = 10  # global conditioning on the digit; 0: unconditional
    crop: int = 2000  # training crop length in samples (250 ms at 8 kHz)
    sample_len: int = 8000  # default length of sample() (1 s)
    seed: int = 0  # initial weights

    def __post_init__(self) -> None:
        object.__setattr__(self, "dilations", tuple(self.dilations))  # JSON gives a list
        for name in ("residual", "gate", "skip", "stacks", "layers", "crop", "sample_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"wavenet: {name} must be positive, got {getattr(self, name)}")
        if self.kernel_size < 2 or self.n_classes < 0 or self.seed < 0 or any(d < 1 for d in self.dilations):
            raise ValueError(f"wavenet: kernel_size >= 2, n_classes >= 0, seed >= 0 and dilations >= 1 needed: {self}")

    def layer_dilations(self) -> tuple[int, ...]:
        """The dilation of every layer, stack after stack."""
        one_stack = self.dilations or tuple(2 ** i for i in range(self.layers))
        return one_stack * self.stacks


PRESETS = {
    "tiny": {"config": {"residual": 8, "gate": 8, "skip": 16, "stacks": 1, "layers": 4, "crop": 64, "sample_len": 40},
             "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "max_steps": 20}},
    # 2 stacks of dilations 1..512 (the paper's pattern), receptive field 2047 samples (256 ms), 187k parameters.
    # 8 epochs = 2,696 steps of 8 crops x 2000 samples (43M samples): about 31 min at the 0.69 s of CPU per step
    # measured for this size on one thread (only the rate was measured here, not the bits/sample it reaches).
    "bundled": {"config": {}, "train": {"epochs": 8, "batch_size": 8, "lr": 2e-3}},
}


def draw(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: logits (B, 256), uniforms u (B,) in [0, 1) -> levels (B,) int64, the first level
    whose cumulative probability exceeds u (so the same uniforms give the same samples)."""
    cdf = torch.softmax(logits.double(), dim=-1).cumsum(-1)  # (B, 256)
    return torch.searchsorted(cdf, u.double()[:, None].contiguous(), right=True)[:, 0].clamp(max=LEVELS - 1)


@register("wavenet", WaveNetConfig)
class WaveNet(Model):
    """Stacks of gated residual blocks over embedded mu-law levels, a ReLU-1x1-ReLU-1x1 head to 256 logits."""

    presets = PRESETS
    dataset = "fsdd-mulaw"

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__(config)
        c = config
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the global RNG
            torch.manual_seed(c.seed)
            self.embed = nn.Embedding(LEVELS, c.residual)  # the input level, one-hot times a matrix
            dilations = c.layer_dilations()
            self.blocks = nn.ModuleList(
                GatedResidualBlock(residual=c.residual, gate=c.gate, skip=c.skip, dilation=d, kernel_size=c.kernel_size,
                                   n_classes=c.n_classes, to_residual=i < len(dilations) - 1)
                for i, d in enumerate(dilations))
            self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(c.skip, c.skip, 1), nn.ReLU(), nn.Conv1d(c.skip, LEVELS, 1))

    def receptive_field(self) -> int:
        """R: the prediction of q_t reads the R levels q_{t-R}, ..., q_{t-1} (1 + the layers' (k - 1) d)."""
        return 1 + sum(block.history for block in self.blocks)

    # --- teacher forcing ----------------------------------------------------------------------------------
    def conditions(self, digits: torch.Tensor | None) -> list[torch.Tensor | None]:
        """Each block's gate bias from the digit (B,) -> list of (B, 2G) (None when unconditional)."""
        return [block.bias_of(digits) for block in self.blocks]

    def network(self, h: torch.Tensor, conditions: list, *, last_only: bool = False) -> torch.Tensor:
        """Embedded inputs h (B, R, T) -> logits (B, 256, T) (or (B, 256, 1) for the last position only)."""
        skips = 0
        for block, condition in zip(self.blocks, conditions):
            h, skip = block(h, condition)
            skips = skips + (skip[:, :, -1:] if last_only else skip)  # (B, S, T)
        return self.head(skips)

    def inputs(self, q: torch.Tensor) -> torch.Tensor:
        """Levels (B, T) -> the network's input levels (B, T): [silence, q_0, ..., q_{T-2}]."""
        return torch.cat([torch.full_like(q[:, :1], START), q[:, :-1]], dim=1)

    def logits(self, q: torch.Tensor, digits: torch.Tensor | None) -> torch.Tensor:
        """Teacher-forced logits (B, 256, T): column t is log p(q_t = . | q_<t, digit) up to a constant."""
        h = self.embed(self.inputs(q).to(self.device)).transpose(1, 2)  # (B, R, T)
        return self.network(h, self.conditions(None if digits is None else digits.to(self.device)))

    def log_prob(self, batch: torch.Tensor) -> torch.Tensor:
        """Rows (B, 1 + T) [digit, q_0..q_{T-1}] -> log p(q | digit) (B,) in nats, summed over the T samples."""
        digits, q = batch[:, 0].long(), batch[:, 1:].long().to(self.device)
        return -F.cross_entropy(self.logits(q, digits), q, reduction="none").sum(1)

    @torch.no_grad()
    def conditionals(self, q: torch.Tensor, digit: int) -> torch.Tensor:
        """p(q_t = level | q_<t, digit) for one clip q (T,): (T, 256) probabilities (rows sum to 1)."""
        logits = self.logits(q[None].long(), torch.tensor([digit]))[0]  # (256, T)
        return torch.softmax(logits.double(), dim=0).T.float()

    @torch.no_grad()
    def bits_per_sample(self, q: torch.Tensor, digit: int) -> float:
        """Teacher-forced bits per sample of one clip q (T,), from its first sample (silence before it)."""
        return -self.log_prob(fsdd.labelled(torch.tensor([digit]), q[None].long())).item() / (len(q) * math.log(2))

    # --- generation --------------------------------------------------------------------------------------
    def _uniforms(self, n: int, length: int, generator: torch.Generator | None) -> torch.Tensor:
        device = generator.device if generator is not None else torch.device("cpu")
        return torch.rand(n, length, generator=generator, device=device, dtype=torch.float64).cpu()

    @torch.no_grad()
    def generate_naive(self, digits: torch.Tensor, uniforms: torch.Tensor, *, window: bool = True,
                       return_logits: bool = False):
        """Levels (B, T) drawn one at a time, each from a full forward pass over the signal so far: over its
        last R inputs (the receptive field: Paine et al.'s naive baseline) when `window`, else over all of it
        (the same logits: the prediction reads nothing older). digits (B,), uniforms (B, T) in [0, 1).
        With `return_logits`, also the logits (B, T, 256) each sample was drawn from."""
        n, length = uniforms.shape
        conditions, r = self.conditions(digits.to(self.device)), self.receptive_field()
        inputs = torch.full((n, length + 1), START, dtype=torch.long, device=self.device)
        all_logits = []
        for t in range(length):
            start = max(0, t + 1 - r) if window else 0
            h = self.embed(inputs[:, start:t + 1]).transpose(1, 2)  # (B, R, <= R)
            logits = self.network(h, conditions, last_only=True)[:, :, 0]  # (B, 256)
            inputs[:, t + 1] = draw(logits, uniforms[:, t]).to(self.device)
            all_logits.append(logits)
        levels = inputs[:, 1:]
        return (levels, torch.stack(all_logits, 1)) if return_logits else levels

    @torch.no_grad()
    def generate_fast(self, digits: torch.Tensor, uniforms: torch.Tensor, *, return_logits: bool = False):
        """The same samples as `generate_naive` (same uniforms), one step per layer per sample: every block
        keeps a queue (ring buffer) of its last (k - 1) d inputs (Paine et al. 2016); every layer's skip
        output is one matrix product over the concatenated gate activations."""
        n, length = uniforms.shape
        digits = digits.to(self.device)
        weights = [block.step_weights(digits, n) for block in self.blocks]
        skip_matrix = torch.cat([block.skip_out.weight[:, :, 0].T for block in self.blocks])  # (L G, S)
        skip_bias = sum(block.skip_out.bias for block in self.blocks)  # (S,)
        queues = [torch.zeros(b.history, n, self.config.residual, dtype=skip_matrix.dtype, device=self.device)
                  for b in self.blocks]
        previous = torch.full((n,), START, dtype=torch.long, device=self.device)
        out, all_logits = [], []
        for t in range(length):
            h, gates = self.embed(previous), []  # (B, R)
            for block, queue, w in zip(self.blocks, queues, weights):
                h, g = block.step(h, queue, t, w)
                gates.append(g)
            skips = torch.addmm(skip_bias, torch.cat(gates, dim=1), skip_matrix)  # (B, S): every layer's skip, summed
            logits = self.head(skips[:, :, None])[:, :, 0]  # (B, 256)
            previous = draw(logits, uniforms[:, t]).to(self.device)
            out.append(previous)
            all_logits.append(logits)
        levels = torch.stack(out, 1)
        return (levels, torch.stack(all_logits, 1)) if return_logits else levels

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, digits: torch.Tensor | None = None,
               length: int | None = None, uniforms: torch.Tensor | None = None, fast: bool = True) -> torch.Tensor:
        """n clips of mu-law levels (n, length) int64 (fsdd.mu_law_decode gives the waveform), for the digits
        (n,) (default 0, 1, ..., 9, 0, ...), from explicit uniforms (n, length) or ones drawn from `generator`."""
        length = length or self.config.sample_len
        digits = torch.arange(n) % max(self.config.n_classes, 1) if digits is None else digits
        uniforms = self._uniforms(n, length, generator) if uniforms is None else uniforms
        return (self.generate_fast if fast else self.generate_naive)(digits, uniforms)

    # --- training --------------------------------------------------------------------------------------
    def loss(self, batch: torch.Tensor) -> dict:
        """Mean bits per sample of the rows (B, 1 + T): every sample of every crop, teacher-forced."""
        bits = -self.log_prob(batch).sum() / (batch[:, 1:].numel() * math.log(2))
        return {"loss": bits}

    def example_batch(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, 1 + crop) rows of random digits and levels: a training-shaped batch for tests without data."""
        digits = torch.randint(max(self.config.n_classes, 1), (n,), generator=generator)
        return fsdd.labelled(digits, torch.randint(LEVELS, (n, self.config.crop), generator=generator))

    @torch.no_grad()
    def monitor(self, rows: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Bits per sample on a fixed batch of test-split crops (monitoring only; nothing is chosen by it)."""
        was_training = self.training
        self.eval()
        bits = -self.log_prob(rows).sum().item() / (rows[:, 1:].numel() * math.log(2))
        self.train(was_training)
        return {"test_crops_bps": bits}


@torch.no_grad()
def bits_on_test_split(model: WaveNet, *, batch_size: int = 16, max_clips: int | None = None) -> dict:
    """Teacher-forced bits per sample over every sample of every test clip (the dataset's own split: takes
    0-4), each clip from its first sample with silence before it; clips batched by length, padded at the end
    (causal: padding never changes an earlier prediction) and the padding left out of the sum."""
    qs, digits = fsdd.levels("test")
    order = sorted(range(len(qs)), key=lambda i: len(qs[i]))[:max_clips]
    was_training = model.training
    model.eval()
    nats, count = 0.0, 0
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        longest = max(len(qs[j]) for j in idx)
        q = torch.stack([F.pad(qs[j], (0, longest - len(qs[j])), value=START) for j in idx]).to(model.device)
        mask = torch.stack([torch.arange(longest) < len(qs[j]) for j in idx]).to(model.device)
        nll = F.cross_entropy(model.logits(q, digits[idx]), q, reduction="none")  # (B, T) nats
        nats, count = nats + nll[mask].double().sum().item(), count + int(mask.sum())
    model.train(was_training)
    return {"bits_per_sample": nats / count / math.log(2), "samples": count, "clips": len(order)}


def evaluate(model: WaveNet) -> dict:
    """Test bits per sample of the model beside the unigram and previous-sample (bigram) count baselines,
    all on every sample of the 300 test clips."""
    result = bits_on_test_split(model)
    return {"test_bits_per_sample": {
        **result, "baselines": {k: v for k, v in fsdd.baselines().items() if k in ("unigram", "bigram")},
        "receptive_field_samples": model.receptive_field(), "split": fsdd.describe("test"),
        "estimator": "exact (teacher-forced softmax over the 256 mu-law levels)", "unit": "bits per sample"}}
