"""The Autoencoders page through Streamlit's AppTest: every view runs, controls change what is shown,
the linear-autoencoder job runs in the background and closes the principal angles, bad links warn."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from engine.data import faces
from tests.conftest import ROOT

@pytest.fixture
def app(clear_streamlit_caches) -> AppTest:
    """The app, not yet run: each test opens the page directly (the home page's gallery costs seconds)."""
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def ae(app: AppTest, view: str) -> AppTest:
    app.switch_page("app_pages/autoencoders.py").run()
    if view != app.segmented_control(key="ae_view").value:
        app.segmented_control(key="ae_view").set_value(view).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    return app


def image_urls(at: AppTest) -> list[str]:
    return [url for im in at.image for url in im.value]


@pytest.mark.parametrize("view", ["linear", "codes"])  # the other views run in the tests below
def test_view_runs(app, view):
    at = ae(app, view)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Autoencoders vs PCA"
    if view == "codes":
        assert image_urls(at) and len(at.get("plotly_chart")) == 2, "both scatters and the decoded digit"


def test_bottleneck_size_changes_the_reconstructions(app):
    at = ae(app, "shallow")
    before = image_urls(at)
    at.select_slider(key="ae_shallow_k").set_value(2).run()
    assert not at.exception and image_urls(at) != before
    assert "K = 2" in at.caption[0].value


def test_deep_view_shows_both_errors_and_new_digits(app):
    at = ae(app, "deep")
    labels = [m.label for m in at.metric]
    assert any("Deep autoencoder" in x for x in labels) and any("PCA(30)" in x for x in labels)
    ae_error, pca_error = (float(m.value) for m in at.metric[:2])
    assert ae_error <= 0.5 * pca_error, "the bundled deep AE meets the target: at most half of PCA(30)"
    before = image_urls(at)
    at.number_input(key="ae_deep_seed").set_value(1).run()
    assert not at.exception and image_urls(at) != before


@pytest.mark.skipif(not faces.available(), reason="olivettifaces.mat is not in the data folder")
def test_faces_choice_shows_both_errors_and_new_faces(app):
    at = ae(app, "deep")
    at.segmented_control(key="ae_deep_data").set_value("faces").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "625-2000-1000-500-30" in at.subheader[0].value
    ae_error, pca_error, ratio = (float(m.value) for m in at.metric[:3])
    assert 0 < ae_error < pca_error and ratio == pytest.approx(ae_error / pca_error, abs=0.01)
    table = at.dataframe[0].value
    assert list(table["squared error"]) == ["deep AE", "PCA(30)"] and table.shape[1] == 11, "10 faces"
    before = image_urls(at)
    at.number_input(key="ae_faces_seed").set_value(3).run()
    assert not at.exception and image_urls(at) != before


def test_faces_choice_without_the_data_says_so(monkeypatch, clear_streamlit_caches, tmp_path):
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))  # an empty data folder: no faces/olivettifaces.mat
    at = ae(AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60), "deep")
    at.segmented_control(key="ae_deep_data").set_value("faces").run()
    assert not at.exception and not at.error
    assert any("not installed" in i.value and "DGM_DATA_DIR" in i.value for i in at.info), [i.value for i in at.info]
    assert not at.metric and not at.image


def test_retrieval_query_changes_the_neighbours(app):
    at = ae(app, "retrieval")
    before = image_urls(at)
    at.number_input(key="ae_query").set_value(7).run()
    assert not at.exception and image_urls(at) != before
    assert at.query_params["digit"] == "7"


def test_linear_autoencoder_job_closes_the_principal_angles(app):
    at = ae(app, "linear")
    at.select_slider(key="ae_lin_k").set_value(2)
    at.slider(key="ae_lin_epochs").set_value(10)
    at.button[0].click().run()  # the form's submit button
    job = at.session_state["jobs"]["ae-linear"]
    deadline = time.time() + 60
    while job.running and time.time() < deadline:
        time.sleep(0.5)
    assert job.status == "done", job.error
    first, last = job.history[0], job.history[-1]
    assert last["mean_angle"] < 5 < 20 < first["mean_angle"], (first, last)
    at.run()
    assert not at.exception
    assert len(image_urls(at)) == 2, "the two sets of basis images"
    assert at.get("plotly_chart")


def test_out_of_range_view_warns(clear_streamlit_caches):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.switch_page("app_pages/autoencoders.py")
    at.query_params["view"] = "nonsense"
    at.run()
    assert not at.exception
    assert any("view='nonsense'" in w.value for w in at.warning)
    assert at.segmented_control(key="ae_view").value == "shallow"
