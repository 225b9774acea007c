"""Transformer-XL math: recurrence = one long pass, the relative shift, causality, stop-gradient, and the
WikiText tokenizer. Tiny models with large random weights, so that a wrong index would show."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine import api
from engine.data import wikitext
from engine.models.txl import _filter, generate, stream_nll
from engine.nn.attention import causal_mask, rel_shift


def tiny(name: str = "transformer-xl", seed: int = 0, **overrides):
    torch.manual_seed(seed)
    model = api.build(name, **{**api.preset(name, "tiny")["config"], **overrides}).eval()
    for p in model.parameters():
        if p.dim() > 0:
            nn.init.normal_(p, std=0.3)
    return model


class FixedEmbedding(nn.Module):
    """Stands in for the embedding so gradients can be taken with respect to the inputs (B, L, d)."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.values = values

    def forward(self, ids):
        return self.values


def test_two_segments_with_memory_equal_one_pass_with_the_causal_mask():
    model = tiny()
    x = torch.randint(64, (3, 16), generator=torch.Generator().manual_seed(1))
    whole, _, _ = model.run(x, None, mem_len=16)
    first, memory, _ = model.run(x[:, :8], None, mem_len=16)
    assert [m.shape for m in memory] == [(3, 8, 16)] * 2  # one (B, M, d) memory per layer
    second, memory, _ = model.run(x[:, 8:], memory, mem_len=16)
    assert memory[0].shape == (3, 16, 16)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-5, rtol=1e-5)
    third, _, _ = model.run(x[:, 12:], None)  # without the memory the answer changes
    assert (third - whole[:, 12:]).abs().max() > 1e-3


def test_memory_is_cut_to_mem_len_and_changes_the_result():
    model = tiny()
    x = torch.randint(64, (2, 24), generator=torch.Generator().manual_seed(2))
    _, short, _ = model.run(x[:, :16], None, mem_len=4)
    _, long, _ = model.run(x[:, :16], None, mem_len=16)
    assert short[0].shape[1] == 4 and torch.equal(short[0], long[0][:, -4:])
    a, _, _ = model.run(x[:, 16:], short, mem_len=4)
    b, _, _ = model.run(x[:, 16:], long, mem_len=16)
    assert (a - b).abs().max() > 1e-3


def test_rel_shift_matches_an_explicit_relative_index():
    for q, k in [(1, 1), (3, 3), (4, 9), (5, 12)]:
        x = torch.randn(2, 3, q, k)
        shifted = rel_shift(x)
        for i in range(q):
            for j in range(k - q + i + 1):  # the keys query i may see: distance (k - q + i) - j >= 0
                distance = (k - q + i) - j
                assert shifted[..., i, j].equal(x[..., i, k - 1 - distance]), (q, k, i, j)


def test_causal_mask_hides_exactly_the_future():
    mask = causal_mask(3, 5)
    assert mask.tolist() == [[False, False, False, True, True], [False] * 4 + [True], [False] * 5]


@pytest.mark.parametrize("name", ["transformer-xl", "vanilla-transformer"])
def test_output_at_t_does_not_depend_on_later_tokens(name):
    model = tiny(name)
    inputs = torch.randn(1, 8, 16, requires_grad=True)
    model.embed = FixedEmbedding(inputs)
    hidden, _, _ = model.run(torch.zeros(1, 8, dtype=torch.long))
    for t in range(8):
        (grad,) = torch.autograd.grad(hidden[0, t].sum(), inputs, retain_graph=True)
        assert grad[0, t + 1:].abs().sum() == 0, f"position {t} sees the future"
        assert grad[0, :t + 1].abs().sum(-1).gt(0).all(), f"position {t} ignores its past"


def test_no_gradient_reaches_the_memory():
    model = tiny()
    first = torch.randn(2, 8, 16, requires_grad=True)
    model.embed = FixedEmbedding(first)
    _, memory, _ = model.run(torch.zeros(2, 8, dtype=torch.long))
    assert all(not m.requires_grad for m in memory)
    second = torch.randn(2, 8, 16, requires_grad=True)
    model.embed = FixedEmbedding(second)
    hidden, _, _ = model.run(torch.zeros(2, 8, dtype=torch.long), memory)
    hidden.sum().backward()
    assert first.grad is None and second.grad is not None
    model.embed = FixedEmbedding(torch.randn(2, 8, 16))  # the memory did matter for the values
    other, _, _ = model.run(torch.zeros(2, 8, dtype=torch.long), [m + 1 for m in memory])
    assert (other - hidden).abs().max() > 1e-3


def test_training_carries_the_memory_and_vanilla_keeps_none():
    for name, expect in [("transformer-xl", 8), ("vanilla-transformer", 0)]:
        model = tiny(name).train()
        opt = model.make_optimizers(lr=1e-3, warmup=2, total_steps=10)
        batch = torch.randint(64, (4, 9))
        model.train_step(batch, opt)
        memory = model._train_memory
        assert (len(memory) == 2 and memory[0].shape == (4, expect, 16)) if expect else memory == []
        assert opt[0].param_groups[0]["done"] == 1 and opt[0].param_groups[0]["lr"] == pytest.approx(5e-4)


def test_vanilla_segments_are_independent():
    model = tiny("vanilla-transformer")
    x = torch.randint(64, (2, 16))
    nll = stream_nll(model, x, 8, 0)
    alone = stream_nll(model, x[:, 8:], 8, 0)
    torch.testing.assert_close(nll[:, 8:], alone, atol=1e-5, rtol=1e-5)


def test_stream_nll_is_a_proper_log_likelihood():
    model = tiny()
    x = torch.randint(64, (1, 6))
    nll = stream_nll(model, x, 3, 8)
    hidden, _, _ = model.run(x[:, :-1], None, mem_len=8)
    logp = model.log_probs(hidden)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(1, 5), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(nll, -logp.gather(-1, x[:, 1:, None])[..., 0], atol=1e-5, rtol=1e-5)


def test_top_k_and_top_p_keep_the_right_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(_filter(logits, 2, 1.0)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(_filter(logits, 0, 0.7)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(_filter(logits, 0, 0.5)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(_filter(logits, 0, 1.0)).all()


def test_generation_is_seeded_and_never_draws_banned_tokens():
    model = tiny()
    prompt = torch.randint(64, (2, 5))
    a = generate(model, prompt, 10, generator=torch.Generator().manual_seed(3), banned=(1, 2))
    b = generate(model, prompt, 10, generator=torch.Generator().manual_seed(3), banned=(1, 2))
    assert a.shape == (2, 15) and torch.equal(a, b) and torch.equal(a[:, :5], prompt)
    assert not torch.isin(a[:, 5:], torch.tensor([1, 2])).any()


# --- WikiText-2 and the tokenizer ----------------------------------------------------------------------
def test_vocabulary_is_the_train_splits_and_ids_round_trip():
    vocab = wikitext.vocab()
    assert len(vocab) == 33278 and vocab.itos[0] == wikitext.EOS
    tokens = wikitext.words(wikitext.lines("test")[1]) + ["Napoleon", "'s", "zzyzxnotaword"]
    ids, unknown = vocab.encode(tokens)
    assert unknown.tolist() == [False] * (len(tokens) - 1) + [True]
    assert vocab.decode(ids) == tokens[:-1] + [wikitext.UNK]
    assert len(wikitext.ids("test")) == 245569  # words + one <eos> per line, as in SOURCE.md


def test_tokenizer_reproduces_wikitexts_own_tokens():
    lines = [line for line in wikitext.lines("test") if line.strip()]
    same = sum(wikitext.tokenize_text(line) == wikitext.words(line) for line in lines)
    assert same >= len(lines) - 2
    assert wikitext.tokenize_text("Napoleon's army didn't march 1,000 km.\nwell-known") == [
        "Napoleon", "'s", "army", "did", "n't", "march", "1", "@,@", "000", "km", ".", "<eos>",
        "well", "@-@", "known", "<eos>"]
    assert wikitext.detokenize(["a", "1", "@,@", "000", "<eos>", "b"]) == "a 1,000\nb"


@pytest.mark.parametrize("text, message", [("", "empty"), ("  \n\t ", "empty"), ("a\x00b" * 10, "binary"),
                                           ("word " * 50_000, "at most"), (b"bytes", "must be text")])
def test_bad_text_gets_a_readable_error(text, message):
    with pytest.raises(ValueError, match=message):
        wikitext.tokenize_text(text)


def test_articles_start_at_their_titles():
    articles = wikitext.articles("test")
    assert len(articles) == 62
    title, tokens = articles[0]
    assert title == "Robert <unk>" and tokens[:3] == ["=", "Robert", "<unk>"]


# --- the page's analyses and the evaluation ------------------------------------------------------------
def test_context_reach_grows_with_layers_times_memory():
    from engine.txl_analysis import context_reach
    vanilla = context_reach(64, 8, 8, 3, recurrent=False)
    xl = context_reach(64, 8, 8, 3, recurrent=True)
    assert (vanilla[0] == range(64)).all() and (vanilla[3] == (np.arange(64) // 8) * 8).all()
    assert xl[3, 63] == 56 - 3 * 8  # the top layer of the last token reaches N x M before its segment
    assert (np.diff(xl, axis=0) <= 0).all()  # each layer reaches at least as far as the one below
    assert (context_reach(64, 8, 0, 3, recurrent=True) == vanilla).all()  # no memory: the vanilla picture


def test_context_reach_is_the_real_dependency_of_the_model():
    """Perturb one token and see which top-layer states change: exactly those whose reach covers it."""
    from engine.txl_analysis import context_reach
    model, L, M = tiny(), 4, 4
    x = torch.randint(64, (1, 24), generator=torch.Generator().manual_seed(4))
    y = x.clone()
    y[0, 5] = (x[0, 5] + 1) % 64

    def top(tokens):
        memory, out = None, []
        for s in range(0, 24, L):
            hidden, memory, _ = model.run(tokens[:, s:s + L], memory, mem_len=M)
            out.append(hidden)
        return torch.cat(out, 1)[0]

    changed = ((top(x) - top(y)).abs().amax(-1) > 1e-6).numpy()
    reach = context_reach(24, L, M, 2, recurrent=True)[-1]
    assert (changed == ((reach <= 5) & (np.arange(24) >= 5))).all()


def test_sliding_windows_score_every_token_once_with_enough_context():
    from engine.txl_analysis import sliding_nll
    model = tiny("vanilla-transformer")
    x = torch.randint(64, (2, 30), generator=torch.Generator().manual_seed(5))
    fixed = stream_nll(model, x, 8, 0)
    assert torch.allclose(sliding_nll(model, x, 8, 8)[:, :24], fixed[:, :24], atol=1e-6)
    sliding = sliding_nll(model, x, 8, 2)
    assert sliding.shape == fixed.shape and torch.allclose(sliding[:, :8], fixed[:, :8], atol=1e-6)
    hidden, _, _ = model.run(x[:, 14:22])  # token 22 is scored by the window of inputs 14..21
    assert torch.allclose(model.token_nll(hidden[:, -1:], x[:, 22:23])[:, 0], sliding[:, 21], atol=1e-5)


def test_passage_attention_rows_and_distance_profile_are_distributions():
    from engine.txl_analysis import distance_profile, read_passage
    model = tiny(n_tokens=33278, cutoffs=(2000, 10000))
    tokens = wikitext.words(wikitext.lines("test")[3])[:40]
    att = read_passage(model, tokens, seg_len=8, mem_len=8)
    assert len(att.maps) == 5 and att.maps[2].shape == (2, 2, 8, 16) and att.k_start[2] == 8
    row = att.row(20, layer=1, head=0)
    assert row.shape == (40,) and abs(row.sum() - 1) < 1e-5 and row[21:].sum() == 0 and row[:8].sum() == 0
    profile = distance_profile(att, 15)
    assert profile.shape == (2, 2, 16) and np.isfinite(profile).all()
    assert att.unknown == [t == wikitext.UNK for t in tokens]


def test_evaluate_reports_labelled_perplexities():
    from engine.cards import txl_card
    from engine.txl_analysis import evaluate
    xl = tiny(n_tokens=33278, cutoffs=(2000, 10000), tgt_len=8, mem_len=8)
    result = evaluate(xl, mem_lens=(0, 8, 16), max_tokens=2000)
    assert result["curve"]["mem_len"] == [0, 8, 16] and result["mem_len"] in (0, 8, 16)
    assert result["ppl"] == result["curve"]["test_ppl"][[0, 8, 16].index(result["mem_len"])]
    assert "best on validation" in result["how"] and result["tokens"] == 10 * (200 - 1)
    vanilla = tiny("vanilla-transformer", n_tokens=33278, cutoffs=(2000, 10000), tgt_len=8)
    base = evaluate(vanilla, max_tokens=2000)
    assert base["ppl"] > 1 and base["sliding"]["stride"] == 2 and "fixed segments" in base["how"]
    card = txl_card(xl, {"test": result, "training": {"steps": 3}})
    assert f"Test perplexity {result['ppl']:.2f}" in card and "WikiText-2" in card


def test_wikitext_comes_from_a_given_folder_or_the_hub_and_fails_clearly(monkeypatch, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import huggingface_hub
    from engine.data import DatasetUnavailable
    (tmp_path / "wiki.test.tokens").write_text(" \n = A = \n the cat sat \n", encoding="utf-8")
    monkeypatch.setenv("DGM_WIKITEXT_DIR", str(tmp_path))
    wikitext.lines.cache_clear()
    assert wikitext.lines("test") == (" ", " = A = ", " the cat sat ")
    monkeypatch.setenv("DGM_WIKITEXT_DIR", str(tmp_path / "missing"))
    hub_file = tmp_path / "test.parquet"  # the Hub's layout: one row per line, with its newline
    pq.write_table(pa.table({"text": ["", " = B = \n", " a dog \n"]}), hub_file)
    asked = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo, name, **kw: asked.append((repo, name)) or str(hub_file))
    wikitext.lines.cache_clear()
    assert wikitext.lines("test") == ("", " = B = ", " a dog ")
    assert asked == [("Salesforce/wikitext", "wikitext-2-v1/test-00000-of-00001.parquet")]

    def offline(*args, **kwargs):
        raise OSError("offline")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    wikitext.lines.cache_clear()
    with pytest.raises(DatasetUnavailable, match="DGM_DATA_DIR"):
        wikitext.lines("test")
    wikitext.lines.cache_clear()
