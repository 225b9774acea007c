"""The GAN page's 2-D lab through AppTest: it loads as the page's default view, presets and URLs choose the
run, the step buttons move the counters, Play/Pause drive the worker, and bad point sets are st.error."""
from __future__ import annotations

import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from tests.test_pages import image_urls

STEP = re.compile(r"Step ([\d,]+) · ([\d,]+) D updates")


@pytest.fixture
def lab_at(clear_streamlit_caches):
    def make(**params) -> AppTest:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
        at.switch_page("app_pages/gan.py")
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    yield make


def counters(at: AppTest) -> tuple[int, int]:
    for md in at.markdown:
        m = STEP.search(md.value)
        if m:
            return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))
    raise AssertionError("no step counter on the page")


def runner(at: AppTest):
    return at.session_state["gan_lab_runner"]


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_lab_is_the_default_view_and_draws_every_panel(lab_at):
    at = lab_at()
    assert at.title[0].value == "Generative adversarial networks"
    assert not at.error and not at.warning
    assert counters(at) == (0, 0)
    assert len(image_urls(at)) == 4 and len(at.get("plotly_chart")) == 2  # 2x2 panels; losses, coverage
    assert at.selectbox(key="lab_preset").value == "collapse"
    assert any("Modes covered" in m.label for m in at.metric)


def test_presets_from_the_url_and_the_selectbox(lab_at):
    at = lab_at(view="lab", preset="wgan-gp")
    assert at.selectbox(key="lab_loss").value == "wgan-gp" and at.slider(key="lab_d_steps").value == 5
    at.selectbox(key="lab_preset").set_value("collapse").run()
    ok(at)
    settings = runner(at).lab.settings
    assert settings == runner(at).lab.settings and settings.loss == "non-saturating"
    assert at.select_slider(key="lab_g_lr").value == settings.g_lr
    assert at.query_params["preset"] == "collapse"


def test_a_bad_preset_in_the_url_is_a_warning(lab_at):
    at = lab_at(view="lab", preset="nonsense")
    assert any("preset='nonsense'" in w.value for w in at.warning)
    assert at.selectbox(key="lab_preset").value == "collapse"


def test_step_buttons_change_the_counters_and_the_panels(lab_at):
    at = lab_at(preset="wgan-gp")
    before = image_urls(at)
    ok(at.button(key="lab_step_d").click().run())
    assert counters(at) == (0, 1)
    assert image_urls(at)[1] != before[1] and image_urls(at)[0] == before[0]  # D moved, G did not
    ok(at.button(key="lab_step_g").click().run())
    assert counters(at) == (1, 1)
    ok(at.button(key="lab_step").click().run())
    assert counters(at) == (2, 6)  # 5 D steps per G step in this preset
    ok(at.button(key="lab_reset").click().run())
    assert counters(at) == (0, 0)


def test_rates_apply_to_the_running_lab_and_make_it_custom(lab_at):
    at = lab_at()
    at.slider(key="lab_d_steps").set_value(3).run()
    ok(at)
    assert runner(at).lab.settings.d_steps == 3 and runner(at).preset == "custom"
    at.select_slider(key="lab_g_lr").set_value(2e-4).run()
    assert runner(at).lab.opt_g.param_groups[0]["lr"] == 2e-4


def test_play_trains_in_the_background_and_pause_stops_it(lab_at):
    at = lab_at(preset="collapse")
    ok(at.button(key="lab_play").click().run())
    lab = runner(at).lab
    deadline = time.time() + 60
    while lab.step == 0 and time.time() < deadline:
        time.sleep(0.1)
    assert lab.step > 0
    ok(at.button(key="lab_play").click().run())  # now "Pause"
    runner(at).thread.join(timeout=30)
    stopped = lab.step
    time.sleep(0.3)
    assert lab.step == stopped and not runner(at).playing.is_set()


def use_points(at: AppTest, text: str | None = None, upload: tuple | None = None) -> AppTest:
    at.selectbox(key="lab_target").set_value("points").run()
    ok(at)
    if text is not None:
        at.text_area(key="lab_points_text").set_value(text)
    if upload is not None:
        at.file_uploader(key="lab_points_file").set_value(upload)
    return ok(at.button(key="lab_points_use").click().run())


@pytest.mark.parametrize("text,message", [("", "empty"), ("1, 2\n3, 4", "only 2 point"),
                                          ("a, b\n" + "1, x\n" * 12, "is not two numbers"),
                                          ("\n".join(f"{i}, 1e9" for i in range(12)), "absurdly large")])
def test_bad_typed_points_are_an_error_and_keep_the_run(lab_at, text, message):
    at = lab_at()
    before = runner(at)
    at = use_points(at, text=text)
    assert any("Could not use these points" in e.value and message in e.value for e in at.error), \
        [e.value for e in at.error]
    assert runner(at) is before


def test_a_bad_csv_upload_is_an_error(lab_at):
    at = use_points(lab_at(), upload=("pts.csv", b"x,y\n", "text/csv"))
    assert any("Could not use pts.csv" in e.value and "only a header" in e.value for e in at.error)


def test_good_points_become_the_target(lab_at):
    at = use_points(lab_at())  # the example (a heart) as typed
    assert not at.error
    assert runner(at).lab.settings.target == "points" and at.selectbox(key="lab_target").value == "points"
    assert any("Target covered" in m.label for m in at.metric)
    ok(at.button(key="lab_step").click().run())
    assert counters(at)[0] == 1


def test_a_custom_run_from_the_url_and_a_bad_value_warns(lab_at):
    at = lab_at(view="lab", preset="custom", target="moons", loss="wgan-clip", noise="99")
    s = runner(at).lab.settings
    assert (s.target, s.loss, s.noise_dim, s.d_steps) == ("moons", "wgan-clip", 2, 5)
    assert any("noise='99'" in w.value for w in at.warning)
    assert any("Target covered" in m.label for m in at.metric)


def test_changing_the_loss_restarts_with_its_usual_rates(lab_at):
    at = lab_at(preset="collapse")
    ok(at.button(key="lab_step").click().run())
    at.selectbox(key="lab_loss").set_value("wgan-gp").run()
    ok(at)
    s = runner(at).lab.settings
    assert s.loss == "wgan-gp" and s.d_steps == 5 and counters(at) == (0, 0)
    assert at.query_params["preset"] == "custom" and at.query_params["loss"] == "wgan-gp"


def test_draw_pad_covers_the_plane_and_a_selection_becomes_point_lines():
    from app import gan_lab_plots, gan_lab_views
    fig = gan_lab_plots.draw_pad(3.0)
    xs, ys = fig.data[0].x, fig.data[0].y
    assert len(xs) == 31 * 31 and min(xs) == -3.0 and max(ys) == 3.0
    selection = {"points": [{"x": 0.2, "y": -1.0, "point_index": 5}, {"x": -3.0, "y": 3.0}, {"curve_number": 0}]}
    assert gan_lab_views.drawn_points(selection) == ["0.200, -1.000", "-3.000, 3.000"]
    assert gan_lab_views.drawn_points(None) == [] and gan_lab_views.drawn_points({"points": []}) == []
