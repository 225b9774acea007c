"""The NADE and MADE page through AppTest: every view runs, its controls change what is drawn and go into
the URL, a shared link opens where it points and a bad one warns, training from the page gives a model the
other views (and the mask-ensemble view, for several masks) then use, and a missing or corrupt checkpoint
gives a message. Needs the bundled MADE (made-mnist); NADE is used where it is installed."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app import made_views
from engine import api
from tests import apptest
from tests.conftest import ROOT

PAGE = "app_pages/made.py"
CHECKPOINTS = ROOT / "assets" / "checkpoints"
pytestmark = pytest.mark.skipif(not (CHECKPOINTS / "made-mnist" / "model.safetensors").exists(),
                                reason="the bundled MADE (made-mnist) is not installed")


def open_view(view: str, **params) -> AppTest:
    return apptest.open_view(PAGE, view, **params)


metrics = apptest.metrics
param = apptest.param


@pytest.mark.parametrize("view", ["chain", "masks", "sampling", "train", "nll", "ensemble"])
def test_view_runs_without_errors(clear_streamlit_caches, view):
    at = open_view(view)
    assert not at.error and not at.warning, [e.value for e in [*at.error, *at.warning]]
    assert at.title[0].value == "NADE and MADE"
    assert "ensemble" not in at.segmented_control(key="made_view").options or made_views.ensemble_sources()


def test_chain_rule_terms_add_up_and_follow_the_digit(clear_streamlit_caches):
    at = open_view("chain", digit=3)
    assert at.number_input(key="made_chain_idx").value == 3
    nats = float(metrics(at)["−log p(x)"].split()[0])
    x = api.mnist.binarized("test")[3]
    with torch.no_grad():
        exact = -float(api.load("made-mnist").log_prob(x[None])[0])
    assert nats == pytest.approx(exact, abs=0.06)
    at.number_input(key="made_chain_idx").set_value(7).run()
    assert float(metrics(at)["−log p(x)"].split()[0]) != nats and param(at, "digit") == "7"
    assert len(apptest.charts(at)) == 2


def test_chain_rule_on_a_drawing_and_bad_input(clear_streamlit_caches):
    at = open_view("chain")
    at.radio(key="made_chain_src").set_value("draw").run()
    assert not at.exception and any("Draw a digit" in i.value for i in at.info) and not at.metric
    at.session_state["made_chain_ink"] = __import__("numpy").eye(28, dtype="float32")
    at.run()
    assert not at.exception and "−log p(x)" in metrics(at)
    at.radio(key="made_chain_src").set_value("upload").run()
    at.file_uploader(key="made_chain_up").set_value(("x.png", b"\x89PNG broken", "image/png")).run()
    assert not at.exception and any("Could not use x.png" in e.value for e in at.error)
    at = open_view("chain", digit=99_999, model="gan")
    assert len(at.warning) == 2 and at.number_input(key="made_chain_idx").value == 0


def test_masks_redraw_with_the_ordering_and_the_connectivity(clear_streamlit_caches):
    at = open_view("masks")
    before = apptest.charts(at)
    at.button(key="made_resample").click().run()
    assert param(at, "mseed") == "1" and apptest.charts(at) != before
    at.radio(key="made_ordering").set_value("random").run()
    at.number_input(key="made_order_seed").set_value(5).run()
    assert param(at, "ordering") == "random" and param(at, "oseed") == "5"
    assert not at.exception
    shared = open_view("masks", ordering="random", oseed=5, mseed=1)
    assert apptest.charts(shared)[:2] == apptest.charts(at)[:2]
    bad = open_view("masks", ordering="sideways", mseed=-4, row=40)
    assert len(bad.warning) == 3 and bad.radio(key="made_ordering").value == "natural"


def test_what_one_output_pixel_sees(clear_streamlit_caches):
    at = open_view("masks", row=14, col=14)
    caption = next(c for im in at.image for c in im.captions if c and "What output (14, 14) sees" in c)
    depends, unconnected = (int(w) for w in caption.replace(",", "").split() if w.isdigit() and w not in ("14",))
    assert depends + unconnected == 14 * 28 + 14  # every earlier pixel in raster order is one or the other
    at.slider(key="made_row").set_value(0).run()
    assert param(at, "row") == "0"


def test_sampling_frames_follow_the_seed(clear_streamlit_caches):
    at = open_view("sampling", seed=3)
    spec = json.loads(apptest.charts(at)[0])
    assert len(spec["frames"]) == 784 // 14 + 1 and spec["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    assert spec["layout"]["sliders"][0]["steps"][-1]["label"] == "784"
    at.number_input(key="made_seed").set_value(4).run()
    assert apptest.charts(at)[0] != json.dumps(spec) and param(at, "seed") == "4"
    at.selectbox(key="made_every").set_value(56).run()
    assert len(json.loads(apptest.charts(at)[0])["frames"]) == 784 // 56 + 1 and param(at, "every") == "56"
    again = open_view("sampling", seed=3)
    assert apptest.charts(again)[0] == json.dumps(spec) or json.loads(apptest.charts(again)[0]) == spec
    bad = open_view("sampling", seed="x", n=3, every=5)
    assert len(bad.warning) == 3


def test_nll_view_shows_the_measured_and_the_paper_numbers(clear_streamlit_caches):
    at = open_view("nll")
    table = at.dataframe[0].value
    models = list(table["model"])
    test = api.read_metrics(api.resolve("made-mnist")).get("test_nll")
    if test:
        row = table[table["model"].str.startswith("MADE (bundled)")].iloc[0]
        assert row["nats"] == pytest.approx(test["nats"])
    assert any(m.startswith("Paper: MADE") for m in models) and any(m.startswith("Paper: NADE") for m in models)
    assert set(table[table["model"].str.startswith("Paper")]["nats"]) == {88.04, 88.33}


@pytest.mark.skipif(not (CHECKPOINTS / "made-ensemble-mnist" / "model.safetensors").exists(),
                    reason="the bundled 8-mask MADE is not installed")
def test_bundled_mask_ensemble_is_a_mixture_that_beats_its_first_mask(clear_streamlit_caches):
    at = open_view("ensemble")
    assert at.radio(key="made_ensemble_model").value == "ensemble"
    curve = json.loads(apptest.charts(at)[0])["data"][0]
    stored = api.read_metrics(api.resolve("made-ensemble-mnist"))["test_nll"]["mask_ensemble"]
    assert curve["x"] == list(range(1, 9)) and curve["y"] == pytest.approx(stored["nats"])
    assert curve["y"][-1] < curve["y"][0]  # the mixture of 8 masks is better than mask 1 alone
    table = open_view("nll").dataframe[0].value
    mixture = table[table["model"].str.contains("the mixture of its 8 masks")]
    assert len(mixture) == 1 and mixture.iloc[0]["nats"] == pytest.approx(stored["nats"][-1])


def test_training_from_the_page_gives_a_model_the_other_views_use(clear_streamlit_caches, monkeypatch):
    make_trainer = api.make_trainer
    monkeypatch.setattr(api, "make_trainer", lambda model, settings, **kw: make_trainer(
        model, {**settings, "max_steps": 6}, **{**kw, "log_every": 3}))
    at = open_view("train")
    at.select_slider(key="made_train_hidden").set_value(100)
    at.select_slider(key="made_train_masks").set_value(2)
    at.button[0].click().run()
    assert at.get("plotly_chart") or any(b.label == "Cancel" for b in at.button)
    apptest.wait_for_job(at, 240)
    assert not at.exception and any("Your MADE is now a choice" in i.value for i in at.info)
    assert at.get("plotly_chart")
    options = at.segmented_control(key="made_view").options
    assert "Mask ensembles" in options
    apptest.show(at, "made_view", "ensemble")
    assert "Your MADE" in at.radio(key="made_ensemble_model").options
    at.radio(key="made_ensemble_model").set_value("yours").run()
    assert not at.exception and at.radio(key="made_ensemble_model").value == "yours"
    curve = json.loads(apptest.charts(at)[0])["data"][0]
    assert curve["x"] == [1, 2] and all(80 < v < 560 for v in curve["y"])
    sums = at.dataframe[0].value
    assert list(sums["mixture"].round(4)) == [1.0, 1.0]
    apptest.show(at, "made_view", "chain")
    assert "Your MADE" in at.radio(key="made_chain_model").options
    apptest.show(at, "made_view", "nll")
    assert any(m.startswith("Your MADE") for m in at.dataframe[0].value["model"])


def test_missing_or_corrupt_checkpoint_gives_a_message(clear_streamlit_caches, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    shutil.copytree(CHECKPOINTS / "made-mnist", folder / "made-mnist", ignore=shutil.ignore_patterns("resume.pt"))
    monkeypatch.setattr(api, "BUNDLED_DIR", folder)
    (folder / "made-mnist" / "model.safetensors").write_bytes(b"broken")
    at = open_view("sampling")
    assert any("cannot be loaded" in e.value for e in at.error) and not apptest.charts(at)
    shutil.rmtree(folder / "made-mnist")
    at = open_view("chain")
    assert any("missing" in e.value for e in at.error)
    assert open_view("masks").get("plotly_chart")  # the masks need no checkpoint
    assert any("NADE" in i.value and "missing" in i.value for i in open_view("nll").info)
