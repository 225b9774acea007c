"""The deep Boltzmann machine page in the real browser: a screenshot of every view (and of the DBN-vs-DBM view
with half the digit hidden), and the mean-field sweeps played by the browser without a server run (tests never
check wall-clock time)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, screenshot, wait_idle
from tests.conftest import ARTIFACTS, ROOT

BUNDLED = (ROOT / "assets" / "checkpoints" / "dbm-mnist" / "model.safetensors").exists()
SHOTS = {"inference": "&digit=0", "compare": "&digit=3", "compare-hidden": "&digit=3&hide=bottom",
         "samples": "&sweeps=1000", "likelihood": "", "train": ""}
SLOW = 240_000  # ms: a run on a loaded 2-core machine (other trainings) can take a minute or more
pytestmark = pytest.mark.skipif(not BUNDLED, reason="the bundled DBM (dbm-mnist) is not installed")


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    wait_idle(page, timeout=SLOW)


@pytest.fixture(scope="module", autouse=True)
def warm(browser, app_url: str):
    """The server's first run of this page imports torch and loads MNIST: give it time once (a loaded machine)."""
    page = browser.new_page()
    page.goto(f"{app_url}/dbm?view=train")
    wait_idle(page, timeout=2 * SLOW)
    page.close()


@pytest.mark.parametrize("shot", SHOTS)
def test_dbm_views(page: Page, app_url: str, shot: str):
    view = shot.split("-")[0]
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_page(page, f"{app_url}/dbm?view={view}{SHOTS[shot]}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Deep Boltzmann machines")).to_be_visible()
    if view == "train":
        expect(page.get_by_text("Hidden units (h1-h2)")).to_be_visible(timeout=SLOW)
    elif view == "samples":
        expect(page.locator("[data-testid='stImage']").first).to_be_visible(timeout=SLOW)
    else:
        expect(page.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=SLOW)
    screenshot(page, ARTIFACTS / f"dbm_{shot}.png")


def test_mean_field_sweeps_play_in_the_browser(page: Page, app_url: str):
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_page(page, f"{app_url}/dbm?view=inference&digit=0")
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.locator(".slider-container").first.wait_for(timeout=SLOW)
    label = chart.locator(".slider-container text").filter(has_text="sweep").first
    before = label.text_content()
    assert before.strip().startswith("sweep 0")
    chart.locator(".updatemenu-button").first.click()  # ▶ Play: the browser steps through the sweeps
    expect(label).not_to_have_text(before, timeout=30_000)
    assert page.locator("[data-testid='stApp']").get_attribute("data-test-script-state") == "notRunning"
    expect(label).to_contain_text("sweep 30", timeout=60_000)  # played to the end
    screenshot(page, ARTIFACTS / "dbm_inference-played.png")
    assert_no_exception(page)
