"""What the Transformer-XL page shows, computed: how far back each layer can reach, the attention of a
passage read segment by segment, average attention by distance per head (the paper's fig. 5 / the slide
"Visualization of Attention"), per-token probabilities, and perplexity against evaluation memory length.

Positions are absolute token indices in the passage; distances are query position - key position >= 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from engine.data import wikitext
from engine.models.txl import TransformerXL, iter_stream_nll, stream_nll


def context_reach(n_tokens: int, seg_len: int, mem_len: int, n_layer: int, *, recurrent: bool) -> np.ndarray:
    """(n_layer + 1, n_tokens) int: the earliest token each hidden state can depend on, layer 0 = inputs.

    A state at layer n, position p in the segment starting at S attends over layer n-1 at positions
    [S - mem_len, p] (vanilla: [S, p]), so reach[n][p] = reach[n-1][max(0, S - mem_len)]: with memory the
    reach grows by one memory length per layer (O(N x L) in the paper), without it it stops at S."""
    reach = np.zeros((n_layer + 1, n_tokens), dtype=np.int64)
    reach[0] = np.arange(n_tokens)
    starts = (np.arange(n_tokens) // seg_len) * seg_len
    first_key = np.maximum(0, starts - mem_len) if recurrent else starts
    for n in range(1, n_layer + 1):
        reach[n] = reach[n - 1][first_key]
    return reach


@dataclass
class PassageAttention:
    """Attention of a passage read in segments. maps[s]: (n_layer, H, L_s, K_s) for segment s, whose queries
    are tokens [q_start[s], q_start[s] + L_s) and keys [k_start[s], q_start[s] + L_s) (memory + segment)."""

    tokens: list[str]
    unknown: list[bool]
    maps: list[np.ndarray]
    q_start: list[int]
    k_start: list[int]

    def row(self, position: int, layer: int, head: int | None = None) -> np.ndarray:
        """(n_tokens,) attention of the token at `position` over the passage (0 beyond its keys);
        averaged over heads if `head` is None."""
        s = max(i for i, q in enumerate(self.q_start) if q <= position)
        probs = self.maps[s][layer, :, position - self.q_start[s]]  # (H, K)
        probs = probs.mean(0) if head is None else probs[head]
        out = np.zeros(len(self.tokens), dtype=np.float32)
        out[self.k_start[s]:self.k_start[s] + len(probs)] = probs
        return out


@torch.no_grad()
def read_passage(model: TransformerXL, text_tokens: list[str], *, seg_len: int, mem_len: int,
                 max_tokens: int = 2048) -> PassageAttention:
    """Run up to `max_tokens` tokens through the model, one segment of `seg_len` at a time with up to `mem_len`
    remembered positions (the vanilla model keeps none), keeping every attention map."""
    vocab = wikitext.vocab()
    text_tokens = text_tokens[:max_tokens]
    ids, unknown = vocab.encode(text_tokens)
    memory, maps, q_start, k_start = None, [], [], []
    for start in range(0, len(ids), seg_len):
        _, new_memory, probs = model.run(ids[None, start:start + seg_len].to(model.device), memory,
                                         mem_len=mem_len, keep_attention=True)
        m = 0 if not memory else memory[0].shape[1]
        maps.append(torch.stack([p[0] for p in probs]).float().cpu().numpy())  # (n_layer, H, L, m + L)
        q_start.append(start)
        k_start.append(start - m)
        memory = new_memory
    return PassageAttention(text_tokens, (unknown | (ids == vocab.unk)).tolist(), maps, q_start, k_start)


def distance_profile(att: PassageAttention, max_distance: int) -> np.ndarray:
    """(n_layer, H, max_distance + 1): the mean attention a query gives the token d positions back, for
    d = 0..max_distance, averaged over the queries that can see that far (NaN where none can)."""
    n_layer, H = att.maps[0].shape[:2]
    total = np.zeros((n_layer, H, max_distance + 1))
    count = np.zeros(max_distance + 1)
    for probs, q0, k0 in zip(att.maps, att.q_start, att.k_start):
        L, K = probs.shape[2:]
        for i in range(L):
            pos = q0 + i
            d = pos - (k0 + np.arange(K))  # distance of every key of this query
            keep = (d >= 0) & (d <= max_distance)
            total[:, :, d[keep]] += probs[:, :, i, keep]
            count[d[keep]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


@torch.no_grad()
def token_probabilities(model: TransformerXL, prompt: list[int], continuation: list[int], *,
                        mem_len: int | None = None) -> np.ndarray:
    """(len(continuation),) the model's probability of each continuation token given everything before it
    (the prompt read with memory, segment by segment, as in evaluation)."""
    c = model.config
    stream = torch.tensor(prompt + continuation)[None]
    mem = (c.tgt_len + c.mem_len if mem_len is None else mem_len) if model.relative else 0
    nll = stream_nll(model, stream, c.tgt_len, mem)[0]
    return torch.exp(-nll[len(prompt) - 1:]).numpy()


def test_stream(n_tokens: int | None, n_streams: int = 10) -> torch.Tensor:
    """The test split as (n_streams, T) parallel pieces; the first n_tokens tokens only if given."""
    ids = wikitext.ids("test")
    return wikitext.batchify(ids if n_tokens is None else ids[:n_tokens], n_streams)


def iter_context_curve(xl: TransformerXL, vanilla: TransformerXL | None, mem_lens: list[int], *,
                       n_tokens: int | None = None, n_streams: int = 10) -> Iterator[dict]:
    """Test perplexity of XL for each evaluation memory length (segments of its training length), and the
    vanilla model's on the same tokens (fixed segments, no memory). Yields {"progress"}; the last dict has
    "result": {"mem_len": [...], "xl_ppl": [...], "vanilla_ppl": float | None, "tokens": int, "split": str}."""
    stream = test_stream(n_tokens, n_streams)
    runs = [(xl, m) for m in mem_lens] + ([(vanilla, 0)] if vanilla is not None else [])
    ppl = []
    for i, (model, mem) in enumerate(runs):
        chunks = []
        for fraction, chunk in iter_stream_nll(model, stream, model.config.tgt_len, mem):
            chunks.append(chunk)
            yield {"progress": (i + fraction) / len(runs)}
        ppl.append(math.exp(torch.cat(chunks, 1).double().mean().item()))
        yield {"progress": (i + 1) / len(runs), "mem_len": mem, "ppl": ppl[-1]}
    yield {"progress": 1.0, "result": {
        "mem_len": list(mem_lens), "xl_ppl": ppl[:len(mem_lens)],
        "vanilla_ppl": ppl[-1] if vanilla is not None else None,
        "tokens": int(stream.shape[0] * (stream.shape[1] - 1)),
        "split": wikitext.describe("test") + f", {n_streams} parallel streams"}}


@torch.no_grad()
def sliding_nll(model: TransformerXL, batched: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """(B, T) -> (B, T - 1) NLL in nats with overlapping windows: each pass runs `window` tokens from scratch
    and scores only its last `stride` (the first window scores all), so every token after the first window
    is predicted with at least window - stride tokens of context. A fairer baseline for the vanilla model
    than cutting at segment boundaries, at window / stride times the cost."""
    n, out, done = batched.shape[1] - 1, [], 0  # n predictions: input position i predicts token i + 1
    end = min(window, n)
    while True:
        hidden, _, _ = model.run(batched[:, max(0, end - window):end].to(model.device))
        out.append(model.token_nll(hidden[:, done - end:], batched[:, done + 1:end + 1].to(model.device)).cpu())
        if end == n:
            return torch.cat(out, dim=1)
        done, end = end, min(end + stride, n)


def evaluate(model: TransformerXL, *, mem_lens=(0, 16, 32, 64, 128, 256, 384, 512), n_streams: int = 10,
             max_tokens: int | None = None) -> dict:
    """Test perplexity of a bundled language model on WikiText-2 (10 parallel streams, segments of the training
    length). Transformer-XL: for every evaluation memory length on the validation and the test split; the
    headline is the test perplexity at the memory length that is best on validation. Vanilla: fixed segments
    (its training condition, no context across segments), and overlapping windows scoring the last quarter.
    `max_tokens` evaluates only the first tokens of each split (for tests)."""
    L = model.config.tgt_len
    streams = {s: wikitext.batchify(wikitext.ids(s)[:max_tokens], n_streams) for s in ("valid", "test")}

    def ppl(nll: torch.Tensor) -> float:
        return math.exp(nll.double().mean().item())

    out: dict = {"params": sum(p.numel() for p in model.parameters()), "split": wikitext.describe("test"),
                 "tokens": int(streams["test"].shape[0] * (streams["test"].shape[1] - 1)), "streams": n_streams}
    if model.relative:
        curves = {s: [ppl(stream_nll(model, streams[s], L, m)) for m in mem_lens] for s in streams}
        best = int(np.argmin(curves["valid"]))
        out.update(ppl=curves["test"][best], mem_len=mem_lens[best],
                   how=f"segments of {L}, memory {mem_lens[best]} (best on validation)",
                   ppl_at_training_memory=curves["test"][list(mem_lens).index(model.config.mem_len)]
                   if model.config.mem_len in mem_lens else None,
                   curve={"mem_len": list(mem_lens), "valid_ppl": curves["valid"], "test_ppl": curves["test"]})
    else:
        stride = L // 4
        out.update(ppl=ppl(stream_nll(model, streams["test"], L, 0)), how=f"fixed segments of {L}, no memory",
                   valid_ppl=ppl(stream_nll(model, streams["valid"], L, 0)),
                   sliding={"window": L, "stride": stride, "ppl": ppl(sliding_nll(model, streams["test"], L, stride)),
                            "how": f"overlapping windows of {L}, scoring the last {stride} (context >= {L - stride})"})
    return out
