"""The Transformer-XL page's views on real text: where each head looks (average attention by distance, the
slide "Visualization of Attention"), one head's attention map with a clickable running text, and the model's
continuation of a test article next to the true one (the slides "Generation / Reference / XL Generation")."""
from __future__ import annotations

import html
import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app.resources import bundled_model, loadable
from engine import api

XL, VANILLA = "txl-wikitext2", "vanilla-wikitext2"
FONT = dict(size=18)
SEG_LEN = 64  # the bundled models' training segment length: passages are read in segments of it
PASSAGE_TOKENS = 640  # the slide: "average attention over the previous 640 tokens"
LINE_CHARS = 100  # characters per line of the clickable running text
UNK_STYLE = "text-decoration: underline wavy #c53030;"


@st.cache_data(show_spinner=False)
def lecture_passages() -> list[dict]:
    """The lecture's WikiText-103 passages: title, prompt, reference and the paper's XL continuation."""
    return json.loads((api.ROOT / "assets" / "passages" / "lecture.json").read_text(encoding="utf-8"))["passages"]


@st.cache_data(show_spinner="Reading WikiText-2…")
def test_articles(min_tokens: int = 700) -> list[tuple[str, list[str]]]:
    """(title, tokens) of the test split's articles with at least `min_tokens` tokens."""
    return [(t, toks) for t, toks in api.wikitext.articles("test") if len(toks) >= min_tokens]


def xl_model():
    if not loadable(XL):
        st.info("Train it with `make train-txl` (about an hour on two CPU cores).")
        st.stop()
    return bundled_model(XL)


def _wikitext_or_stop() -> None:
    try:
        api.wikitext.vocab()
    except api.DatasetUnavailable as e:
        st.error(f"WikiText-2 is not available, so the models cannot read text. {e}")
        st.stop()


# --- choosing a passage ------------------------------------------------------------------------
def passage_picker(key: str) -> list[str] | None:
    """Tokens of a test article, a lecture passage or the user's text; None (with a message) if unusable."""
    _wikitext_or_stop()
    source = st.radio("Passage", ["test", "lecture", "yours"], horizontal=True, key=f"{key}_source",
                      format_func={"test": "WikiText-2 test article", "lecture": "The lecture's passages",
                                   "yours": "Your text"}.get)
    if source == "test":
        articles = test_articles()
        titles = [t for t, _ in articles]
        title = st.selectbox("Article", titles, key=f"{key}_article", index=titles.index("Clayton <unk>")
                             if "Clayton <unk>" in titles else 0)
        return dict(articles)[title]
    if source == "lecture":
        passages = {p["title"]: p for p in lecture_passages()}
        p = passages[st.selectbox("Passage", list(passages), key=f"{key}_lecture")]
        return api.wikitext.tokenize_text(p["prompt"] + "\n" + p["reference"])
    text = st.text_area("Your text (English prose reads best; words outside WikiText-2's vocabulary become <unk>)",
                        height=140, key=f"{key}_text")
    upload = st.file_uploader("…or a plain-text file", type=["txt", "md"], key=f"{key}_upload")
    if upload is not None:
        raw = upload.getvalue()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            st.error(f"{upload.name} is not UTF-8 text; upload a plain-text file.")
            return None
    try:
        return api.wikitext.tokenize_text(text)
    except ValueError as e:
        st.warning(str(e).capitalize() + ".")
        return None


def memory_choice(key: str, default: int = 256) -> int:
    options = [0, 64, 128, 256, 384, 576]
    return st.select_slider("Memory length at evaluation", options, value=default, key=key,
                            help="The bundled model was trained with 64 and predicts best with about 128 (see "
                                 "Context helps); its relative positions let it run with any length.")


@st.cache_data(max_entries=8, show_spinner="Reading the passage segment by segment…")
def _read(tokens: tuple[str, ...], mem_len: int, _model, name: str):
    return api.txl_read_passage(_model, list(tokens), seg_len=SEG_LEN, mem_len=mem_len, max_tokens=PASSAGE_TOKENS)


def read(tokens: list[str], mem_len: int):
    return _read(tuple(tokens[:PASSAGE_TOKENS]), mem_len, xl_model(), XL)


# --- 1. average attention by distance ----------------------------------------------------------
def attention_distance() -> None:
    st.subheader("Which heads look far back?")
    st.markdown("Read a passage through the bundled Transformer-XL in segments of 64 tokens with memory. For every "
                "head of every layer, average the attention a token pays to the token **d** positions back, over "
                "all tokens of the passage (as on the slide: \"average attention over the previous 640 tokens\"). "
                "Most heads look at the last few words; a few spread their attention hundreds of tokens back.")
    tokens = passage_picker("dist")
    if not tokens:
        return
    mem_len = memory_choice("dist_mem")
    if mem_len == 0:
        st.info("With no memory a token sees only its own segment: at most 63 tokens back.")
    att = read(tokens, mem_len)
    reach = min(mem_len + SEG_LEN - 1, len(att.tokens) - 1)
    profile = api.txl_distance_profile(att, reach)  # (layers, heads, d)
    n_layer, n_head = profile.shape[:2]
    rows = profile.reshape(n_layer * n_head, -1)
    labels = [f"layer {i + 1} · head {h + 1}" for i in range(n_layer) for h in range(n_head)]
    d = np.arange(rows.shape[1])
    mean_distance = np.nansum(rows * d, 1) / np.nansum(rows, 1)
    fig = go.Figure(go.Heatmap(z=np.log10(np.clip(rows, 1e-5, None)), x=d, y=labels, colorscale="Viridis",
                               customdata=rows, zmin=-4, zmax=0,
                               colorbar=dict(title="attention", tickvals=[-4, -3, -2, -1, 0],
                                             ticktext=["1e-4", "0.001", "0.01", "0.1", "1"]),
                               hovertemplate="%{y}, %{x} tokens back: %{customdata:.4f}<extra></extra>"))
    fig.update_layout(height=110 + 30 * len(labels), margin=dict(l=10, r=10, t=50, b=10), font=FONT,
                      title=f"Average attention by distance ({len(att.tokens)} tokens, memory {mem_len})")
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="distance d to the attended token (tokens back)")
    st.plotly_chart(fig, width="stretch", key="dist_heatmap")
    order = np.argsort(-mean_distance)
    bars = go.Figure(go.Bar(x=[labels[i] for i in order], y=mean_distance[order], marker_color="#2b6cb0",
                            text=[f"{v:.0f}" for v in mean_distance[order]], textposition="outside"))
    bars.add_hline(y=reach / 2, line=dict(color="#718096", width=2, dash="dash"),
                   annotation_text=f"uniform attention over the {reach + 1} visible tokens", annotation_font=FONT)
    bars.update_layout(height=360, margin=dict(l=10, r=10, t=50, b=10), font=FONT,
                       title="Mean distance of each head's attention, farthest first")
    bars.update_yaxes(title="tokens back")
    st.plotly_chart(bars, width="stretch", key="dist_bars")
    far = order[0]
    st.caption(f"The farthest-looking head is {labels[far]}, at {mean_distance[far]:.0f} tokens back on average; a "
               "head near the dashed line spreads its attention evenly, one far below it looks at the last few words. "
               "Colours are on a log scale; each row sums to 1 over d for a token that can see the whole range.")


# --- 2. one head's attention map, and the running text ------------------------------------------
def attention_map() -> None:
    st.subheader("Attention over memory and segment")
    st.markdown("Each row is a token of the chosen segment; each column a token it may attend to: the remembered "
                "tokens of earlier segments (left of the dashed line) and its own segment. Click a word in the "
                "running text below to see which previous words it attends to.")
    tokens = passage_picker("map")
    if not tokens:
        return
    cols = st.columns(4)
    with cols[0]:
        mem_len = memory_choice("map_mem", 128)
    att = read(tokens, mem_len)
    n_layer, n_head = att.maps[0].shape[:2]
    segment = cols[1].slider("Segment", 1, len(att.maps), min(3, len(att.maps)), key="map_segment") - 1
    layer = cols[2].slider("Layer", 1, n_layer, 1, key="map_layer") - 1
    head = cols[3].selectbox("Head", ["mean"] + list(range(1, n_head + 1)), key="map_head")
    h = None if head == "mean" else int(head) - 1
    probs = att.maps[segment][layer]
    probs = probs.mean(0) if h is None else probs[h]  # (L, K)
    q0, k0 = att.q_start[segment], att.k_start[segment]
    labels = [_shown(t) + (" (<unk>)" if unk and t != api.wikitext.UNK else "") for t, unk in zip(att.tokens, att.unknown)]
    keys, queries = labels[k0:q0 + probs.shape[0]], labels[q0:q0 + probs.shape[0]]
    hover = np.array([[f"{queries[i]} → {keys[j]}" for j in range(len(keys))] for i in range(len(queries))])
    fig = go.Figure(go.Heatmap(z=np.sqrt(probs), customdata=np.stack([hover, probs.astype(str)], -1),
                               x=list(range(k0, k0 + len(keys))), y=list(range(q0, q0 + len(queries))),
                               colorscale="Blues", showscale=False,
                               hovertemplate="%{customdata[0]}: %{customdata[1]}<extra></extra>"))
    if q0 > k0:
        fig.add_vline(x=q0 - 0.5, line=dict(color="#c05621", width=3, dash="dash"))
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=50, b=10), font=FONT,
                      title=f"Layer {layer + 1}, head {head}: segment {segment + 1} (tokens {q0}–{q0 + len(queries) - 1})")
    fig.update_yaxes(title="query token", autorange="reversed")
    fig.update_xaxes(title="key token (memory | segment)")
    st.plotly_chart(fig, width="stretch", key="map_heatmap")
    _clickable_text(att, segment, layer, h)


def _clickable_text(att, segment: int, layer: int, head: int | None) -> None:
    """The memory + segment as running text; a click on a word colours the words it attends to."""
    q0, k0, n_q = att.q_start[segment], att.k_start[segment], att.maps[segment].shape[2]
    span = list(range(k0, q0 + n_q))
    state_key = f"map_query_{segment}"
    chosen = st.session_state.get(state_key, q0 + n_q - 1)
    weights = att.row(chosen, layer, head)[span]
    x0, y, xs, ys, widths = 0, 0, [], [], []
    for pos in span:
        word = _shown(att.tokens[pos])
        if x0 + len(word) > LINE_CHARS:
            x0, y = 0, y + 1
        xs.append(x0 + len(word) / 2)
        ys.append(y)
        widths.append(len(word) + 0.6)
        x0 += len(word) + 1
    words = [_shown(att.tokens[p]) for p in span]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=widths, y=ys, base=[x - w / 2 for x, w in zip(xs, widths)], orientation="h", width=0.8,
                         marker=dict(color=np.sqrt(weights), colorscale=[[0, "#ffffff"], [0.5, "#fbd38d"], [1, "#ed8936"]], cmin=0, cmax=max(np.sqrt(weights).max(), 1e-6),
                                     line=dict(color=["#1a202c" if p == chosen else "rgba(0,0,0,0)" for p in span], width=3)),
                         customdata=np.stack([np.array(span), weights], -1),
                         selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)),
                         hovertemplate="token %{customdata[0]:.0f}: attention %{customdata[1]:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="text", text=words, textfont=dict(size=17, color=[
        "#c53030" if att.unknown[p] else ("#a0aec0" if p > chosen else "#1a202c") for p in span]), hoverinfo="skip"))
    fig.update_layout(height=60 + 34 * (y + 1), margin=dict(l=5, r=5, t=40, b=5), showlegend=False, bargap=0,
                      plot_bgcolor="white", font=FONT,
                      title=f"Attention of “{_shown(att.tokens[chosen])}” (token {chosen}) over the previous words")
    fig.update_xaxes(visible=False, range=[-1, LINE_CHARS + 1], fixedrange=True)
    fig.update_yaxes(visible=False, autorange="reversed", fixedrange=True)
    event = st.plotly_chart(fig, width="stretch", key=f"map_text_{segment}_{layer}_{head}", on_select="rerun",
                            selection_mode="points", config={"displayModeBar": False})
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    clicked = [span[int(p["point_index"])] for p in points
               if p.get("curve_number") == 0 and 0 <= int(p.get("point_index", -1)) < len(span)]
    if clicked and clicked[0] != chosen and clicked[0] >= q0:
        st.session_state[state_key] = clicked[0]
        st.rerun()
    elif clicked and clicked[0] < q0:
        st.caption("That word is in the memory: click a word of the current segment (after the dashed line above).")
    st.caption("Words shaded orange get the attention; grey words come later and are never attended (causal mask); "
               "red words are outside the vocabulary and read as <unk>.")


def _shown(token: str) -> str:
    return "⏎" if token == api.wikitext.EOS else token.replace("@-@", "-").replace("@,@", ",").replace("@.@", ".")


# --- 3. generation vs reference ----------------------------------------------------------------
def generation() -> None:
    st.subheader("Generation vs reference")
    st.markdown("The start of a test article is the prompt; the bundled Transformer-XL continues it, and the "
                "article's true continuation stands beside it, coloured by the probability the model gave each "
                "true word. The vanilla model, which forgets everything before its 64-token window, continues the "
                "same prompt for comparison.")
    _wikitext_or_stop()
    xl = xl_model()
    vanilla = bundled_model(VANILLA) if loadable(VANILLA) else None
    source = st.radio("Prompt", ["test", "lecture"], horizontal=True, key="gen_source",
                      format_func={"test": "WikiText-2 test article", "lecture": "The lecture's slide"}.get)
    slide = None
    if source == "test":
        articles = test_articles()
        titles = [t for t, _ in articles]
        title = st.selectbox("Test article", titles, key="gen_article",
                             index=titles.index("Clayton <unk>") if "Clayton <unk>" in titles else 0)
        tokens = dict(articles)[title]
    else:
        passages = {p["title"]: p for p in lecture_passages()}
        slide = passages[st.selectbox("Passage", list(passages), key="gen_lecture")]
        prompt_part = api.wikitext.tokenize_text(slide["prompt"])
        tokens = prompt_part + api.wikitext.tokenize_text(slide["reference"])
    cols = st.columns(6)
    if slide is None:
        prompt_len = cols[0].slider("Prompt tokens", 32, min(512, len(tokens) - 100), min(256, len(tokens) - 200), 32,
                                    key="gen_prompt")
    else:
        prompt_len = len(prompt_part)
        cols[0].metric("Prompt tokens", prompt_len)
    n_new = cols[1].slider("Length", 20, 200, 100, 10, key="gen_len")
    temperature = cols[2].slider("Temperature", 0.1, 1.5, 0.8, 0.05, key="gen_temp")
    top_k = cols[3].select_slider("Top-k", [0, 5, 10, 20, 40, 100], value=40, key="gen_topk",
                                  help="0 keeps every word")
    top_p = cols[4].slider("Top-p", 0.5, 1.0, 0.95, 0.01, key="gen_topp")
    seed = cols[5].number_input("Seed", 0, 1_000_000, 0, key="gen_seed")
    vocab = api.wikitext.vocab()
    prompt_ids = vocab.encode(tokens[:prompt_len])[0].tolist()
    reference = tokens[prompt_len:prompt_len + n_new]
    settings = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=int(seed))
    xl_text = _continue(xl, XL, tuple(prompt_ids), n_new, **settings)
    probs = _reference_probs(xl, XL, tuple(prompt_ids), tuple(vocab.encode(reference)[0].tolist()))
    shown = tokens[max(0, prompt_len - 60):prompt_len]
    st.markdown(f"**Prompt** (last {len(shown)} of {prompt_len} tokens): …"
                f"{html.escape(api.wikitext.detokenize(shown))}")
    left, middle, right = st.columns(3, gap="large")
    with left:
        st.markdown("#### Transformer-XL")
        st.html(_as_html(xl_text))
    with middle:
        st.markdown("#### Reference")
        st.html(_as_html(reference, probs))
        st.caption(f"Coloured by the XL's probability of each true word ({len(reference)} words, perplexity "
                   f"{np.exp(-np.log(probs).mean()):.0f}): blue p ≥ 0.1, amber 0.01 ≤ p < 0.1, red p < 0.01; "
                   "hover a word for its p.")
    with right:
        st.markdown("#### Vanilla Transformer")
        if vanilla is None:
            st.info("The vanilla model is not bundled.")
        else:
            st.html(_as_html(_continue(vanilla, VANILLA, tuple(prompt_ids), n_new, **settings)))
    if slide is not None:
        with st.expander("On the slide: the paper's Transformer-XL (257M parameters, trained on WikiText-103)"):
            st.markdown(html.escape(slide["paper_xl"]).replace("\n", "  \n"))
    st.caption("<unk> is never drawn; <unk> in the reference marks words outside WikiText-2's vocabulary. "
               "Same seed, same continuation.")


@st.cache_data(max_entries=32, show_spinner="Generating…")
def _continue(_model, name: str, prompt: tuple[int, ...], n_new: int, *, temperature: float, top_k: int,
              top_p: float, seed: int) -> list[str]:
    vocab = api.wikitext.vocab()
    out = api.txl_generate(_model, torch.tensor([prompt]), n_new, temperature=temperature, top_k=top_k, top_p=top_p,
                           generator=torch.Generator().manual_seed(seed), banned=(vocab.unk,))
    return vocab.decode(out[0, len(prompt):])


@st.cache_data(max_entries=32, show_spinner=False)
def _reference_probs(_model, name: str, prompt: tuple[int, ...], continuation: tuple[int, ...]) -> np.ndarray:
    return api.txl_token_probabilities(_model, list(prompt), list(continuation))


def _as_html(tokens: list[str], probs: np.ndarray | None = None) -> str:
    """Running text as HTML: line breaks at <eos>, <unk> underlined, optional background by probability."""
    parts = []
    for i, tok in enumerate(tokens):
        if tok == api.wikitext.EOS:
            parts.append("<br>")
            continue
        style = UNK_STYLE if tok == api.wikitext.UNK else ""
        title = ""
        if probs is not None:
            p = float(probs[i])
            hue = 210 if p >= 0.1 else (40 if p >= 0.01 else 0)
            alpha = 0.15 + 0.5 * min(1.0, abs(np.log10(max(p, 1e-6)) + 1.5) / 3)
            style += f"background: hsla({hue}, 70%, 55%, {alpha:.2f}); border-radius: 3px;"
            title = f' title="p = {p:.3g}"'
        parts.append(f'<span style="{style}"{title}>{html.escape(_shown(tok))}</span>')
    return f'<div style="font-size: 1.15rem; line-height: 1.9;">{" ".join(parts)}</div>'
