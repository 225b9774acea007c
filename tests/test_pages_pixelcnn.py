"""The PixelCNN page through AppTest on the bundled PixelCNN and gated PixelCNN: every view runs, the controls
change what is drawn and go into the URL, completion keeps the given rows, the receptive field at (14, 14)
shows PixelCNN's 28-pixel blind spot and none for the gated net, both samplers agree, and bad input (a broken
upload, an empty pad, out-of-range URL settings, a missing or corrupt checkpoint) gives a message."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import pixelcnn_views as views
from engine import api, cards
from tests import apptest
from tests.conftest import ROOT

PAGE = "app_pages/pixelcnn.py"
VIEWS = ["generate", "complete", "field", "masks", "speed", "nll"]
BUNDLED = ROOT / "assets" / "checkpoints"
needs_bundled = pytest.mark.skipif(not all((BUNDLED / name / "model.safetensors").exists() for name, _ in views.NETS.values()),
                                reason="the bundled pixelcnn-mnist and gated-pixelcnn-mnist checkpoints are not there")


def open_view(view: str, **params) -> AppTest:
    return apptest.open_view(PAGE, view, **params)


metrics = apptest.metrics
param = apptest.param


@needs_bundled
@pytest.mark.parametrize("view", VIEWS)
def test_view_runs_without_errors(clear_streamlit_caches, view):
    at = open_view(view, every=28)
    assert not at.error and not at.warning, [e.value for e in [*at.error, *at.warning]]
    assert at.title[0].value == "PixelCNN, pixel by pixel"


@needs_bundled
def test_generation_frames_reach_the_browser_and_the_seed_is_shared(clear_streamlit_caches):
    at = open_view("generate", every=28, seed=3)
    (spec,) = apptest.charts(at)
    assert '"frames"' in spec and spec.count('"name":"') >= 29  # 28 rows + the finished image, one frame each
    assert param(at, "seed") == "3" and param(at, "every") == "28"
    at.number_input(key="pcnn_seed").set_value(4).run()
    assert not at.exception and apptest.charts(at)[0] != spec and param(at, "seed") == "4"
    at.segmented_control(key="pcnn_gen_net").set_value("gated").run()
    assert not at.exception and param(at, "net") == "gated" and "Gated PixelCNN, seed 4" in at.caption[0].value


@needs_bundled
def test_bad_url_values_warn(clear_streamlit_caches):
    at = open_view("generate", every=5, seed=-1, focus=99, net="wavenet")
    assert len(at.warning) == 4, [w.value for w in at.warning]
    assert at.select_slider(key="pcnn_every").value == 7 and at.number_input(key="pcnn_seed").value == 0
    at = open_view("nonsense")
    assert any("view='nonsense'" in w.value for w in at.warning)


@needs_bundled
def test_completion_keeps_the_given_rows(clear_streamlit_caches):
    at = open_view("complete", rows=10)
    assert metrics(at)["Given pixels changed"] == f"0 of {10 * 28 * 8:,}"
    before = at.image[0].value
    at.slider(key="pcnn_rows").set_value(20).run()
    assert not at.exception and metrics(at)["Given pixels changed"] == f"0 of {20 * 28 * 8:,}"
    assert at.image[0].value != before and param(at, "rows") == "20"


@needs_bundled
def test_completion_bad_upload_and_empty_pad(clear_streamlit_caches):
    at = open_view("complete")
    at.radio(key="pcnn_comp_src").set_value("upload").run()
    at.file_uploader(key="pcnn_comp_up").set_value(("x.png", b"\x89PNG broken", "image/png")).run()
    assert not at.exception and any("Could not use x.png" in e.value for e in at.error) and not at.metric
    at.radio(key="pcnn_comp_src").set_value("draw").run()
    assert not at.exception and any("Draw a digit" in i.value for i in at.info) and not at.metric
    ink = np.zeros((28, 28), dtype=np.float32)
    ink[4:24, 13:15] = 1
    at.session_state["pcnn_comp_ink"] = ink
    at.run()
    assert not at.exception and metrics(at)["Given pixels changed"].startswith("0 of")


@needs_bundled
def test_blind_spot_at_the_centre_is_28_for_pixelcnn_and_0_for_gated(clear_streamlit_caches):
    at = open_view("field", r=14, c=14)
    values = [m.value for m in at.metric if m.label == "Blind spot"]
    assert values == ["28 pixels", "0 pixels"]
    at.slider(key="pcnn_rf_layers").set_value(1).run()  # the 7x7 type-A layer alone: 3 rows of 7 + 3
    fields = [m.value for m in at.metric if m.label == "Pixels in the field"]
    assert fields[0] == "24 of 406" and param(at, "layer") == "1"
    assert [m.value for m in at.metric if m.label == "Blind spot"][0] == "0 pixels"
    at.number_input(key="pcnn_rf_row").set_value(0).run()
    assert not at.exception and param(at, "r") == "0"
    assert [m.value for m in at.metric if m.label == "Pixels in the field"][0] == "3 of 14"


def test_field_categories_and_kernel_picture():
    field = np.zeros((28, 28), bool)
    field[13, 13] = True
    blind = np.zeros((28, 28), bool)
    blind[13, 15] = True
    cats = views.field_categories(field, blind, (14, 14))
    assert cats[14, 14] == "pixel" and cats[13, 13] == "field" and cats[13, 15] == "blind"
    assert cats[0, 0] == "earlier" and cats[14, 15] == "later" and cats[27, 0] == "later"
    assert views.kernel_png(np.ones((3, 3)))[:8] == b"\x89PNG\r\n\x1a\n"


@needs_bundled
def test_masks_view_draws_the_kernels_and_says_why_the_vertical_mask_is_correct(clear_streamlit_caches):
    at = open_view("masks")
    captions = [c for im in at.image for c in im.captions]
    assert any("layer 1 (A): 7×7, 24 taps" in c for c in captions) and any("(B): 3×3, 5 taps" in c for c in captions)
    assert any("block 1 vertical: 7×7, 28 taps" in c for c in captions)
    assert any("shifted down one row" in i.value for i in at.info)
    assert len(at.get("graphviz_chart")) == 2


@needs_bundled
def test_both_samplers_agree_when_timed(clear_streamlit_caches):
    at = open_view("speed")
    assert any("Press the button" in i.value for i in at.info) and not at.metric
    at.select_slider(key="pcnn_naive_pixels").set_value(14).run()
    at.button(key="pcnn_time").click().run()
    shown = metrics(at)
    assert not at.exception and shown["Samples"] == "identical"
    assert float(shown["Speed-up"].rstrip("×")) > 1


@needs_bundled
def test_nll_view_shows_the_checkpoints_numbers_and_the_paper(clear_streamlit_caches):
    at = open_view("nll")
    test = api.read_metrics(api.resolve("pixelcnn-mnist"))["test_nll"]
    assert metrics(at)["PixelCNN (ours): test NLL"] == f"{test['nats']:.2f} nats"
    text = " ".join(m.value for m in at.markdown)
    assert "81.30" in text and "Larochelle" in text


@needs_bundled
def test_missing_or_corrupt_checkpoint_gives_a_message(clear_streamlit_caches, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    for name, _ in views.NETS.values():
        shutil.copytree(api.resolve(name), folder / name)
    monkeypatch.setattr(api, "BUNDLED_DIR", folder)
    (folder / "gated-pixelcnn-mnist" / "model.safetensors").write_bytes(b"broken")
    at = open_view("field", layer=2)
    assert any("cannot be loaded" in e.value for e in at.error)
    assert [m.value for m in at.metric if m.label == "Blind spot"] and any("not available" in i.value for i in at.info)
    shutil.rmtree(folder / "pixelcnn-mnist")
    shutil.rmtree(folder / "gated-pixelcnn-mnist")
    at = open_view("generate")
    assert sum("missing" in e.value for e in at.error) == 2 and not at.get("plotly_chart")


def test_card_gives_nats_bits_per_dim_the_paper_and_the_binarization():
    training = {"steps": 3000, "epochs": 2, "seconds": 1800, "device": "cpu", "preset": "bundled",
                "train": {"batch_size": 32}}
    test = {"nats": 90.0, "stderr": 0.3, "bits_per_dim": 90.0 / 784 / 0.6931471805599453, "images": 10_000,
            "split": "MNIST test split, binarized once with seed 0"}
    card = cards.pixelcnn_card(api.build("pixelcnn", channels=8, layers=3), {"training": training, "test_nll": test})
    assert "Test NLL 90.00 ± 0.30 nats per image** (0.1656 bits/dim" in card and "averaged over 10,000 digits: MNIST test split" in card
    assert "81.30" in card and "Larochelle" in card and "3000 steps of batch 32" in card
    gated = cards.pixelcnn_card(api.build("gated-pixelcnn", channels=8, layers=3), {"training": training})
    assert "Gated PixelCNN" in gated and "not yet evaluated" in gated and "no binarized-MNIST number" in gated


@pytest.mark.parametrize("net", ["pixelcnn", "gated-pixelcnn"])
def test_compare_samplers_returns_both_samplers_images(net):
    model = api.build(net, channels=8, layers=3).eval()
    r = api.compare_samplers(model, 2, seed=1, naive_pixels=60)
    assert r["identical"] and r["naive_scaled"] and r["naive_measured_pixels"] == 60
    cached, naive = r["samples_cached"], r["samples_naive"]
    assert cached.shape == naive.shape == (2, 784) and cached[:, :60].equal(naive[:, :60])
    assert not naive[:, 60:].any()  # the naive sampler never drew past the pixels it ran
