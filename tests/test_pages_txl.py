"""The Transformer-XL page through AppTest: every view runs on the bundled models, controls change what is
drawn, the background jobs (perplexity vs memory, speed) finish with a result, and bad text, a missing corpus
or a damaged checkpoint give a message instead of a traceback."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests import apptest
from tests.conftest import ROOT

VIEWS = ["segments", "distance", "attention", "generate", "context", "speed", "results"]


@pytest.fixture
def txl(clear_streamlit_caches) -> AppTest:
    return apptest.open_page("app_pages/txl.py", timeout=180)


def show(at: AppTest, view: str) -> AppTest:
    return apptest.show(at, "txl_view", view)


charts = apptest.charts


def wait_for_job(at: AppTest, seconds: float = 150) -> None:
    apptest.wait_for_job(at, seconds)


@pytest.mark.parametrize("view", VIEWS)
def test_view_runs_without_errors(txl, view):
    at = show(txl, view)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Transformer-XL"


def test_segment_picture_reacts_and_xl_reaches_further(txl):
    at = show(txl, "segments")
    before = charts(at)
    at.slider(key="seg_mem").set_value(16).run()
    assert not at.exception and charts(at) != before
    seen = {m.label: m.value for m in at.metric}
    vanilla = int(seen["Vanilla: tokens the top layer sees"])
    xl = int(seen["Transformer-XL: tokens the top layer sees"])
    assert vanilla <= 8 < xl


def test_attention_views_take_the_lecture_passage_and_typed_text(txl):
    at = show(txl, "distance")
    at.radio(key="dist_source").set_value("lecture").run()
    assert not at.exception and len(charts(at)) == 2
    assert "farthest-looking head" in " ".join(c.value for c in at.caption)
    at = show(at, "attention")
    at.radio(key="map_source").set_value("yours").run()
    assert any("empty" in w.value for w in at.warning)  # nothing typed yet: a message, no figure
    at.text_area(key="map_text").input("The army marched north in 1805 . Napoleon followed the army . " * 12).run()
    assert not at.exception and len(charts(at)) == 2
    before = charts(at)
    at.slider(key="map_layer").set_value(3).run()
    assert charts(at) != before


@pytest.mark.parametrize("text, message", [("\x00\x01binary\x02" * 20, "binary"), ("word " * 50_000, "at most")])
def test_bad_typed_text_gets_a_message(txl, text, message):
    at = show(txl, "attention")
    at.radio(key="map_source").set_value("yours").run()
    at.text_area(key="map_text").input(text).run()
    assert not at.exception
    assert any(message in w.value for w in at.warning), [w.value for w in at.warning]


def test_generation_shows_three_columns_and_follows_the_seed(txl):
    at = show(txl, "generate")
    first = [h.proto.body for h in at.get("html")]
    assert len(first) >= 4  # the theme's CSS + XL, reference, vanilla
    at.number_input(key="gen_seed").set_value(5).run()
    assert not at.exception and [h.proto.body for h in at.get("html")] != first
    assert any("perplexity" in c.value for c in at.caption)


def test_context_curve_runs_in_the_background(txl):
    at = show(txl, "context")
    at.select_slider(key="ctx_tokens").set_value(5_000).run()
    at.multiselect(key="ctx_mems").set_value([0, 64]).run()
    at.button[0].click().run()
    wait_for_job(at)
    assert any("finished" in s.value for s in at.success)
    assert any("live run" in c.proto.spec for c in at.get("plotly_chart"))


def test_speed_is_measured_in_the_background(txl):
    at = show(txl, "speed")
    at.multiselect(key="speed_lengths").set_value([64, 128]).run()
    at.button[0].click().run()
    wait_for_job(at)
    assert any("finished" in s.value for s in at.success)
    assert any(c.value.startswith("Measured now") for c in at.caption)
    assert len(at.get("plotly_chart")) == 2


def test_bad_view_in_the_link_warns(clear_streamlit_caches):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.query_params["view"] = "nonsense"
    at.switch_page("app_pages/txl.py").run()
    assert not at.exception and any("nonsense" in w.value for w in at.warning)


def test_missing_wikitext_gives_a_clear_error(clear_streamlit_caches, monkeypatch, tmp_path):
    from engine.data import wikitext
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for cached in (wikitext.lines, wikitext.vocab, wikitext.ids):
        cached.cache_clear()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("app_pages/txl.py").run()
    at.segmented_control(key="txl_view").set_value("generate").run()
    for cached in (wikitext.lines, wikitext.vocab, wikitext.ids):
        cached.cache_clear()
    assert not at.exception
    assert any("WikiText-2 is not available" in e.value for e in at.error)


def test_damaged_checkpoint_is_reported(clear_streamlit_caches, monkeypatch, tmp_path):
    import shutil
    from engine import api
    for name in ("txl-wikitext2", "vanilla-wikitext2"):
        shutil.copytree(api.BUNDLED_DIR / name, tmp_path / name)
    (tmp_path / "txl-wikitext2" / "model.safetensors").write_bytes(b"garbage")
    monkeypatch.setattr(api, "BUNDLED_DIR", tmp_path)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("app_pages/txl.py").run()
    at.segmented_control(key="txl_view").set_value("generate").run()
    assert not at.exception
    assert any("cannot be loaded" in e.value for e in at.error)


def test_generation_from_the_lecture_slide_shows_the_papers_continuation(txl):
    at = show(txl, "generate")
    at.radio(key="gen_source").set_value("lecture").run()
    assert not at.exception and not at.error
    assert any("the paper's Transformer-XL" in e.label for e in at.expander)
    assert any(m.label == "Prompt tokens" for m in at.metric)
