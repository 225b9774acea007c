"""The deep Boltzmann machine page through AppTest: every view runs, its controls change what is drawn and go
into the URL, a shared link opens where it points and a bad one warns, bad uploads and an empty drawing give
messages, training from the page gives a model the other views use, and a missing or corrupt checkpoint gives
a message. Needs the bundled DBM (dbm-mnist)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from engine import api
from tests import apptest
from tests.conftest import ROOT

PAGE = "app_pages/dbm.py"
CHECKPOINTS = ROOT / "assets" / "checkpoints"
pytestmark = pytest.mark.skipif(not (CHECKPOINTS / "dbm-mnist" / "model.safetensors").exists(),
                                reason="the bundled DBM (dbm-mnist) is not installed")


def open_view(view: str, **params) -> AppTest:
    return apptest.open_view(PAGE, view, **params)


@pytest.mark.parametrize("view", ["inference", "compare", "samples", "likelihood", "train"])
def test_view_runs_without_errors(clear_streamlit_caches, view):
    at = open_view(view)
    assert not at.error and not at.warning, [e.value for e in [*at.error, *at.warning]]
    assert at.title[0].value == "Deep Boltzmann machines"


def test_mean_field_animation_follows_the_digit_and_the_bound_rises(clear_streamlit_caches):
    at = open_view("inference", digit=3)
    assert at.number_input(key="dbm_mf_idx").value == 3
    fig = json.loads(apptest.charts(at)[0])
    bound = fig["data"][4]["y"]
    # float32 mean field on the 784-500-1000 model: rises up to its rounding (the float64 enumeration tests are exact)
    assert len(fig["frames"]) == len(bound) == 31 and all(b2 >= b1 - 1e-3 for b1, b2 in zip(bound, bound[1:]))
    assert bound[-1] > bound[0] + 1
    labels = [s["label"] for s in fig["layout"]["sliders"][0]["steps"]]
    assert labels == [str(t) for t in range(31)] and fig["layout"]["sliders"][0]["currentvalue"]["prefix"] == "sweep "
    # the page's number is the engine's bound for this test digit
    model = api.load("dbm-mnist")
    log_z = api.read_metrics(api.resolve("dbm-mnist"))["test_log_likelihood"]["log_z"]["estimate"]
    v = api.mnist.binarized("test")[3]
    expected = float(model.mean_field_frames(v, 30)["bound"][-1]) - log_z
    shown = float(apptest.metrics(at)["After 30 sweeps"].split()[0])
    assert shown == pytest.approx(expected, abs=0.01)
    at.number_input(key="dbm_mf_idx").set_value(8).run()
    assert apptest.param(at, "digit") == "8" and float(apptest.metrics(at)["After 30 sweeps"].split()[0]) != shown


def test_inference_on_a_drawing_and_bad_input(clear_streamlit_caches):
    at = open_view("inference")
    at.radio(key="dbm_mf_src").set_value("draw").run()
    assert not at.exception and any("Draw a digit" in i.value for i in at.info) and not at.metric
    ink = np.zeros((28, 28), dtype="float32")
    ink[4:24, 13:15] = 1
    at.session_state["dbm_mf_ink"] = ink
    at.run()
    assert not at.exception and "After 30 sweeps" in apptest.metrics(at)
    at.radio(key="dbm_mf_src").set_value("upload").run()
    at.file_uploader(key="dbm_mf_up").set_value(("x.png", b"\x89PNG broken", "image/png")).run()
    assert not at.exception and any("Could not use x.png" in e.value for e in at.error)
    bad = open_view("inference", digit=99_999)
    assert len(bad.warning) == 1 and bad.number_input(key="dbm_mf_idx").value == 0


def test_dbn_vs_dbm_occlusion_goes_into_the_url(clear_streamlit_caches):
    at = open_view("compare", digit=5)
    assert "Top-down share of h1's input (DBM)" in apptest.metrics(at)
    assert "DBM: hidden ink recovered" not in apptest.metrics(at)
    at.radio(key="dbm_occl").set_value("bottom").run()
    assert apptest.param(at, "hide") == "bottom" and not at.exception
    m = apptest.metrics(at)
    assert all(0 <= float(m[k].rstrip("%")) <= 100 for k in ("DBN: hidden ink recovered", "DBM: hidden ink recovered"))
    bad = open_view("compare", hide="sideways")
    assert len(bad.warning) == 1 and bad.radio(key="dbm_occl").value == "none"


def test_samples_follow_the_sweeps_and_the_seed(clear_streamlit_caches):
    at = open_view("samples", sweeps=10)
    assert at.select_slider(key="dbm_gsteps").value == "10"
    first = [url for im in at.image for url in im.value]
    assert len(first) == 4
    at.number_input(key="dbm_gseed").set_value(3).run()
    now = [url for im in at.image for url in im.value]
    assert not at.exception and now[0] == first[0] and now[1:3] != first[1:3]  # same training digits, new chains
    captions = " ".join(c.value for c in at.caption)
    assert "binary states" in captions and "mean image" in captions
    bad = open_view("samples", sweeps=7)
    assert len(bad.warning) == 1


def test_likelihood_view_shows_labelled_numbers(clear_streamlit_caches):
    at = open_view("likelihood")
    m = apptest.metrics(at)
    stored = api.read_metrics(api.resolve("dbm-mnist"))["test_log_likelihood"]
    assert m["Mean-field lower bound (test)"] == f"{stored['mf_bound']['mean']:.2f} nats"
    assert m["log Z (AIS estimate)"] == f"{stored['log_z']['estimate']:.2f}"
    table = at.dataframe[0].value
    assert any("paper" in q for q in table["quantity"]) and -84.62 in list(table["nats"])
    curve = json.loads([c for c in apptest.charts(at) if "IS estimate" in c][0])["data"][0]
    assert curve["x"][0] == 1 and len(curve["y"]) == len(curve["x"])


def test_training_from_the_page_gives_a_model_the_other_views_use(clear_streamlit_caches, monkeypatch):
    make_trainer = api.make_trainer
    monkeypatch.setattr(api, "make_trainer", lambda model, settings, **kw: make_trainer(
        model, {**settings, "epochs": 3, "pretrain_epochs": 1}, **{**kw, "log_every": 20}))
    import app.dbm_views as views
    monkeypatch.setattr(api.mnist, "batches", _few_batches(api.mnist.batches))
    at = open_view("train")
    at.select_slider(key="dbm_train_sizes").set_value("50-100")
    at.button[0].click().run()
    apptest.wait_for_job(at, 300)
    assert not at.exception and any(b.label == "Show this model on every view" for b in at.button)
    assert any("MF bound" in c for c in apptest.charts(at))
    next(b for b in at.button if b.label == "Show this model on every view").click().run()
    assert at.radio(key="dbm_source").value == views.USER_LABEL
    apptest.show(at, "dbm_view", "inference")
    assert not at.exception and "After 30 sweeps" in apptest.metrics(at)


def _few_batches(batches):
    """Four batches per epoch, so a page training run takes seconds."""
    def few(split, batch_size, *, generator, **kw):
        for i, b in enumerate(batches(split, batch_size, generator=generator, **kw)):
            if i == 4:
                return
            yield b
    return few


def test_missing_or_corrupt_checkpoint_gives_a_message(clear_streamlit_caches, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    shutil.copytree(CHECKPOINTS / "dbm-mnist", folder / "dbm-mnist", ignore=shutil.ignore_patterns("resume.pt"))
    monkeypatch.setattr(api, "BUNDLED_DIR", folder)
    (folder / "dbm-mnist" / "model.safetensors").write_bytes(b"broken")
    at = open_view("inference")
    assert any("cannot be loaded" in e.value for e in at.error) and not apptest.charts(at)
    assert at.segmented_control(key="dbm_view").value == "train"
    shutil.rmtree(folder / "dbm-mnist")
    at = open_view("likelihood")
    assert any("No DBM is available" in i.value for i in at.info)
