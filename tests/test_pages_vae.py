"""The VAE and IWAE pages through AppTest: every view runs, controls change what is shown, bad input gives st.error."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from tests.test_pages import image_urls

VAE_VIEWS = ["bound", "sliders", "manifold", "interpolate", "encode", "train"]


@pytest.fixture
def vae(clear_streamlit_caches) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
    at.switch_page("app_pages/vae.py").run()
    assert not at.exception, at.exception
    return at


def show(at: AppTest, view: str) -> AppTest:
    at.segmented_control(key="vae_view").set_value(view).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("view", VAE_VIEWS)
def test_vae_view_runs(vae, view):
    at = show(vae, view)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Variational autoencoders"


def test_latent_slider_changes_the_decoded_image(vae):
    at = show(vae, "sliders")
    before = image_urls(at)
    at.slider(key="vae_z_vae-mnist-2d_0").set_value(2.0).run()
    assert not at.exception
    assert image_urls(at) != before


def test_interpolation_endpoint_changes_the_strips(vae):
    at = show(vae, "interpolate")
    before = image_urls(at)
    at.number_input(key="vae_to_idx").set_value(5).run()
    assert not at.exception
    assert image_urls(at) != before


def test_bad_upload_on_the_encode_view_is_an_error(vae):
    at = show(vae, "encode")
    at.radio(key="vae_encode_src").set_value("upload").run()
    at.file_uploader(key="vae_encode_up").set_value(("x.png", b"\x89PNG broken", "image/png")).run()
    assert not at.exception
    assert any("Could not use" in e.value for e in at.error)


@pytest.fixture
def iwae(clear_streamlit_caches) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("app_pages/iwae.py").run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("view", ["bound", "compare"])
def test_iwae_view_runs(iwae, view):
    iwae.segmented_control(key="iwae_view").set_value(view).run()
    assert not iwae.exception, [e.value for e in iwae.exception]
    assert not iwae.error
    assert iwae.title[0].value == "Importance-weighted autoencoders"


def test_digit_choice_changes_the_bound_curve(iwae):
    before = iwae.get("plotly_chart")[0].proto.spec
    iwae.number_input(key="iwae_digit").set_value(1).run()
    assert not iwae.exception
    assert iwae.get("plotly_chart")[0].proto.spec != before
