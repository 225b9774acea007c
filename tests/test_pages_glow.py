"""The Glow page through AppTest on the bundled Glow: every view runs, the temperature and layer sliders
change what is drawn and go into the URL, a digit survives the round trip, and bad input (a broken upload,
an empty pad, out-of-range URL settings, a missing or corrupt checkpoint) gives a message."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import digit_input, glow_views
from engine import api
from tests import apptest

PAGE = "app_pages/glow.py"
VIEWS = ["samples", "encode", "interpolate", "inside", "bits"]


def open_view(view: str, **params) -> AppTest:
    return apptest.open_view(PAGE, view, **params)


def captions(at: AppTest) -> list[str]:
    return [c or "" for im in at.image for c in im.captions]


@pytest.mark.parametrize("view", VIEWS)
def test_view_runs_without_errors(clear_streamlit_caches, view):
    at = open_view(view)
    assert not at.error and not at.warning, [e.value for e in [*at.error, *at.warning]]
    assert at.title[0].value == "Glow on MNIST"


def temperature_figure(at: AppTest) -> dict:
    """The browser-played sample grid: its frames (one per temperature) and its slider."""
    return json.loads(next(c.proto.spec for c in at.get("plotly_chart") if '"temperature T' in c.proto.spec))


def test_every_temperature_is_a_frame_of_one_draw(clear_streamlit_caches):
    at = open_view("samples")
    fig = temperature_figure(at)
    sources = [f["data"][0]["source"] for f in fig["frames"]]
    assert len(sources) == 13 and len(set(sources)) == 13  # T = 0.0 .. 1.2, all different pictures
    assert fig["layout"]["sliders"][0]["active"] == 7 and fig["data"][0]["source"] == sources[7]  # T = 0.7 first
    assert [s["label"] for s in fig["layout"]["sliders"][0]["steps"]][:3] == ["0.0", "0.1", "0.2"]
    strip = apptest.images(at)[0]
    at.number_input(key="glow_seed").set_value(7).run()
    assert temperature_figure(at)["frames"][7]["data"][0]["source"] != sources[7] and apptest.images(at)[0] != strip
    assert at.query_params["seed"] in ("7", ["7"])


def test_a_shared_link_opens_at_its_temperature_and_a_bad_one_warns(clear_streamlit_caches):
    at = open_view("samples", t10=3, seed=42)
    fig = temperature_figure(at)
    assert fig["layout"]["sliders"][0]["active"] == 3 and at.number_input(key="glow_seed").value == 42
    assert fig["data"][0]["source"] == fig["frames"][3]["data"][0]["source"]
    at = open_view("samples", t10=99, seed="x")
    assert len(at.warning) == 2 and temperature_figure(at)["layout"]["sliders"][0]["active"] == 7


def test_a_test_digit_comes_back_identical(clear_streamlit_caches):
    at = open_view("encode")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["8-bit image back"] == "identical"
    assert float(metrics["Largest pixel error"]) < 1e-4
    bpd = float(metrics["This digit, bits/dim"])
    assert 0.3 < bpd < 3
    at.number_input(key="glow_enc_idx").set_value(5).run()
    assert float({m.label: m.value for m in at.metric}["This digit, bits/dim"]) != bpd


def test_bad_upload_and_empty_pad_give_messages(clear_streamlit_caches):
    at = open_view("encode")
    at.radio(key="glow_enc_src").set_value("upload").run()
    at.file_uploader(key="glow_enc_up").set_value(("x.png", b"\x89PNG broken", "image/png")).run()
    assert not at.exception and any("Could not use x.png" in e.value for e in at.error)
    at.radio(key="glow_enc_src").set_value("draw").run()
    assert not at.exception and any("Draw a digit" in i.value for i in at.info)
    assert not at.metric


def test_a_drawing_is_encoded(clear_streamlit_caches):
    at = open_view("encode")
    at.radio(key="glow_enc_src").set_value("draw").run()
    ink = np.zeros((28, 28), dtype=np.float32)
    ink[4:24, 13:15] = 1  # a "1"
    at.session_state["glow_enc_ink"] = ink
    at.run()
    assert not at.exception and {m.label: m.value for m in at.metric}["8-bit image back"] == "identical"
    at.button(key="glow_enc_clear").click().run()
    assert not at.exception and not at.metric and any("Draw a digit" in i.value for i in at.info)


def test_interpolation_draws_both_paths_and_the_animation(clear_streamlit_caches):
    at = open_view("interpolate")
    assert len(at.image) == 2 and len(at.get("plotly_chart")) == 1
    before = apptest.images(at)
    at.slider(key="glow_interp_steps").set_value(6).run()
    assert apptest.images(at) != before


def test_every_layer_is_a_frame_and_a_link_picks_the_first(clear_streamlit_caches):
    at = open_view("inside", layer=0)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    frames = fig["frames"]
    assert len(frames) == 52 and fig["layout"]["sliders"][0]["active"] == 0
    assert "Logit" in fig["layout"]["title"]["text"] and fig["layout"]["title"]["text"] == \
        frames[0]["layout"]["title"]["text"]
    assert "Coupling" in frames[4]["layout"]["title"]["text"] and "4×14×14" in frames[4]["layout"]["title"]["text"]
    assert "log s ±" in frames[4]["layout"]["title"]["text"] and "log s ±" not in frames[3]["layout"]["title"]["text"]
    assert len({f["data"][0]["source"] for f in frames}) > 40  # the pictures change from layer to layer
    last = frames[-1]["layout"]["title"]["text"]
    assert "mean +0.0" in last or "mean -0.0" in last  # the top latent is standardized
    assert len(open_view("inside").get("plotly_chart")) == 1
    assert json.loads(open_view("inside").get("plotly_chart")[0].proto.spec)["layout"]["sliders"][0]["active"] == 51
    at = open_view("inside", layer=999, digit=-3)
    assert len(at.warning) == 2


def test_bits_view_adds_up(clear_streamlit_caches):
    at = open_view("bits")
    test = api.read_metrics(api.resolve(glow_views.MODEL))["test_bits_per_dim"]
    assert at.metric[0].value == f"{test['total']:.3f}"
    parts = test["prior"] + test["flow_logdet"] + test["logit_logdet"] + test["quantization"]
    assert parts == pytest.approx(test["total"], abs=1e-6)


def test_missing_or_corrupt_checkpoint_gives_a_message(clear_streamlit_caches, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    shutil.copytree(api.resolve(glow_views.MODEL), folder / glow_views.MODEL)
    monkeypatch.setattr(api, "BUNDLED_DIR", folder)
    (folder / glow_views.MODEL / "model.safetensors").write_bytes(b"broken")
    at = open_view("samples")
    assert any("cannot be loaded" in e.value for e in at.error) and not at.image
    shutil.rmtree(folder / glow_views.MODEL)
    at = open_view("samples")
    assert any("missing" in e.value for e in at.error)


def test_pad_helpers():
    selection = {"points": [{"point_index": 0}, {"point_index": 29}, {"point_index": 9999}, {"x": 1}]}
    assert digit_input.cells(selection) == [0, 29]
    ink = np.zeros((28, 28))
    ink[10, 10] = 1
    soft = digit_input.soften(ink)
    assert soft[10, 10] == 1 and 0 < soft[10, 11] < 1 and soft[12, 12] == 0
    levels = digit_input.as_8bit(np.linspace(0, 1, 784)).numpy() * 256
    assert np.array_equal(levels, np.round(levels)) and levels.max() == 255


def test_overflowing_samples_are_said():
    note = glow_views._overflow_note({1.0: 0, 1.1: 1, 1.2: 2})
    assert "1 at T = 1.1, 2 at T = 1.2" in note and "shown black" in note
    assert glow_views._overflow_note({0.5: 0, 1.2: 0}) == ""
