"""The PixelCNN page in the real browser: a screenshot of every view, the generation animation played and
scrubbed by the browser alone (no script run on the server), and a pixel picked by clicking the
receptive-field map (tests never check wall-clock time)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from app import pixelcnn_views as views
from tests.browser import APP, assert_no_exception, screenshot, wait_idle
from tests.conftest import ARTIFACTS, ROOT

VIEWS = ["generate", "complete", "field", "masks", "speed", "nll"]
BUNDLED = ROOT / "assets" / "checkpoints"
LOADED = 240_000  # ms: a first visit samples and measures on a CPU that may be busy with training runs


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    wait_idle(page, timeout=LOADED)


pytestmark = pytest.mark.skipif(not all((BUNDLED / name / "model.safetensors").exists() for name, _ in views.NETS.values()),
                                reason="the bundled pixelcnn-mnist and gated-pixelcnn-mnist checkpoints are not there")


@pytest.mark.parametrize("view", VIEWS)
def test_pixelcnn_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/pixelcnn?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="PixelCNN, pixel by pixel")).to_be_visible()
    if view == "speed":
        page.get_by_role("button", name="Time both samplers").click()
        wait_idle(page, timeout=LOADED)
        expect(page.get_by_text("identical", exact=True)).to_be_visible(timeout=30_000)
    shown = {"generate": "stPlotlyChart", "field": "stPlotlyChart", "nll": "stPlotlyChart"}.get(view, "stImage")
    expect(page.locator(f"[data-testid='{shown}']").first).to_be_visible(timeout=60_000)
    screenshot(page, ARTIFACTS / f"pixelcnn-{view}.png")


def test_the_browser_plays_and_scrubs_the_frames_without_the_server(page: Page, app_url: str):
    open_page(page, f"{app_url}/pixelcnn?view=generate&every=28")
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.locator(".main-svg").first.wait_for(timeout=60_000)
    expect(chart.get_by_text("all 784 pixels drawn")).to_be_visible(timeout=60_000)
    chart.get_by_text("▶ Play").click()
    expect(chart.get_by_text("all 784 pixels drawn")).to_have_count(0, timeout=10_000)  # it plays
    expect(chart.get_by_text("all 784 pixels drawn")).to_be_visible(timeout=120_000)
    # the animation ran in the browser: the script is idle, and no rerun was requested
    expect(page.locator(f"{APP}[data-test-script-state='notRunning']")).to_have_count(1)
    screenshot(page, ARTIFACTS / "pixelcnn-generate-played.png")
    assert_no_exception(page)


def test_clicking_the_map_picks_the_pixel(page: Page, app_url: str):
    open_page(page, f"{app_url}/pixelcnn?view=field&r=14&c=14")
    chart = page.locator("[data-testid='stPlotlyChart']").first
    cell = chart.locator(".scatterlayer .point").nth(5 * 28 + 20)  # one marker per pixel, in raster order
    cell.wait_for(timeout=60_000)
    cell.click(force=True)
    wait_idle(page, timeout=LOADED)
    expect(page.get_by_label("Row")).to_have_value("5", timeout=20_000)
    expect(page.get_by_label("Column")).to_have_value("20")
    assert_no_exception(page)
    screenshot(page, ARTIFACTS / "pixelcnn-field-clicked.png")
