"""The Normalizing flows page through AppTest: every view runs, controls change what is drawn, training runs in
the background and ends with a model, and bad input (CSV, typed points, URL settings) gives a message."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine import api
from tests import apptest

VIEWS = ["change", "layers", "compare", "train", "realnvp"]


@pytest.fixture
def flows(clear_streamlit_caches) -> AppTest:
    return apptest.open_page("app_pages/flows.py", timeout=120)


def show(at: AppTest, view: str) -> AppTest:
    return apptest.show(at, "flows_view", view)


charts = apptest.charts


def wait_for_job(at: AppTest, seconds: float = 90) -> None:
    apptest.wait_for_job(at, seconds)


@pytest.mark.parametrize("view", VIEWS)
def test_view_runs_without_errors(flows, view):
    at = show(flows, view)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Normalizing flows"
    assert any("corrections to the slides" in e.label for e in at.expander)


def test_change_of_variables_reacts_and_integrates_to_one(flows):
    at = show(flows, "change")
    before = charts(at)
    at.slider(key="cov_a0").set_value(1.0).run()
    assert not at.exception and charts(at) != before
    assert "integrates to 1.0000" in at.caption[0].value


def _opaque_at(spec_frame: dict, points: np.ndarray) -> float:
    """The share of `points` (N, 2) inside the box that land on a drawn sample (an opaque pixel) in a frame's
    picture of the layer animation."""
    uri = spec_frame["layout"]["images"][0]["source"]
    alpha = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))[..., 3]
    size = alpha.shape[0]
    inside = points[(np.abs(points) < 3.9).all(1)]
    cols = ((inside[:, 0] + 4) / 8 * size).astype(int)
    rows = ((4 - inside[:, 1]) / 8 * size).astype(int)
    return float((alpha[rows, cols] == 255).mean())


def test_layer_figure_carries_every_layer_and_starts_where_the_link_says(flows):
    at = show(flows, "layers")
    spec = json.loads(charts(at)[0])
    assert len(spec["frames"]) == 33 and spec["layout"]["sliders"][0]["active"] == 32
    model = api.load("planar-u1-k32")
    z0 = torch.randn(1500, 2, generator=torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        points = [p.numpy() for p in model.flow.double().trace(z0)[0]]
    for k in (0, 3, 32):  # frame k draws the samples after exactly k layers (not k - 1, not k + 1)
        assert _opaque_at(spec["frames"][k], points[k]) > 0.99
        assert spec["frames"][k]["layout"]["title"]["text"].startswith(f"k = {k}:")
    assert _opaque_at(spec["frames"][0], points[32]) < 0.9 and _opaque_at(spec["frames"][3], points[2]) < 0.9
    assert [a["visible"] for a in spec["frames"][0]["layout"]["annotations"]] == [False, False]  # no arrow at k = 0
    assert all(a.get("visible", True) for a in spec["frames"][5]["layout"]["annotations"])
    at.query_params["k"] = "3"
    at.run()
    spec = json.loads(charts(at)[0])
    assert spec["layout"]["sliders"][0]["active"] == 3 and spec["layout"]["title"]["text"].startswith("k = 3:")
    at.segmented_control(key="lay_k").set_value(2).run()
    assert len(json.loads(charts(at)[0])["frames"]) == 3
    at.query_params["K"] = "7"
    at.query_params["k"] = "500"
    at.run()
    assert not at.exception
    assert any("K='7'" in w.value for w in at.warning) and any("k='500'" in w.value for w in at.warning)


def test_compare_lists_all_twelve_flows(flows):
    at = show(flows, "compare")
    table = at.dataframe[0].value
    assert len(table) == 12 and set(table["K"]) == {2, 8, 32}


def test_training_runs_in_the_background_and_ends(flows):
    at = show(flows, "train")
    at.selectbox[0].set_value("u2")
    at.select_slider[0].set_value(2)  # K
    at.select_slider[1].set_value(500)  # steps
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    wait_for_job(at)
    assert not at.exception, [e.value for e in at.exception]
    assert any("finished" in s.value for s in at.success)
    assert any("log Z = -2.143" in c.proto.spec for c in at.get("plotly_chart"))  # the line F cannot cross


def test_realnvp_bundled_and_bad_points(flows):
    at = show(flows, "realnvp")
    assert len(at.get("plotly_chart")) == 1
    at.segmented_control(key="nvp_source").set_value("type").run()
    at.text_area(key="nvp_text").set_value("1, 2\n3, banana\n").run()
    assert any("line 2" in e.value for e in at.error)
    at.text_area(key="nvp_text").set_value("").run()
    assert any("empty" in e.value for e in at.error)
    at.segmented_control(key="nvp_source").set_value("csv").run()
    assert at.info
    at.file_uploader(key="nvp_csv").set_value(("pts.csv", b"x,y\n1,2\n3,4\n", "text/csv")).run()
    assert not at.exception
    assert any("only 2 point(s)" in e.value for e in at.error)
    at.file_uploader(key="nvp_csv").set_value(("pts.csv", b"\xff\xfe\x00garbage\x81", "text/csv")).run()
    assert any("not text" in e.value for e in at.error)


def test_realnvp_fits_typed_points(flows):
    at = show(flows, "realnvp")
    at.segmented_control(key="nvp_source").set_value("type").run()
    at.select_slider(key="nvp_steps").set_value(500).run()
    at.button(key="nvp_fit").click().run()
    wait_for_job(at)
    assert not at.exception and not at.error
    assert any("Mean log p" in m.label for m in at.metric)
