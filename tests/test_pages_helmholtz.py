"""The Helmholtz machine page through AppTest on the bundled checkpoints: every view runs, the controls change
what is drawn and go into the URL, and bad input (a broken upload, an empty pad, absurd URL values, a missing or
corrupt checkpoint) gives a message."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import helmholtz_views
from engine import api
from tests import apptest

PAGE = "app_pages/helmholtz.py"
VIEWS = ["phases", "compare", "explain", "noise"]


def open_view(view: str, **params) -> AppTest:
    return apptest.open_view(PAGE, view, **params)


def figure(at: AppTest, key: str) -> dict:
    """A plotly chart's spec by its element key (AppTest keeps the key in the proto's id)."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if key in c.proto.id]
    assert specs, f"no chart {key}"
    return specs[0]


@pytest.mark.parametrize("view", VIEWS)
def test_view_runs_without_errors(clear_streamlit_caches, view):
    at = open_view(view)
    assert not at.error and not at.warning, [e.value for e in [*at.error, *at.warning]]
    assert at.title[0].value == "Helmholtz machines"
    assert apptest.param(at, "view") == view


def test_wake_sleep_frames_are_one_browser_figure(clear_streamlit_caches):
    at = open_view("phases")
    fig = figure(at, "hm_phases")
    labels = [s["label"] for s in fig["layout"]["sliders"][0]["steps"]]
    assert len(fig["frames"]) == 8 and len({f["data"][0]["source"] for f in fig["frames"]}) == 8
    assert labels == [f"{phase} {i}" for phase in ("wake", "sleep") for i in (1, 2, 3, 4)]
    wake = next(m for m in at.metric if m.label.startswith("Wake step"))
    assert float(wake.delta.split()[0]) > 0  # one wake step raises log p(x, h) for this digit and code
    at.number_input(key="hm_digit_idx").set_value(5).run()
    assert figure(at, "hm_phases")["frames"][0]["data"][0]["source"] != fig["frames"][0]["data"][0]["source"]
    at.number_input(key="hm_seed").set_value(3).run()
    assert apptest.param(at, "digit") == "5" and apptest.param(at, "seed") == "3"


def test_a_shared_link_opens_its_digit_and_bad_values_warn(clear_streamlit_caches):
    at = open_view("phases", digit=42, seed=7)
    assert at.number_input(key="hm_digit_idx").value == 42 and at.number_input(key="hm_seed").value == 7
    at = open_view("phases", digit=123456, seed="x")
    assert len(at.warning) == 2 and not at.exception
    at = open_view("nonsense")
    assert any("view='nonsense'" in w.value for w in at.warning) and apptest.param(at, "view") == "phases"


def test_bad_upload_and_empty_pad_give_messages(clear_streamlit_caches):
    at = open_view("phases")
    at.radio(key="hm_digit_src").set_value("upload").run()
    at.file_uploader(key="hm_digit_up").set_value(("x.png", b"\x89PNG broken", "image/png")).run()
    assert not at.exception and any("Could not use x.png" in e.value for e in at.error)
    at.radio(key="hm_digit_src").set_value("draw").run()
    assert not at.exception and any("Draw a digit" in i.value for i in at.info) and not at.metric
    ink = np.zeros((28, 28), dtype=np.float32)
    ink[4:24, 13:15] = 1  # a "1"
    at.session_state["hm_digit_ink"] = ink
    at.run()
    assert not at.exception and "Wake step: log p(x, h) after" in apptest.metrics(at)


def test_explaining_away_sliders_redraw_and_go_into_the_url(clear_streamlit_caches):
    at = open_view("explain")
    m = apptest.metrics(at)
    q1, q2 = (float(v) for v in m["Sleep fit q(c₁=1), q(c₂=1)"].split(", "))
    assert q1 == q2 and 0.45 < q1 < 0.55  # the default: symmetric causes, both marginals about one half
    q = [float(v) for v in m["ELBO fit q(c₁=1), q(c₂=1)"].split(", ")]
    assert max(q) > 0.9 and min(q) < 0.2  # the ELBO fit picks one explanation
    before = figure(at, "hm_ea")
    at.slider(key="hm_w2").set_value(4).run()
    assert figure(at, "hm_ea") != before and apptest.param(at, "w2") == "4"
    at = open_view("explain", prior=30, w1=5, w2=15, bias=-3)
    assert at.slider(key="hm_prior").value == 30 and at.slider(key="hm_bias").value == -3
    at = open_view("explain", prior=0, w1=99)
    assert len(at.warning) == 2 and at.slider(key="hm_prior").value == 10


def test_comparison_shows_every_model_with_its_test_number(clear_streamlit_caches):
    at = open_view("compare")
    fig = figure(at, "hm_curves")
    assert {t["name"] for t in fig["data"]} == set(helmholtz_views.MODELS.values())
    table = at.dataframe[0].value
    assert len(table) == 3 and all("±" in v for v in table["test NLL, IS k=1000 (nats)"])
    images = [im.value[0] for im in at.image]
    at.number_input(key="hm_sample_seed").set_value(4).run()
    assert [im.value[0] for im in at.image] != images and apptest.param(at, "seed") == "4"


def test_gradient_noise_bars_are_measured(clear_streamlit_caches):
    at = open_view("noise")
    fig = figure(at, "hm_snr")
    vae, sbn = fig["data"]
    assert list(vae["x"]) == ["reparameterization", "score function + baseline", "score function"]
    assert vae["y"][0] > vae["y"][1] > vae["y"][2] > 0  # reparameterization quietest, plain score noisiest
    assert len(sbn["x"]) == 2 and sbn["y"][0] > sbn["y"][1]


def test_missing_or_corrupt_checkpoint_gives_a_message(clear_streamlit_caches, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    for name in helmholtz_views.MODELS:
        shutil.copytree(api.resolve(name), folder / name)
    monkeypatch.setattr(api, "BUNDLED_DIR", folder)
    (folder / helmholtz_views.WS / "model.safetensors").write_bytes(b"broken")
    at = open_view("phases")
    assert any("cannot be loaded" in e.value for e in at.error) and not at.get("plotly_chart")
    shutil.rmtree(folder / helmholtz_views.VAE)
    at = open_view("noise")
    assert any("missing" in e.value for e in at.error) and not at.get("plotly_chart")
    at = open_view("explain")  # needs no checkpoint
    assert "ELBO fit q(c₁=1), q(c₂=1)" in apptest.metrics(at)
