"""The deep belief net page in the real browser: a screenshot of every view (both layers of features), and the
top RBM's Gibbs chain played by the browser without a server run (tests never check wall-clock time)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, plotly_slider_steps, screenshot
from tests.conftest import ARTIFACTS

SHOTS = {"build": "", "features": "&layer=2", "features-layer1": "&layer=1", "samples": "", "likelihood": "&digit=0"}


@pytest.mark.parametrize("shot", SHOTS)
def test_dbn_views(page: Page, app_url: str, shot: str):
    view = shot.split("-")[0]
    open_page(page, f"{app_url}/dbn?view={view}{SHOTS[shot]}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Deep belief nets")).to_be_visible()
    shown = "stDataFrame" if view == "build" else "stPlotlyChart" if view == "likelihood" else "stImage"
    expect(page.locator(f"[data-testid='{shown}']").first).to_be_visible(timeout=120_000)
    screenshot(page, ARTIFACTS / f"dbn_{shot}.png")


def test_the_chain_plays_in_the_browser(page: Page, app_url: str):
    open_page(page, f"{app_url}/dbn?view=samples&steps=200")
    picture = page.locator("[data-testid='stPlotlyChart'] image").first
    expect(picture).to_have_count(1, timeout=120_000)
    before = picture.get_attribute("href")
    steps = plotly_slider_steps(page)
    assert len(steps) > 10
    page.mouse.click(*steps[-1])
    expect(picture).not_to_have_attribute("href", before, timeout=10_000)
    expect(page.get_by_text("200 steps").first).to_be_visible()
    assert_no_exception(page)


def test_the_wide_dbn_has_learned_parts(page: Page, app_url: str):
    open_page(page, f"{app_url}/dbn?view=features&layer=2")
    page.get_by_text("dbn-mnist-wide", exact=True).click()
    expect(page.get_by_text("Layers: 784-500-1000")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("still look like single pixels")).to_have_count(0)
    expect(page.locator("[data-testid='stImage']").first).to_be_visible(timeout=120_000)
    assert_no_exception(page)
    screenshot(page, ARTIFACTS / "dbn_features-wide.png")


def test_a_build_shows_each_step(page: Page, app_url: str):
    """A small DBN (784-50-50, one epoch per layer) built live: each step's features and bound appear."""
    open_page(page, f"{app_url}/dbn?view=build")
    for name in ("Layer 1 hidden units", "Layer 2 hidden units", "Epochs per layer"):  # the smallest values
        page.get_by_role("slider", name=name).first.focus()
        for _ in range(8):
            page.keyboard.press("ArrowLeft")
    page.get_by_role("button", name="Build, layer by layer").click()
    expect(page.get_by_text("Building a 784-50-50 DBN").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("finished in")).to_be_visible(timeout=400_000)
    expect(page.get_by_text("Step 2: DBN 784-50-50")).to_be_visible()
    assert_no_exception(page)
    screenshot(page, ARTIFACTS / "dbn_build-live.png")
