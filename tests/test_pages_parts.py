"""The part-based features page through AppTest on the bundled parts-faces: every view runs, its controls
change what is drawn (or trained) and go into the URL, bad URL values warn, and a missing faces file or a
missing/corrupt checkpoint gives a message."""
from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from app import parts_views
from engine import api
from tests import apptest

PAGE = "app_pages/parts.py"
VIEWS = ["parts", "groups", "face", "train"]


def open_view(view: str, **params) -> AppTest:
    return apptest.open_view(PAGE, view, **params)


@pytest.mark.parametrize("view", VIEWS)
def test_view_runs_without_errors(clear_streamlit_caches, view):
    at = open_view(view)
    assert not at.error and not at.warning, [e.value for e in [*at.error, *at.warning]]
    assert at.title[0].value == "Part-based features"


def test_parts_view_reports_the_bundled_figures_and_its_order_goes_into_the_url(clear_streamlit_caches):
    at = open_view("parts")
    m = apptest.metrics(at)
    assert float(m["Locality of the parts (median)"]) >= 0.7
    assert float(m["Dead parts"].rstrip("%")) < 20
    before = apptest.images(at)
    at.radio(key="parts_order").set_value("local").run()
    assert apptest.images(at) != before and apptest.param(at, "order") == "local"


def test_groups_slider_changes_the_strips_and_the_url(clear_streamlit_caches):
    at = open_view("groups")
    assert len(at.image) == 2 * 12  # a picture and a strip of parts per group
    before = apptest.images(at)
    at.slider(key="parts_nparts").set_value(7).run()
    assert apptest.images(at) != before and apptest.param(at, "parts") == "7"
    assert all(c.value.startswith("parts ") and c.value.count("(") == 7 for c in at.caption
               if c.value.startswith("parts "))


def test_a_shared_face_link_opens_that_face_and_a_bad_one_warns(clear_streamlit_caches):
    at = open_view("face", face=12, k=5)
    assert at.number_input(key="parts_face").value == 12 and at.slider(key="parts_k").value == 5
    before = apptest.images(at)
    at.number_input(key="parts_face").set_value(200).run()
    assert apptest.images(at) != before and apptest.param(at, "face") == "200"
    at = open_view("face", face=4000, k="x")
    assert len(at.warning) == 2 and at.number_input(key="parts_face").value == 325


def test_training_controls_go_into_the_url_and_decide_what_is_trained(clear_streamlit_caches):
    at = open_view("train", epochs=10)
    at.radio(key="parts_vis").set_value("binary").run()
    at.radio(key="parts_w").set_value("signed").run()
    at.select_slider(key="parts_hidden").set_value("49").run()
    at.select_slider(key="parts_sparsity").set_value("off").run()
    at.select_slider(key="parts_l1").set_value("0.01").run()
    assert [apptest.param(at, k) for k in ("vis", "w", "hidden", "sparsity", "l1", "epochs")] == \
        ["binary", "signed", "49", "off", "0.01", "10"]
    at.button(key="parts_train_go").click().run()
    apptest.wait_for_job(at)
    assert not at.exception and not at.error
    job = at.session_state["jobs"]["parts-train"]
    model, settings = job.result, job.meta["train"]
    assert model.config.visible == "binary" and model.config.n_hidden == 49
    assert settings["nonnegative"] is False and settings["sparsity"] == 0.0 and settings["l1"] == 0.01
    assert model.W.min() < 0  # signed weights were trained
    assert "Dead parts" in apptest.metrics(at)
    at.button[-1].click().run()  # show this model on every view
    assert at.radio(key="parts_source").value == parts_views.USER_LABEL


def test_bad_training_values_in_the_url_warn(clear_streamlit_caches):
    at = open_view("train", vis="purple", hidden=7, sparsity="lots", seed=-3)
    assert len(at.warning) == 4
    assert at.radio(key="parts_vis").value == "gaussian" and at.select_slider(key="parts_hidden").value == "100"


def test_missing_faces_file_says_so(clear_streamlit_caches, tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))
    at = open_view("parts")
    assert any("Olivetti faces are not available" in e.value and "olivettifaces.mat" in e.value for e in at.error)
    assert not at.image


def test_missing_or_corrupt_checkpoint_gives_a_message(clear_streamlit_caches, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    shutil.copytree(api.resolve(parts_views.BUNDLED), folder / parts_views.BUNDLED)
    monkeypatch.setattr(api, "BUNDLED_DIR", folder)
    (folder / parts_views.BUNDLED / "model.safetensors").write_bytes(b"broken")
    at = open_view("parts")
    assert any("cannot be loaded" in e.value for e in at.error)
    assert any("No parts model is available" in i.value for i in at.info) and not at.image
    shutil.rmtree(folder / parts_views.BUNDLED)
    at = open_view("groups")
    assert not at.error and any("No parts model is available" in i.value for i in at.info)
    assert at.button(key="parts_train_go")  # training is still offered
