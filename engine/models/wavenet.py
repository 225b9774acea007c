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
- Shen et al. (2018), "Natural TTS Synthesis by Conditioning WaveNet on Mel Spectrogram Predictions" (a WaveNet
  vocoder on mel-spectrograms); here the paper's section 2.5 local conditioning with `mel_bins` > 0: the clip's
  log-mel spectrogram (engine.data.fsdd.log_mel of the decoded levels), a 3-frame convolution, nearest-frame
  upsampling, and a 1x1 convolution into every gate. The audio path stays causal; the mel is given whole.

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
from engine.models import fsdd_classifier  # noqa: F401  (registers the spoken-digit classifier, the judge of its samples)
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
    mel_bins: int = 0  # vocoder: local conditioning on the clip's log-mel spectrogram with this many bands (0: none)
    local: int = 64  # channels of the upsampled mel condition that every layer's 1x1 conditioning conv reads
    init_from: str = ""  # training starts from this checkpoint's weights where names and shapes match (new ones fresh)
    crop: int = 2000  # training crop length in samples (250 ms at 8 kHz)
    sample_len: int = 8000  # default length of sample() (1 s)
    seed: int = 0  # initial weights

    def __post_init__(self) -> None:
        object.__setattr__(self, "dilations", tuple(self.dilations))  # JSON gives a list
        for name in ("residual", "gate", "skip", "stacks", "layers", "crop", "sample_len", "local"):
            if getattr(self, name) < 1:
                raise ValueError(f"wavenet: {name} must be positive, got {getattr(self, name)}")
        if self.mel_bins not in (0, fsdd.N_MELS):
            raise ValueError(f"wavenet: mel_bins is 0 (no local conditioning) or {fsdd.N_MELS}, got {self.mel_bins}")
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
    # The vocoder: the bundled stack, no digit label, locally conditioned on the crop's own log-mel spectrogram
    # (40 bands every 8 ms); starts from wavenet-fsdd's weights (its audio path), the conditioning layers fresh.
    # Crops of 1,000 samples (125 ms): half the cost of a step; 1,800 steps about 45 min on one loaded thread.
    "vocoder": {"config": {"n_classes": 0, "mel_bins": 40, "init_from": "wavenet-fsdd", "crop": 1000},
                "train": {"epochs": 6, "batch_size": 8, "lr": 1e-3, "max_steps": 1800}},
    "tiny-vocoder": {"config": {"residual": 8, "gate": 8, "skip": 16, "stacks": 1, "layers": 4, "crop": 256,
                                "sample_len": 40, "n_classes": 0, "mel_bins": 40, "local": 8},
                     "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "max_steps": 20}},
}
MEL_SHIFT, MEL_SCALE = 5.0, 4.0  # the log-mel enters the conditioning net as (log-mel + 5) / 4 (about unit range)


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
                                   n_classes=c.n_classes, to_residual=i < len(dilations) - 1,
                                   local=c.local if c.mel_bins else 0)
                for i, d in enumerate(dilations))
            # vocoder: mel frames (B, M, F) -> a 3-frame convolution (non-causal: the whole clip's mel is given)
            self.mel_net = nn.Conv1d(c.mel_bins, c.local, 3, padding=1) if c.mel_bins else None
            self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(c.skip, c.skip, 1), nn.ReLU(), nn.Conv1d(c.skip, LEVELS, 1))

    def receptive_field(self) -> int:
        """R: the prediction of q_t reads the R levels q_{t-R}, ..., q_{t-1} (1 + the layers' (k - 1) d)."""
        return 1 + sum(block.history for block in self.blocks)

    # --- local conditioning (vocoder) -----------------------------------------------------------------------
    @property
    def vocoder(self) -> bool:
        return self.mel_net is not None

    def mel_of(self, q: torch.Tensor) -> torch.Tensor:
        """The log-mel spectrogram (B, M, 1 + T // hop) of clips given as levels (B, T): of their decoded waveform."""
        return fsdd.log_mel(fsdd.mu_law_decode(q.cpu())).to(self.device)

    def local_input(self, mel: torch.Tensor, length: int) -> torch.Tensor:
        """Mel frames (B, M, F) -> the local condition at the sample rate (B, C, length): tanh of a 3-frame
        convolution, each sample given its nearest frame (fsdd.frame_of_sample)."""
        h = torch.tanh(self.mel_net((mel.to(self.device, self.mel_net.weight.dtype) + MEL_SHIFT) / MEL_SCALE))  # (B, C, F)
        return h[:, :, fsdd.frame_of_sample(length, mel.shape[-1]).to(self.device)]

    def _locals(self, q: torch.Tensor, mel: torch.Tensor | None, local: torch.Tensor | None) -> list:
        """Every block's local term (B, 2G, T) for levels q (B, T): from `local` (B, C, T) if given, else from
        `mel`, else from q's own mel (teacher forcing on a real clip); [None, ...] without local conditioning."""
        if not self.vocoder:
            return [None] * len(self.blocks)
        if local is None:
            local = self.local_input(self.mel_of(q) if mel is None else mel, q.shape[1])
        return [block.local_of(local) for block in self.blocks]

    # --- teacher forcing ----------------------------------------------------------------------------------
    def conditions(self, digits: torch.Tensor | None) -> list[torch.Tensor | None]:
        """Each block's gate bias from the digit (B,) -> list of (B, 2G) (None when unconditional)."""
        return [block.bias_of(digits) for block in self.blocks]

    def network(self, h: torch.Tensor, conditions: list, *, last_only: bool = False, locals_: list | None = None
                ) -> torch.Tensor:
        """Embedded inputs h (B, R, T) -> logits (B, 256, T) (or (B, 256, 1) for the last position only); locals_:
        every block's local term (B, 2G, T) or None."""
        skips = 0
        for block, condition, local in zip(self.blocks, conditions, locals_ or [None] * len(self.blocks)):
            h, skip = block(h, condition, local)
            skips = skips + (skip[:, :, -1:] if last_only else skip)  # (B, S, T)
        return self.head(skips)

    def inputs(self, q: torch.Tensor) -> torch.Tensor:
        """Levels (B, T) -> the network's input levels (B, T): [silence, q_0, ..., q_{T-2}]."""
        return torch.cat([torch.full_like(q[:, :1], START), q[:, :-1]], dim=1)

    def logits(self, q: torch.Tensor, digits: torch.Tensor | None, *, mel: torch.Tensor | None = None,
               local: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, 256, T): column t is log p(q_t = . | q_<t, digit[, mel]) up to a constant. A
        vocoder is conditioned on `mel` (B, M, F) or the upsampled `local` (B, C, T); by default on q's own mel."""
        h = self.embed(self.inputs(q).to(self.device)).transpose(1, 2)  # (B, R, T)
        return self.network(h, self.conditions(None if digits is None else digits.to(self.device)),
                            locals_=self._locals(q, mel, local))

    def log_prob(self, batch: torch.Tensor) -> torch.Tensor:
        """Rows (B, 1 + T) [digit, q_0..q_{T-1}] -> log p(q | digit) (B,) in nats, summed over the T samples."""
        digits, q = batch[:, 0].long(), batch[:, 1:].long().to(self.device)
        return -F.cross_entropy(self.logits(q, digits), q, reduction="none").sum(1)

    @torch.no_grad()
    def conditionals(self, q: torch.Tensor, digit: int) -> torch.Tensor:
        """p(q_t = level | q_<t, digit) for one clip q (T,): (T, 256) probabilities (rows sum to 1) (a vocoder:
        also given the clip's own mel)."""
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
                       return_logits: bool = False, mel: torch.Tensor | None = None):
        """Levels (B, T) drawn one at a time, each from a full forward pass over the signal so far: over its
        last R inputs (the receptive field: Paine et al.'s naive baseline) when `window`, else over all of it
        (the same logits: the prediction reads nothing older). digits (B,), uniforms (B, T) in [0, 1).
        With `return_logits`, also the logits (B, T, 256) each sample was drawn from. A vocoder needs `mel`
        (B, M, F): the spectrogram to render, F >= 1 + T // hop frames read (nearest frame per sample)."""
        n, length = uniforms.shape
        conditions, r = self.conditions(digits.to(self.device)), self.receptive_field()
        local = self._generation_local(mel, n, length)
        locals_ = None if local is None else [block.local_of(local) for block in self.blocks]
        inputs = torch.full((n, length + 1), START, dtype=torch.long, device=self.device)
        all_logits = []
        for t in range(length):
            start = max(0, t + 1 - r) if window else 0
            h = self.embed(inputs[:, start:t + 1]).transpose(1, 2)  # (B, R, <= R)
            window_locals = None if locals_ is None else [lo[:, :, start:t + 1] for lo in locals_]
            logits = self.network(h, conditions, last_only=True, locals_=window_locals)[:, :, 0]  # (B, 256)
            inputs[:, t + 1] = draw(logits, uniforms[:, t]).to(self.device)
            all_logits.append(logits)
        levels = inputs[:, 1:]
        return (levels, torch.stack(all_logits, 1)) if return_logits else levels

    @torch.no_grad()
    def generate_fast(self, digits: torch.Tensor, uniforms: torch.Tensor, *, return_logits: bool = False,
                      mel: torch.Tensor | None = None):
        """The same samples as `generate_naive` (same uniforms, same `mel`), one step per layer per sample: every
        block keeps a queue (ring buffer) of its last (k - 1) d inputs (Paine et al. 2016); every layer's skip
        output is one matrix product over the concatenated gate activations, and a vocoder's local terms of
        every layer at t are one matrix product over the upsampled condition at t."""
        n, length = uniforms.shape
        local = self._generation_local(mel, n, length)  # (B, C, T) or None
        if local is not None:
            local_matrix = torch.cat([b.local.weight[:, :, 0].T for b in self.blocks], dim=1)  # (C, L 2G)
            local_bias = torch.cat([b.local.bias for b in self.blocks])  # (L 2G,)
            width = 2 * self.config.gate
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
            local_t = None if local is None else torch.addmm(local_bias, local[:, :, t], local_matrix)  # (B, L 2G)
            for i, (block, queue, w) in enumerate(zip(self.blocks, queues, weights)):
                h, g = block.step(h, queue, t, w, None if local is None else local_t[:, i * width:(i + 1) * width])
                gates.append(g)
            skips = torch.addmm(skip_bias, torch.cat(gates, dim=1), skip_matrix)  # (B, S): every layer's skip, summed
            logits = self.head(skips[:, :, None])[:, :, 0]  # (B, 256)
            previous = draw(logits, uniforms[:, t]).to(self.device)
            out.append(previous)
            all_logits.append(logits)
        levels = torch.stack(out, 1)
        return (levels, torch.stack(all_logits, 1)) if return_logits else levels

    def _generation_local(self, mel: torch.Tensor | None, n: int, length: int) -> torch.Tensor | None:
        """A vocoder's upsampled condition (B, C, length) from mel (B, M, F); None for a model without one."""
        if not self.vocoder:
            return None
        if mel is None or mel.shape[0] != n or mel.shape[1] != self.config.mel_bins:
            raise ValueError(f"this WaveNet is a vocoder: it needs mel (n={n}, {self.config.mel_bins}, frames), got "
                             f"{None if mel is None else tuple(mel.shape)}")
        return self.local_input(mel, length)

    def init_from_checkpoint(self, other: "WaveNet") -> list[str]:
        """Copy every parameter of `other` whose name and shape match (the audio path of a trained WaveNet into a
        new vocoder); returns the names copied. The rest keep their fresh initialisation."""
        mine, theirs = self.state_dict(), other.state_dict()
        copied = [k for k, v in theirs.items() if k in mine and mine[k].shape == v.shape]
        self.load_state_dict({**mine, **{k: theirs[k] for k in copied}})
        return copied

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, digits: torch.Tensor | None = None,
               length: int | None = None, uniforms: torch.Tensor | None = None, fast: bool = True) -> torch.Tensor:
        """n clips of mu-law levels (n, length) int64 (fsdd.mu_law_decode gives the waveform), for the digits
        (n,) (default 0, 1, ..., 9, 0, ...), from explicit uniforms (n, length) or ones drawn from `generator`."""
        length = length or self.config.sample_len
        digits = torch.arange(n) % max(self.config.n_classes, 1) if digits is None else digits
        uniforms = self._uniforms(n, length, generator) if uniforms is None else uniforms
        mel = None
        if self.vocoder:  # no clip to render: the mel of silence (the contract's sample(); the page passes real mels)
            mel = self.mel_of(torch.full((n, length), START, dtype=torch.long))
        return (self.generate_fast if fast else self.generate_naive)(digits, uniforms, mel=mel)

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
        local = None
        if model.vocoder:  # each clip's own mel, upsampled over its own length (as clip by clip), zeros after it
            local = torch.stack([F.pad(model.local_input(model.mel_of(qs[j][None]), len(qs[j]))[0],
                                       (0, longest - len(qs[j]))) for j in idx])
        nll = F.cross_entropy(model.logits(q, digits[idx], local=local), q, reduction="none")  # (B, T) nats
        nats, count = nats + nll[mask].double().sum().item(), count + int(mask.sum())
    model.train(was_training)
    return {"bits_per_sample": nats / count / math.log(2), "samples": count, "clips": len(order)}


def evaluate(model: WaveNet) -> dict:
    """Test bits per sample of the model beside the unigram and previous-sample (bigram) count baselines,
    all on every sample of the 300 test clips; and, when the spoken-digit classifier `fsdd-classifier` is bundled,
    how many of the model's clips it recognises (`judge`): 2 digit-conditioned clips of 0.6 s per digit, or for a
    vocoder 2 test clips per digit rendered from their mel-spectrograms (engine.wavenet_analysis)."""
    result = bits_on_test_split(model)
    return {**judge(model), "test_bits_per_sample": {
        **result, "baselines": {k: v for k, v in fsdd.baselines().items() if k in ("unigram", "bigram")},
        "receptive_field_samples": model.receptive_field(), "split": fsdd.describe("test"),
        "estimator": "exact (teacher-forced softmax over the 256 mu-law levels)", "unit": "bits per sample"}}


def judge(model: WaveNet) -> dict:
    """{"judge": the bundled classifier's test accuracy and how many of this model's clips it recognises}, or {}
    when `fsdd-classifier` is not bundled."""
    from engine import api, wavenet_analysis  # late: both import this module

    if "fsdd-classifier" not in api.bundled():
        return {}
    classifier = api.load("fsdd-classifier")
    accuracy = fsdd_classifier.accuracy_on_test_split(classifier)
    measured = (wavenet_analysis.recognised_vocoded if model.vocoder else wavenet_analysis.recognised_generated)(
        model, classifier)
    return {"judge": {"classifier": "fsdd-classifier", "classifier_test_accuracy": accuracy["accuracy"],
                      "classifier_test_clips": accuracy["clips"], "what": "vocoded test clips" if model.vocoder
                      else "digit-conditioned generated clips", **measured}}
