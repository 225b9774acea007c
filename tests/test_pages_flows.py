"""The Normalizing flows page through AppTest: every view runs, controls change what is drawn, training runs in
the background and ends with a model, and bad input (CSV, typed points, URL settings) gives a message."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

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


def test_layer_slider_redraws_and_a_bad_link_warns(flows):
    at = show(flows, "layers")
    slider = at.slider(key="lay_slider_planar-u1-k32")
    assert slider.max == 32 and slider.value == 32
    before = charts(at)[0]
    slider.set_value(3).run()
    assert not at.exception and charts(at)[0] != before
    at.segmented_control(key="lay_k").set_value(2).run()
    assert at.slider(key="lay_slider_planar-u1-k2").max == 2
    at.query_params["K"] = "7"
    at.query_params["k"] = "500"
    at.run()
    assert not at.exception
    assert any("K='7'" in w.value for w in at.warning)


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
