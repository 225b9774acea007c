"""The GAN page's MNIST views through AppTest: every view runs, controls change what is shown, and a
missing or corrupt checkpoint or snapshot file gives a message instead of a traceback."""
from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from engine import api
from tests.conftest import ROOT
from tests.test_pages import image_urls

VIEWS = ["mnist", "interpolate", "quality"]
NEEDED = ("dcgan-mnist", "wgan-gp-mnist", "mnist-classifier")
pytestmark = pytest.mark.skipif(not all(n in api.bundled() for n in NEEDED),
                                reason="the bundled MNIST GANs are not trained yet (make train-gan)")


def open_view(view: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
    at.switch_page("app_pages/gan.py")
    at.query_params["view"] = view
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("view", VIEWS)
def test_view_runs(clear_streamlit_caches, view):
    at = open_view(view)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Generative adversarial networks"


def test_snapshot_slider_and_seed_change_the_grids(clear_streamlit_caches):
    at = open_view("mnist")
    before = image_urls(at)
    slider = at.select_slider(key="gan_snapshot_dcgan-mnist")
    slider.set_value(slider.options[0]).run()  # options are strings in AppTest
    assert not at.exception
    after_step = image_urls(at)
    assert after_step[0] != before[0] and after_step[1] == before[1]
    at.number_input(key="gan_mnist_seed").set_value(2).run()
    assert image_urls(at)[1] != after_step[1]
    at.radio(key="gan_mnist_model").set_value("wgan-gp-mnist").run()
    assert not at.exception and image_urls(at)[1] != after_step[1]
    assert at.query_params["gan_model"] == "wgan-gp-mnist"


def test_t_slider_and_seeds_change_the_interpolation(clear_streamlit_caches):
    at = open_view("interpolate")
    before = image_urls(at)
    at.slider(key="gan_t").set_value(0.9).run()
    assert not at.exception
    after = image_urls(at)
    assert after[:2] == before[:2] and after[-1] != before[-1]  # only the single image moved
    at.radio(key="gan_t_kind").set_value("spherical").run()
    assert image_urls(at)[-1] != after[-1]
    at.number_input(key="gan_seed_b").set_value(11).run()
    assert image_urls(at)[0] != after[0]
    assert len(at.get("plotly_chart")) == 1


def test_quality_shows_both_models_and_the_floor(clear_streamlit_caches):
    at = open_view("quality")
    labels = [m.label for m in at.metric]
    assert labels.count("Fréchet distance ↓") == 3
    values = [float(m.value) for m in at.metric if m.label == "Fréchet distance ↓"]
    floor = api.read_metrics(api.resolve("dcgan-mnist"))["quality"]["floor"]["fd"]
    assert values[-1] == pytest.approx(floor, abs=0.01)
    assert len(at.get("plotly_chart")) == 3  # the bars and two training-curve panels


@pytest.fixture
def broken_bundle(monkeypatch, tmp_path):
    broken = tmp_path / "checkpoints"
    broken.mkdir()
    for name in NEEDED:
        shutil.copytree(api.BUNDLED_DIR / name, broken / name)
    monkeypatch.setattr(api, "BUNDLED_DIR", broken)
    return broken


def test_corrupt_weights_are_left_out_with_a_message(clear_streamlit_caches, broken_bundle):
    weights = broken_bundle / "dcgan-mnist" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    at = open_view("mnist")
    assert any("cannot be loaded" in e.value and "dcgan-mnist" in e.value for e in at.error)
    assert at.radio(key="gan_mnist_model").options == ["WGAN-GP"]


def test_corrupt_snapshots_give_a_message_and_samples_still_show(clear_streamlit_caches, broken_bundle):
    (broken_bundle / "dcgan-mnist" / "snapshots.safetensors").write_bytes(b"not a safetensors file")
    at = open_view("mnist")
    assert any("snapshots" in e.value and "cannot be read" in e.value for e in at.error)
    assert len(image_urls(at)) == 1  # the fresh samples


def test_no_bundled_gan_is_a_warning(clear_streamlit_caches, broken_bundle):
    for name in ("dcgan-mnist", "wgan-gp-mnist"):
        shutil.rmtree(broken_bundle / name)
    for view in VIEWS:
        at = open_view(view)
        assert not at.error
        assert any("make train-gan" in w.value for w in at.warning)
