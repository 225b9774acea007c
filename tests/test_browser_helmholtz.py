"""The Helmholtz machine page in the real browser: a screenshot of every view, the wake/sleep frames played by the
browser (no server run), and an explaining-away slider redrawing the fits (tests never check wall-clock time)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, plotly_slider_steps, screenshot, wait_idle
from tests.conftest import ARTIFACTS

VIEWS = ["phases", "compare", "explain", "noise"]
SLOW = 240_000  # a first visit on a busy machine loads torch, MNIST and the models


@pytest.mark.parametrize("view", VIEWS)
def test_helmholtz_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/helmholtz?view={view}")
    wait_idle(page, timeout=SLOW)
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Helmholtz machines")).to_be_visible()
    expect(page.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=SLOW)
    expect(page.locator("[data-testid='stAlert']")).to_have_count(0)
    screenshot(page, ARTIFACTS / f"helmholtz-{view}.png")


def test_wake_sleep_frames_play_in_the_browser(page: Page, app_url: str):
    open_page(page, f"{app_url}/helmholtz?view=phases&digit=3")
    wait_idle(page, timeout=SLOW)
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.locator(".slider-container").first.wait_for(timeout=SLOW)
    steps = plotly_slider_steps(page)
    assert len(steps) == 8
    page.mouse.click(*steps[5])  # a sleep frame, drawn by the browser alone
    current = chart.locator(".slider-container text").filter(has_text="step:").first
    expect(current).to_have_text("step: sleep 2", timeout=20_000)
    page.mouse.click(*steps[0])
    expect(current).to_have_text("step: wake 1", timeout=20_000)
    chart.locator(".updatemenu-button").first.click()  # ▶ Play
    expect(current).not_to_have_text("step: wake 1", timeout=30_000)
    assert page.locator("[data-testid='stApp']").get_attribute("data-test-script-state") == "notRunning"
    screenshot(page, ARTIFACTS / "helmholtz-phases-played.png")
    assert_no_exception(page)


def test_explaining_away_slider_redraws_the_fits(page: Page, app_url: str):
    open_page(page, f"{app_url}/helmholtz?view=explain")
    wait_idle(page, timeout=SLOW)
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Sleep fit").first
    expect(metric).to_contain_text("0.52, 0.52", timeout=SLOW)
    thumb = page.get_by_role("slider", name="Weight w₂ (cause 2 → effect)")
    thumb.focus()
    for _ in range(6):
        page.keyboard.press("ArrowLeft")
    wait_idle(page, timeout=SLOW)
    expect(metric).not_to_contain_text("0.52, 0.52", timeout=30_000)  # unequal weights: unequal marginals
    assert "w2=6" in page.url
    screenshot(page, ARTIFACTS / "helmholtz-explain-w2.png")
    assert_no_exception(page)
