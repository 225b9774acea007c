"""The evaluation-speed measurement of Transformer-XL (engine/txl_speed.py): what is timed computes the right
thing. Correctness only, never wall-clock (Dai et al. 2019, sec. 3.2: state reuse gives the same predictions
as recomputing, only faster)."""
from __future__ import annotations

import pytest
import torch

from engine import api
from engine.txl_speed import PAPER_POINTS, iter_speed_curve, vanilla_last

ATOL = 1e-5


def tiny(name: str, seed: int = 0):
    """A tiny model in eval mode with every parameter redrawn N(0, 0.3^2), so the outputs depend visibly on
    the context (the default init of std 0.02 would make the checks nearly trivial)."""
    torch.manual_seed(seed)
    model = api.build(name, **api.preset(name, "tiny")["config"]).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


def tokens(n: int, V: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (1, n), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
@pytest.mark.parametrize("chunk", [1, 3])
def test_state_reuse_equals_one_full_pass(chunk):
    """(1, T, V) log-probs predicted `chunk` tokens at a time with the memory equal one pass over all T."""
    model = tiny("transformer-xl")
    T = 12
    seq = tokens(T, model.config.n_tokens)
    full = model.log_probs(model.run(seq, None, mem_len=T)[0])
    memory, parts = None, []
    for start in range(0, T, chunk):
        hidden, memory, _ = model.run(seq[:, start:start + chunk], memory, mem_len=T)
        parts.append(model.log_probs(hidden))
    stepped = torch.cat(parts, dim=1)
    assert stepped.shape == full.shape == (1, T, model.config.n_tokens)
    torch.testing.assert_close(stepped, full, atol=ATOL, rtol=0)
    assert full[0, -1].sub(full[0, 0]).abs().max() > 0.1  # the context matters: the check is not trivial


@torch.no_grad()
def test_one_token_after_a_prefilled_memory_sees_the_window():
    """The timed XL step (memory of A - 1 positions, prefilled in one call, then one token with mem_len =
    A - 1) predicts what one pass over the A-token window predicts at its last position, and the memory
    stays at A - 1 positions (later steps see further back than A through the layers' cached states, so
    they are not compared with a window pass)."""
    model = tiny("transformer-xl", seed=2)
    A = 6
    seq = tokens(A + 3, model.config.n_tokens, seed=3)
    memory = model.run(seq[:, :A - 1], None, mem_len=A - 1)[1]
    hidden, memory, _ = model.run(seq[:, A - 1:A], memory, mem_len=A - 1)
    window = model.log_probs(model.run(seq[:, :A], None, mem_len=0)[0])[:, -1]
    torch.testing.assert_close(model.log_probs(hidden)[:, -1], window, atol=ATOL, rtol=0)
    for t in range(A, seq.shape[1]):
        hidden, memory, _ = model.run(seq[:, t:t + 1], memory, mem_len=A - 1)
        assert [m.shape[1] for m in memory] == [A - 1] * model.config.n_layer


@torch.no_grad()
def test_vanilla_recomputation_matches_a_direct_run():
    """The vanilla path's last-position log-probs equal a direct run of the window and, by causality, the
    same position of a run that continues past the window; sliding the window changes them."""
    model = tiny("vanilla-transformer")
    A = 8
    seq = tokens(A + 3, model.config.n_tokens, seed=4)
    window = seq[:, :A]
    recomputed = model.log_probs(vanilla_last(model, window))[:, 0]
    direct = model.log_probs(model.run(window)[0])[:, -1]
    longer = model.log_probs(model.run(seq)[0])[:, A - 1]
    torch.testing.assert_close(recomputed, direct, atol=ATOL, rtol=0)
    torch.testing.assert_close(recomputed, longer, atol=ATOL, rtol=0)
    shifted = model.log_probs(vanilla_last(model, seq[:, 1:A + 1]))[:, 0]
    assert not torch.allclose(shifted, direct, atol=1e-3)


def test_iter_speed_curve_on_tiny_models():
    xl, vanilla = tiny("transformer-xl"), tiny("vanilla-transformer")
    xl.train()
    events = list(iter_speed_curve(xl, vanilla, lengths=(4, 8), repeats=1, budget_s=1.0))
    progress = [e["progress"] for e in events]
    assert all(0.0 <= p <= 1.0 for p in progress) and progress == sorted(progress) and progress[-1] == 1.0
    result = events[-1]["result"]
    assert result["length"] == [4, 8]
    for key in ("xl_ms", "xl_segment_ms", "vanilla_ms", "ratio", "segment_ratio"):
        assert len(result[key]) == 2 and all(v > 0 for v in result[key]), key
    assert result["segment"] == xl.config.tgt_len and result["threads"] >= 1 and result["device"] == "cpu"
    assert xl.training and not vanilla.training  # modes restored
    assert PAPER_POINTS["length"] == [800, 3800] and PAPER_POINTS["ratio"] == [363, 1874]
