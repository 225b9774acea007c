"""The NADE and MADE page in the real browser: a screenshot of every view, the sampling animation played by
the browser (no server call), and the resample-connectivity button redrawing the masks (tests never
check wall-clock time)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, screenshot, wait_idle
from tests.conftest import ARTIFACTS, ROOT

BUNDLED = (ROOT / "assets" / "checkpoints" / "made-mnist" / "model.safetensors").exists()
VIEWS = ["chain", "masks", "ensemble", "sampling", "train", "nll"]
SLOW = 240_000  # ms: a run on a loaded 2-core machine (other trainings) can take a minute or more


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    wait_idle(page, timeout=SLOW)


@pytest.fixture(scope="module", autouse=True)
def warm(browser, app_url: str):
    """The server's first run of this page imports torch and loads MNIST: give it time once (a loaded machine)."""
    page = browser.new_page()
    page.goto(f"{app_url}/made?view=masks")
    wait_idle(page, timeout=2 * SLOW)
    page.close()


@pytest.mark.skipif(not BUNDLED, reason="the bundled MADE (made-mnist) is not installed")
@pytest.mark.parametrize("view", VIEWS)
def test_made_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/made?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="NADE and MADE")).to_be_visible()
    if view == "train":
        expect(page.get_by_text("Hidden units")).to_be_visible(timeout=SLOW)
    else:
        expect(page.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=SLOW)
    screenshot(page, ARTIFACTS / f"made-{view}.png")


@pytest.mark.skipif(not BUNDLED, reason="the bundled MADE (made-mnist) is not installed")
def test_sampling_frames_play_in_the_browser(page: Page, app_url: str):
    open_page(page, f"{app_url}/made?view=sampling&seed=3")
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.locator(".slider-container").first.wait_for(timeout=SLOW)
    label = chart.locator(".slider-container text").filter(has_text="pixels drawn").first
    before = label.text_content()
    assert "pixels drawn" in before and before.strip().endswith(" 0")
    chart.locator(".updatemenu-button").first.click()  # ▶ Play: the browser steps through the frames
    expect(label).not_to_have_text(before, timeout=30_000)
    assert page.locator("[data-testid='stApp']").get_attribute("data-test-script-state") == "notRunning"
    screenshot(page, ARTIFACTS / "made-sampling-played.png")
    assert_no_exception(page)


def test_resampling_connectivity_redraws_the_masks(page: Page, app_url: str):
    open_page(page, f"{app_url}/made?view=masks")
    caption = page.get_by_text("allowed pairs (")
    expect(caption).to_be_visible(timeout=SLOW)
    before = caption.inner_text()
    page.get_by_role("button", name="Resample").click()
    wait_idle(page, timeout=SLOW)
    expect(caption).not_to_have_text(before)
    assert "mseed=1" in page.url
    assert_no_exception(page)
