"""The Transformer-XL page's views about context and cost: the segment picture, perplexity against memory
length, the evaluation speed-up, and the results table. Model math lives in engine.models.txl,
engine.txl_analysis and engine.txl_speed; this file arranges and draws it."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import jobs
from app.resources import bundled_metrics, bundled_model, loadable
from app.txl_text_views import XL, VANILLA, lecture_passages
from engine import api

FONT = dict(size=18)
COLORS = {"xl": "#2b6cb0", "vanilla": "#c05621", "paper": "#718096"}
PAPER_WT103 = [  # the slide "Results" (Dai et al. 2019, table 1): WikiText-103 test perplexity
    ("Grave et al. (2016b), LSTM", "–", 48.7), ("Bai et al. (2018), TCN", "–", 45.2),
    ("Dauphin et al. (2016), GCNN-8", "–", 44.9), ("Grave et al. (2016b), LSTM + neural cache", "–", 40.8),
    ("Dauphin et al. (2016), GCNN-14", "–", 37.2), ("Merity et al. (2018), QRNN", "151M", 33.0),
    ("Rae et al. (2018), Hebbian + cache", "–", 29.9), ("Transformer-XL Standard", "151M", 24.0),
    ("Baevski and Auli (2018), adaptive input", "247M", 20.5), ("Transformer-XL Large", "257M", 18.3)]
WT2_REFERENCES = [  # published WikiText-2 test perplexities for scale
    ("PyTorch word_language_model example, LSTM", "–", 114.95), ("AWD-LSTM (Merity et al. 2018)", "33M", 65.8)]


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10), font=FONT, **kw)
    return fig


def models():
    """(XL, vanilla) bundled models; stops the view with a message when they do not load."""
    if not (loadable(XL) and loadable(VANILLA)):
        st.info("Train them with `make train-txl` (about an hour on two CPU cores).")
        st.stop()
    return bundled_model(XL), bundled_model(VANILLA)


# --- 1. the segment picture --------------------------------------------------------------------
def segments() -> None:
    st.subheader("Vanilla vs XL: how far back can a token see?")
    st.markdown("The vanilla model cuts the text into segments and models each on its own: a token sees only "
                "the tokens before it **in its segment**. Transformer-XL caches every layer's states of the "
                "previous segment (without gradient) and attends over them too, so each layer reaches one "
                "memory length further back than the layer below: the context grows with **segment length × "
                "layers**. Pick a token of the passage; shaded cells are the tokens its state at each layer "
                "can depend on.")
    cols = st.columns(3)
    seg_len = cols[0].slider("Segment length L", 4, 64, 8, key="seg_len")
    mem_len = cols[1].slider("Memory length M", 0, 64, 8, key="seg_mem")
    n_layer = cols[2].slider("Layers N", 1, 12, 4, key="seg_layers")
    tokens = _passage_tokens()
    n = min(len(tokens), max(4 * seg_len, n_layer * mem_len + 2 * seg_len, 48), 400)
    tokens = tokens[:n]
    query = st.slider("Token", 0, n - 1, n - 1, key="seg_query", help="The position whose context is drawn.")
    st.caption(f"Token {query}: **{api.wikitext.detokenize([tokens[query]]).strip() or '⏎'}**, in the passage "
               "from the lecture's Napoleonic Wars slide.")
    z, labels = [], []  # plotly stacks categories bottom-up: XL's layers 0..N, then the vanilla model's above
    for row, (name, recurrent) in [(1, ("Transformer-XL", True)), (0, ("Vanilla", False))]:
        reach = api.txl_context_reach(n, seg_len, mem_len, n_layer, recurrent=recurrent)[:, query]
        z += [[(1.0 + row) * (reach[layer] <= j <= query) for j in range(n)] for layer in range(n_layer + 1)]
        labels += [f"{name} · layer {k}" for k in range(n_layer + 1)]
        cols[row].metric(f"{name}: tokens the top layer sees", f"{query - int(reach[-1]) + 1}")
    fig = go.Figure(go.Heatmap(z=z, x=list(range(n)), y=labels, customdata=[tokens] * len(labels), showscale=False,
                               zmin=0, zmax=2, colorscale=[[0, "#f7fafc"], [0.5, COLORS["vanilla"]], [1, COLORS["xl"]]],
                               xgap=1, ygap=1, hovertemplate="token %{x}: %{customdata}<extra>%{y}</extra>"))
    for boundary in range(seg_len, n, seg_len):
        fig.add_vline(x=boundary - 0.5, line=dict(color="#1a202c", width=2, dash="dot"))
    _layout(fig, 90 + 26 * len(labels), title="Shaded: what the state of the chosen token depends on (dotted: segment boundaries)")
    fig.update_xaxes(title="token position in the passage")
    st.plotly_chart(fig, width="stretch", key="seg_picture")
    cols[2].metric("XL's reach: N × M + offset", f"{n_layer * mem_len + query % seg_len + 1}",
                   help="At most; less at the start of the passage.")
    _context_lengths(n, seg_len, mem_len, n_layer)


def _context_lengths(n: int, seg_len: int, mem_len: int, n_layer: int) -> None:
    x = np.arange(n)
    fig = go.Figure()
    for name, recurrent, color in [("Vanilla", False, COLORS["vanilla"]), ("Transformer-XL", True, COLORS["xl"])]:
        reach = api.txl_context_reach(n, seg_len, mem_len, n_layer, recurrent=recurrent)[-1]
        fig.add_trace(go.Scatter(x=x, y=x - reach + 1, name=name, line=dict(color=color, width=3)))
    _layout(fig, 300, title="Context length of every token at the top layer", legend=dict(orientation="h", y=1.12, x=0.5))
    fig.update_xaxes(title="token position")
    fig.update_yaxes(title="tokens seen", rangemode="tozero")
    st.plotly_chart(fig, width="stretch", key="seg_lengths")


@st.cache_data(show_spinner=False)
def _passage_tokens() -> list[str]:
    passage = lecture_passages()[0]
    return api.wikitext.tokenize_text(passage["prompt"] + "\n" + passage["reference"])


# --- 2. context helps --------------------------------------------------------------------------
def context() -> None:
    st.subheader("Context helps: test perplexity against memory length")
    st.markdown("Evaluate the bundled Transformer-XL on WikiText-2's test split in segments of its training length "
                "(64 tokens) while it remembers the last M positions of every layer. With M = 0 it is in the vanilla "
                "model's situation, its context cut at every segment boundary; the dashed lines are the vanilla "
                "model itself, evaluated on fixed segments and on overlapping windows.")
    xl, vanilla = models()
    bundled = bundled_metrics(XL).get("context_curve")
    if bundled:
        _context_figure(bundled, "whole test split, computed when the model was bundled", key="ctx_bundled")
    with st.form("ctx_form", border=False):
        cols = st.columns([2, 2, 1])
        n_tokens = cols[0].select_slider("Test tokens for a live run", [5_000, 10_000, 20_000, 50_000, 245_569],
                                         value=10_000, key="ctx_tokens")
        mems = cols[1].multiselect("Memory lengths", [0, 16, 32, 64, 128, 256, 384, 512],
                                   default=[0, 32, 64, 128, 256], key="ctx_mems")
        go_ = cols[2].form_submit_button("Compute", type="primary", width="stretch")
    if go_ and mems:
        job = jobs.get("txl-context")
        if job is None or not job.running:
            jobs.start("txl-context", f"Perplexity on {n_tokens:,} test tokens", _context_work(xl, vanilla, sorted(mems), n_tokens))
    elif go_:
        st.warning("Choose at least one memory length.")
    job = jobs.panel("txl-context", lambda j: _context_figure(j.result, "live run", key="ctx_live") if j.result else None)
    if job is None and not bundled:
        st.info("Choose memory lengths and compute.")


def _context_work(xl, vanilla, mems, n_tokens):
    def work(job: jobs.Job):
        for update in api.iter_txl_context_curve(xl, vanilla, mems, n_tokens=n_tokens):
            if "result" in update:
                job.result = update["result"]
            yield {k: v for k, v in update.items() if k != "result"}
    return work


def _context_figure(curve: dict, label: str, *, key: str) -> None:
    fig = go.Figure(go.Scatter(x=curve["mem_len"], y=curve["xl_ppl"], mode="lines+markers", name="Transformer-XL",
                               line=dict(color=COLORS["xl"], width=3), marker=dict(size=10)))
    vanilla = bundled_metrics(VANILLA).get("test", {})
    lines = [(curve.get("vanilla_ppl"), "fixed segments", "dash")]
    if label.startswith("whole") and vanilla.get("sliding"):  # the sliding windows were measured on the whole split
        lines.append((vanilla["sliding"]["ppl"], f"overlapping windows, context ≥ {vanilla['sliding']['window'] - vanilla['sliding']['stride']}", "dot"))
    for value, how, dash in lines:
        if value:
            fig.add_hline(y=value, line=dict(color=COLORS["vanilla"], width=3, dash=dash),
                          annotation_text=f"vanilla, {how}: {value:.1f}", annotation_font=FONT)
    _layout(fig, 380, title=f"Test perplexity, {curve['tokens']:,} tokens ({label})")
    fig.update_xaxes(title="evaluation memory length M (tokens)")
    fig.update_yaxes(title="perplexity (lower is better)")
    st.plotly_chart(fig, width="stretch", key=key)
    ppl, mems = curve["xl_ppl"], curve["mem_len"]
    best = int(np.argmin(ppl))
    st.caption(f"{curve['split']}; segments of 64 tokens; perplexity = exp(mean NLL in nats per token). "
               f"Best at M = {mems[best]} ({ppl[best]:.1f}, against {ppl[0]:.1f} at M = {mems[0]}). The model was "
               "trained with M = 64; far beyond that it gains nothing more (the paper's large models, trained with "
               "longer memories, keep gaining).")


# --- 3. speed ----------------------------------------------------------------------------------
def speed() -> None:
    st.subheader("Evaluation: reuse the states instead of recomputing (\"1800x faster\")")
    st.markdown("To predict token t with an attention length of A, a vanilla Transformer must run its whole window "
                "of the last A tokens through every layer again, for every new token. Transformer-XL keeps each "
                "layer's states in memory and runs only the new token against them. Below, measured live on this "
                "server's CPU: the time per predicted token, both ways, and their ratio next to the paper's GPU "
                "measurements.")
    xl, vanilla = models()
    stored = bundled_metrics(XL).get("eval_speed")
    with st.form("speed_form", border=False):
        cols = st.columns([3, 1])
        lengths = cols[0].multiselect("Attention lengths", [64, 128, 256, 512, 768, 1024],
                                      default=[64, 128, 256, 512, 1024], key="speed_lengths")
        go_ = cols[1].form_submit_button("Measure", type="primary", width="stretch")
    if go_ and lengths:
        job = jobs.get("txl-speed")
        if job is None or not job.running:
            jobs.start("txl-speed", "Timing both ways", _speed_work(xl, vanilla, sorted(lengths)))
    job = jobs.panel("txl-speed", lambda j: _speed_figure(j.result, "measured now") if j.result else None)
    if job is None:
        if stored:
            _speed_figure(stored, "measured when the model was bundled")
        else:
            st.info("Choose attention lengths and measure.")


def _speed_work(xl, vanilla, lengths):
    def work(job: jobs.Job):
        for update in api.iter_txl_speed_curve(xl, vanilla, lengths, budget_s=4.0 * len(lengths)):
            if "result" in update:
                job.result = update["result"]
            yield {k: v for k, v in update.items() if k != "result"}
    return work


def _speed_figure(result: dict, label: str) -> None:
    paper, seg = api.TXL_PAPER_SPEEDUPS, result["segment"]
    left, right = st.columns(2, gap="large")
    fig = go.Figure()
    for key, name, color, dash in [("vanilla_ms", "vanilla: recompute the window per token", COLORS["vanilla"], "solid"),
                                   ("xl_segment_ms", f"XL: {seg} new tokens per pass, with memory", COLORS["xl"], "solid"),
                                   ("xl_ms", "XL: 1 new token per pass, with memory", COLORS["xl"], "dot")]:
        fig.add_trace(go.Scatter(x=result["length"], y=result[key], name=name, mode="lines+markers",
                                 line=dict(color=color, width=3, dash=dash), marker=dict(size=10)))
    _layout(fig, 440, title="Time per predicted token", legend=dict(orientation="h", y=-0.3))
    fig.update_xaxes(title="attention length A", type="log", tickvals=result["length"])
    fig.update_yaxes(title="milliseconds", type="log", dtick=1)
    left.plotly_chart(fig, width="stretch", key="speed_times")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=result["length"], y=result["segment_ratio"], name=f"this server, {seg} tokens per pass",
                             mode="lines+markers+text", textposition="bottom right", textfont=FONT,
                             text=[""] * (len(result["length"]) - 1) + [f"{result['segment_ratio'][-1]:.0f}×"],
                             line=dict(color=COLORS["xl"], width=3), marker=dict(size=10)))
    fig.add_trace(go.Scatter(x=result["length"], y=result["ratio"], name="this server, 1 token per pass",
                             mode="lines+markers", line=dict(color=COLORS["xl"], width=2, dash="dot")))
    fig.add_trace(go.Scatter(x=paper["length"], y=paper["ratio"], name="paper (GPU)", mode="markers+text",
                             text=[f"{r}×" for r in paper["ratio"]], textposition="middle left", textfont=FONT,
                             marker=dict(size=14, symbol="diamond", color=COLORS["paper"])))
    _layout(fig, 440, title="Speed-up of state reuse", legend=dict(orientation="h", y=-0.3))
    fig.update_xaxes(title="attention length A", type="log", range=[math.log10(40), math.log10(6000)],
                     tickvals=sorted({*result["length"], *paper["length"]}))
    fig.update_yaxes(title="vanilla time / XL time", type="log", dtick=1)
    right.plotly_chart(fig, width="stretch", key="speed_ratio")
    st.caption(f"{label.capitalize()}: medians on {result['device']} with {result['threads']} thread(s), batch 1. The paper's evaluation "
               f"runs a segment of new tokens per pass on top of the memory ({paper['note']}). One token per pass "
               "gains less here because this memory caches each layer's inputs, so their keys and values are "
               "projected again at every pass.")


# --- 4. results --------------------------------------------------------------------------------
def results() -> None:
    st.subheader("Results")
    st.markdown("The slide's table is WikiText-103 (103M training tokens, models of 151M–257M parameters trained "
                "on GPUs). This app's two models are far smaller and trained on **WikiText-2** (2M tokens) on a "
                "CPU, so their numbers are not comparable with the table; they are comparable with each other "
                "(same size, same data, same training budget) and with published WikiText-2 results.")
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**WikiText-103 test set** (from the paper)")
        st.markdown(_table(["Model", "#Param", "PPL"], [
            [f"**Dai et al. (2019), {m}**" if m.startswith("Transformer-XL") else m, p, f"**{ppl}**" if m.startswith("Transformer-XL")
             else f"{ppl}"] for m, p, ppl in PAPER_WT103]))
    with right:
        st.markdown("**WikiText-2 test set** (this app's models, and published results)")
        rows = []
        for name, label in [(XL, "This app: Transformer-XL"), (VANILLA, "This app: vanilla Transformer")]:
            m = bundled_metrics(name).get("test")
            if m:
                rows.append([f"**{label}**", f"{m['params'] / 1e6:.1f}M", f"**{m['ppl']:.1f}**", m["how"]])
        rows += [[m, p, f"{ppl}", "published"] for m, p, ppl in WT2_REFERENCES]
        st.markdown(_table(["Model", "#Param", "PPL", "Evaluation"], rows))
        trained = bundled_metrics(XL).get("training", {})
        if trained:
            st.caption(f"Both trained by `python -m engine train` for {trained.get('steps', 0):,} steps "
                       f"({trained.get('seconds', 0) / 60:.0f} min on {trained.get('device', 'cpu')}); "
                       "see the model cards in assets/checkpoints/.")


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (rendered full width, no scrolling: legible when projected)."""
    align = ["---" if h in ("Model", "Evaluation") else "--:" for h in header]  # numbers right-aligned
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])
