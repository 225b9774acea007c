"""The deep belief net page through AppTest on the bundled dbn-mnist: every view runs, controls change what
is drawn and go into the URL, a build job runs layer by layer and can be shown everywhere, and bad input
(a broken upload, an empty pad, absurd URL values, a missing or corrupt checkpoint) gives a message."""
from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from engine import api
from tests import apptest

PAGE = "app_pages/dbn.py"
VIEWS = ["build", "features", "samples", "likelihood"]


def open_view(view: str, **params) -> AppTest:
    return apptest.open_view(PAGE, view, **params)


@pytest.mark.parametrize("view", VIEWS)
def test_view_runs_without_errors(clear_streamlit_caches, view):
    at = open_view(view)
    assert not at.error and not at.warning, [e.value for e in [*at.error, *at.warning]]
    assert at.title[0].value == "Deep belief nets"


def test_build_view_shows_the_bundled_steps(clear_streamlit_caches):
    at = open_view("build")
    table = at.dataframe[0].value
    assert list(table["step"])[:2] == [1, 2]
    assert "AIS" in table["estimator"][0] and "lower bound" in table["estimator"][1]
    assert table["test log-likelihood (nats)"][1].startswith("≥ -")
    ll = api.read_metrics(api.resolve("dbn-mnist"))["test_log_likelihood"]
    assert f"{ll['lower_bound']:.2f}" in " ".join(table["test log-likelihood (nats)"])


def test_features_layers_differ_and_go_into_the_url(clear_streamlit_caches):
    at = open_view("features")
    assert apptest.param(at, "layer") == "2" and len(at.image) == 3  # two grids and one unit taken apart
    two = apptest.images(at)
    at.radio(key="dbn_layer").set_value(1).run()
    assert apptest.param(at, "layer") == "1" and len(at.image) == 1 and apptest.images(at)[0] not in two
    at = open_view("features", layer=9)
    assert len(at.warning) == 1 and at.radio(key="dbn_layer").value == 2


def test_unit_slider_takes_another_unit_apart(clear_streamlit_caches):
    at = open_view("features")
    before = at.latex[-1].value
    at.slider(key="dbn_unit").set_value(5).run()
    assert at.latex[-1].value != before


def test_samples_filmstrip_and_browser_animation(clear_streamlit_caches):
    at = open_view("samples", steps=100)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    labels = [s["label"] for s in fig["layout"]["sliders"][0]["steps"]]
    assert labels[0] == "0 steps" and labels[-1] == "100 steps" and len(fig["frames"]) == len(labels)
    strip = apptest.images(at)[0]
    at.select_slider(key="dbn_steps").set_value(500).run()
    assert apptest.param(at, "steps") == "500" and apptest.images(at)[0] != strip
    at.radio(key="dbn_start").set_value("test digits passed up").run()
    assert not at.exception and len(at.image) == 1
    at = open_view("samples", steps=7)
    assert len(at.warning) == 1 and at.select_slider(key="dbn_steps").value == 1000


def test_likelihood_numbers_are_labelled_and_ordered(clear_streamlit_caches):
    at = open_view("likelihood", digit=3)
    m = apptest.metrics(at)
    ll = api.read_metrics(api.resolve("dbn-mnist"))["test_log_likelihood"]
    assert m["DBN: variational lower bound"] == f"{ll['lower_bound']:.2f} nats"
    assert "Layer 1 alone (the RBM): AIS estimate" in m
    bound = float(m["Bound: mean log w"].split()[0])
    at.select_slider(key="dbn_k").set_value(10000).run()
    m = apptest.metrics(at)
    assert float(m["IS estimate, k = 10,000"].split()[0]) >= bound - 1e-6
    assert apptest.param(at, "digit") == "3"
    at.number_input(key="dbn_like_idx").set_value(4).run()
    assert float(apptest.metrics(at)["Bound: mean log w"].split()[0]) != bound
    at = open_view("likelihood", digit=123456)
    assert len(at.warning) == 1


def test_bad_upload_and_empty_pad_give_messages(clear_streamlit_caches):
    at = open_view("likelihood")
    at.radio(key="dbn_like_src").set_value("upload").run()
    at.file_uploader(key="dbn_like_up").set_value(("x.png", b"\x89PNG broken", "image/png")).run()
    assert not at.exception and any("Could not use x.png" in e.value for e in at.error)
    at.radio(key="dbn_like_src").set_value("draw").run()
    assert not at.exception and any("Draw a digit" in i.value for i in at.info)


def test_bad_view_in_the_link_warns(clear_streamlit_caches):
    at = open_view("nonsense")
    assert len(at.warning) == 1 and at.subheader[0].value.startswith("Greedy learning")


def test_a_small_build_runs_layer_by_layer_and_can_be_shown(clear_streamlit_caches):
    at = open_view("build")
    form = at.get("form")[0] if at.get("form") else None
    assert form is not None
    at.select_slider[0].set_value(50)
    at.select_slider[1].set_value(50)
    at.slider[0].set_value(1)
    at.button[0].click().run()
    apptest.wait_for_job(at, seconds=300)
    assert not at.exception and any("finished" in s.value for s in at.success)
    labels = list(apptest.metrics(at))
    assert "Test log-likelihood (cheap AIS estimate)" in labels and "Lower bound on the test log-likelihood" in labels
    show = next(b for b in at.button if b.label == "Show this DBN on every view")
    show.click().run()
    assert at.radio(key="dbn_source").value == "the DBN built on this page"
    apptest.show(at, "dbn_view", "likelihood")
    assert "DBN: variational lower bound" in apptest.metrics(at)
    apptest.show(at, "dbn_view", "samples")
    assert len(at.image) == 1


def test_missing_or_corrupt_checkpoint_gives_a_message(clear_streamlit_caches, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    shutil.copytree(api.resolve("dbn-mnist"), folder / "dbn-mnist")
    monkeypatch.setattr(api, "BUNDLED_DIR", folder)
    (folder / "dbn-mnist" / "model.safetensors").write_bytes(b"broken")
    at = open_view("features")
    assert any("cannot be loaded" in e.value for e in at.error) and not at.image
    assert any("No deep belief net" in i.value for i in at.info)
    shutil.rmtree(folder / "dbn-mnist")
    at = open_view("samples")
    assert any("No deep belief net" in i.value for i in at.info) and not at.image
