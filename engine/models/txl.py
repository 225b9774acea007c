"""Word-level Transformer-XL and the vanilla Transformer LM it is compared with.

References:
- Dai, Yang, Yang, Carbonell, Le & Salakhutdinov (2019), "Transformer-XL: Attentive Language Models Beyond
  a Fixed-Length Context": segment-level recurrence (each layer attends over [SG(memory) ; segment], the
  memory being the previous segments' hidden states of the layer below, cached without gradient), relative
  positional encodings with biases u, v, and evaluation that reuses the states instead of recomputing.
- Al-Rfou et al. (2019), "Character-Level Language Modeling with Deeper Self-Attention": the vanilla model,
  trained on fixed segments with absolute positions and no information flow between segments.
- Baevski & Auli (2019) adaptive inputs and Grave et al. (2017) adaptive softmax (engine/nn/adaptive.py).

Shapes: tokens (B, T) int64; hidden (B, T, d_model); memory: one (B, M, d_model) tensor per layer (the
inputs of that layer for the last M positions). Log-likelihoods are in nats per token.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.models.base import Model
from engine.nn.adaptive import AdaptiveEmbedding
from engine.nn.attention import Attention, sinusoid
from engine.optim import scheduled_adam, scheduled_step
from engine.registry import register

Memory = list[torch.Tensor]


@dataclass(frozen=True)
class TXLConfig:
    n_tokens: int = 33278  # WikiText-2's train vocabulary
    d_model: int = 256
    n_layer: int = 4
    n_head: int = 4
    d_head: int = 64
    d_inner: int = 768
    tgt_len: int = 64  # training segment length L
    mem_len: int = 64  # training memory length M (0 for the vanilla model)
    dropout: float = 0.1
    dropatt: float = 0.0
    cutoffs: tuple[int, ...] = (2000, 10000)  # frequency clusters of the adaptive input and softmax
    div_value: float = 4.0
    sample_len: int = 32  # tokens drawn by sample()

    def __post_init__(self) -> None:
        for name in ("n_tokens", "d_model", "n_layer", "n_head", "d_head", "d_inner", "tgt_len", "sample_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.mem_len < 0 or not all(0 < c < self.n_tokens for c in self.cutoffs):
            raise ValueError("mem_len must be >= 0 and the cutoffs inside the vocabulary")
        object.__setattr__(self, "cutoffs", tuple(self.cutoffs))  # JSON gives a list


@dataclass(frozen=True)
class VanillaConfig(TXLConfig):
    mem_len: int = 0


class Block(nn.Module):
    """Pre-norm Transformer layer: h + Attn(LN([mem ; h])), then + FFN(LN(h))."""

    def __init__(self, c: TXLConfig, relative: bool) -> None:
        super().__init__()
        self.norm_attn, self.norm_ffn = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.attn = Attention(c.d_model, c.n_head, c.d_head, c.dropatt, relative=relative)
        self.ffn = nn.Sequential(nn.Linear(c.d_model, c.d_inner), nn.ReLU(), nn.Dropout(c.dropout),
                                 nn.Linear(c.d_inner, c.d_model))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, h, memory, pos, keep_attention=False):
        context = self.norm_attn(h if memory is None else torch.cat([memory, h], dim=1))
        a, probs = self.attn(h, context, pos, keep_attention=keep_attention)
        h = h + self.drop(a)
        return h + self.drop(self.ffn(self.norm_ffn(h))), probs


@register("transformer-xl", TXLConfig)
class TransformerXL(Model):
    """Transformer-XL language model: `run(tokens, memory)` processes one segment with memory."""

    dataset = "wikitext-2"
    relative = True  # relative positions + recurrence; the vanilla subclass turns both off
    presets = {
        "tiny": {"config": {"n_tokens": 64, "d_model": 16, "n_layer": 2, "n_head": 2, "d_head": 8, "d_inner": 32,
                            "tgt_len": 8, "mem_len": 8, "cutoffs": (16, 32), "sample_len": 12},
                 "train": {"epochs": 1, "batch_size": 4}},
        "bundled": {"config": {}, "train": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "warmup": 300}},
    }

    def __init__(self, config: TXLConfig) -> None:
        super().__init__(config)
        c = config
        self.embed = AdaptiveEmbedding(c.n_tokens, c.d_model, c.cutoffs, c.div_value)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c, self.relative) for _ in range(c.n_layer))
        self.norm = nn.LayerNorm(c.d_model)
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(c.d_model, c.n_tokens, list(c.cutoffs), div_value=c.div_value)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
        self._train_memory: Memory | None = None  # carried from one training segment to the next

    # --- one segment --------------------------------------------------------------------------------
    def run(self, tokens: torch.Tensor, memory: Memory | None = None, *, mem_len: int | None = None,
            keep_attention: bool = False) -> tuple[torch.Tensor, Memory, list[torch.Tensor]]:
        """tokens (B, L) after `memory` -> (hidden (B, L, d) before the softmax, the new memory of at most
        `mem_len` positions per layer (default config.mem_len), the attention maps (B, H, L, M + L) per
        layer if `keep_attention`). The new memory is detached: no gradient ever flows into old segments."""
        mem_len = self.config.mem_len if mem_len is None else mem_len
        B, L = tokens.shape
        h = self.embed(tokens) * self.config.d_model ** 0.5
        m = 0 if not memory else memory[0].shape[1]
        if self.relative:
            pos = self.drop(sinusoid(torch.arange(m + L - 1, -1, -1, device=tokens.device), self.config.d_model))
        else:  # absolute positions inside the segment
            h, pos = h + sinusoid(torch.arange(L, device=tokens.device), self.config.d_model), None
        h = self.drop(h)
        inputs, maps = [], []
        for i, block in enumerate(self.blocks):
            inputs.append(h)
            h, probs = block(h, memory[i] if memory else None, pos, keep_attention)
            maps.append(probs)
        return self.drop(self.norm(h)), self._update(memory, inputs, mem_len), maps if keep_attention else []

    def _update(self, memory: Memory | None, inputs: list[torch.Tensor], mem_len: int) -> Memory:
        """The next memory: per layer, the last `mem_len` of [old memory ; this segment's layer inputs]."""
        if not self.relative or mem_len == 0:
            return []
        with torch.no_grad():
            return [(x if not memory else torch.cat([old, x], dim=1))[:, -mem_len:].detach()
                    for old, x in zip(memory or [None] * len(inputs), inputs)]

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, L, V) log-probabilities of the next token."""
        return self.softmax.log_prob(hidden.reshape(-1, hidden.shape[-1])).view(*hidden.shape[:-1], -1)

    def token_nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, L, d), (B, L) -> (B, L) negative log-likelihood of each target in nats."""
        out = self.softmax(hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1))
        return -out.output.view(targets.shape)

    # --- the model contract -------------------------------------------------------------------------
    def loss(self, batch: torch.Tensor, memory: Memory | None = None) -> dict[str, torch.Tensor]:
        """batch (B, L + 1) token ids: inputs [:, :-1], targets [:, 1:]. Mean NLL in nats per token."""
        batch = batch.long()
        hidden, self._last_memory, _ = self.run(batch[:, :-1], memory)
        nll = self.token_nll(hidden, batch[:, 1:]).mean()
        return {"loss": nll, "ppl": nll.detach().exp()}

    def make_optimizers(self, lr: float = 1e-3, warmup: int = 0, total_steps: int = 0, **_) -> list:
        """Adam with linear warm-up then cosine decay to 0 at `total_steps` (none if 0), see engine.optim."""
        return [scheduled_adam(self.parameters(), lr=lr, warmup=warmup, total_steps=total_steps)]

    def train_step(self, batch, optimizers, *, generator=None) -> dict[str, float]:
        (opt,) = optimizers
        memory = self._train_memory
        if memory and memory[0].shape[0] != batch.shape[0]:
            memory = None
        opt.zero_grad(set_to_none=True)
        terms = self.loss(batch, memory)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), 0.25)  # the paper's clip
        scheduled_step(opt)
        self._train_memory = self._last_memory
        return {k: float(v.detach()) for k, v in terms.items()}

    def example_batch(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, tgt_len + 1) uniformly random token ids: a training-shaped batch for tests without a corpus."""
        return torch.randint(self.config.n_tokens, (n, self.config.tgt_len + 1), generator=generator)

    @torch.no_grad()
    def monitor(self, stream: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Validation perplexity on a (B, T) batchified held-out stream, segment by segment with memory."""
        was_training = self.training
        self.eval()
        nll = stream_nll(self, stream, self.config.tgt_len, self.config.mem_len)
        self.train(was_training)
        return {"valid_ppl": float(torch.exp(nll.mean()))}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, length: int | None = None) -> torch.Tensor:
        """(n, length) token ids drawn from the model, starting after an `<eos>` (id 0)."""
        start = torch.zeros(n, 1, dtype=torch.long, device=self.device)
        return generate(self, start, length or self.config.sample_len, generator=generator)[:, 1:]


@register("vanilla-transformer", VanillaConfig)
class VanillaTransformer(TransformerXL):
    """The same network with absolute positions and no memory: each segment is modelled on its own."""

    relative = False
    presets = {
        "tiny": {"config": {**TransformerXL.presets["tiny"]["config"], "mem_len": 0}, "train": {"epochs": 1, "batch_size": 4}},
        "bundled": {"config": {"mem_len": 0}, "train": TransformerXL.presets["bundled"]["train"]},
    }


# --- evaluation and generation ------------------------------------------------------------------------
@torch.no_grad()
def iter_stream_nll(model: TransformerXL, batched: torch.Tensor, seg_len: int, mem_len: int):
    """(B, T) batchified tokens -> yields (fraction done, (B, <= seg_len) NLL in nats) segment by segment:
    Transformer-XL with up to `mem_len` cached positions, the vanilla model with none (its context restarts
    at every segment boundary). Together the chunks cover every token after the first."""
    memory, T = None, batched.shape[1]
    for start in range(0, T - 1, seg_len):
        window = batched[:, start:start + seg_len + 1].to(model.device)
        hidden, memory, _ = model.run(window[:, :-1], memory, mem_len=mem_len)
        yield min(start + seg_len, T - 1) / (T - 1), model.token_nll(hidden, window[:, 1:]).cpu()


def stream_nll(model: TransformerXL, batched: torch.Tensor, seg_len: int, mem_len: int) -> torch.Tensor:
    """(B, T) -> (B, T - 1) NLL in nats of every token after the first (see iter_stream_nll)."""
    return torch.cat([chunk for _, chunk in iter_stream_nll(model, batched, seg_len, mem_len)], dim=1)


def _filter(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Keep the top-k tokens and the smallest set with probability >= top_p (nucleus); others -inf."""
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # tokens after the nucleus is complete
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


@torch.no_grad()
def generate(model: TransformerXL, prompt: torch.Tensor, n_new: int, *, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, mem_len: int | None = None, generator: torch.Generator | None = None,
             banned: tuple[int, ...] = ()) -> torch.Tensor:
    """prompt (B, P) -> (B, P + n_new). Transformer-XL reads the prompt segment by segment and then one token
    at a time with its memory (default: the training segment + memory length); the vanilla model recomputes
    its last `tgt_len` tokens for each new one. `banned` ids (e.g. `<unk>`) are never drawn."""
    c = model.config
    tokens = prompt.to(model.device)
    if model.relative:
        mem_len = c.tgt_len + c.mem_len if mem_len is None else mem_len
        memory = None
        for start in range(0, tokens.shape[1] - 1, c.tgt_len):  # all but the last prompt token into memory
            _, memory, _ = model.run(tokens[:, start:min(start + c.tgt_len, tokens.shape[1] - 1)], memory, mem_len=mem_len)
    for _ in range(n_new):
        if model.relative:
            hidden, memory, _ = model.run(tokens[:, -1:], memory, mem_len=mem_len)
        else:
            hidden, _, _ = model.run(tokens[:, -c.tgt_len:])
        logits = model.log_probs(hidden[:, -1:])[:, 0] / max(temperature, 1e-4)
        if banned:
            logits[:, list(banned)] = float("-inf")
        probs = _filter(logits, top_k, top_p).softmax(-1)
        nxt = torch.multinomial(probs, 1, generator=generator)
        tokens = torch.cat([tokens, nxt], dim=1)
    return tokens
