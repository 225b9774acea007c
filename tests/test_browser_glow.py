"""The Glow page in the real browser: a screenshot of every view, a digit drawn on the pad with the mouse and
encoded, and the temperature slider swapping the sample grid (tests never check wall-clock time)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, plotly_slider_steps, screenshot, wait_idle
from tests.conftest import ARTIFACTS

VIEWS = ["samples", "encode", "interpolate", "inside", "bits"]


@pytest.mark.parametrize("view", VIEWS)
def test_glow_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/glow?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Glow on MNIST")).to_be_visible()
    shown = "stPlotlyChart" if view in ("bits", "inside") else "stImage"
    expect(page.locator(f"[data-testid='{shown}']").first).to_be_visible(timeout=30_000)
    screenshot(page, ARTIFACTS / f"glow-{view}.png")


def lasso(page: Page, chart, path: list[tuple[float, float]]) -> None:
    """Drag a lasso through `path`, in fractions of the chart's plotting area."""
    box = chart.locator(".nsewdrag").first.bounding_box()
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in path]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


def test_a_digit_drawn_with_the_mouse_is_encoded(page: Page, app_url: str):
    open_page(page, f"{app_url}/glow?view=encode")
    page.get_by_text("draw", exact=True).click()
    wait_idle(page)
    expect(page.get_by_text("Draw a digit on the pad")).to_be_visible()
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.locator(".nsewdrag").first.wait_for(timeout=60_000)
    # a "7": a thin loop along the top bar, then one down the diagonal
    lasso(page, chart, [(0.25, 0.22), (0.75, 0.22), (0.75, 0.27), (0.25, 0.27), (0.25, 0.22)])
    wait_idle(page)
    lasso(page, chart, [(0.72, 0.24), (0.78, 0.26), (0.48, 0.82), (0.42, 0.80), (0.72, 0.24)])
    wait_idle(page)
    assert_no_exception(page)
    expect(page.get_by_text("identical", exact=True)).to_be_visible(timeout=20_000)
    screenshot(page, ARTIFACTS / "glow-encode-drawn.png")


def test_temperature_slider_swaps_the_samples_in_the_browser(page: Page, app_url: str):
    open_page(page, f"{app_url}/glow?view=samples")
    grid = page.locator("[data-testid='stPlotlyChart'] image").first
    expect(grid).to_have_count(1, timeout=20_000)
    before = grid.get_attribute("href")
    steps = plotly_slider_steps(page)
    assert len(steps) == 13
    page.mouse.click(*steps[12])
    expect(grid).not_to_have_attribute("href", before, timeout=10_000)
    expect(page.locator("[data-testid='stPlotlyChart'] .slider-container").first).to_contain_text("1.2")
    assert_no_exception(page)
