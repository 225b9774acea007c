"""Helpers for driving the real app in Chromium through Playwright."""
from __future__ import annotations

from playwright.sync_api import Page, expect

APP = "[data-testid='stApp']"


def wait_idle(page: Page, timeout: float = 60_000) -> None:
    """Wait until the app is connected and no script run is in progress."""
    page.wait_for_selector(f"{APP}[data-test-connection-state='CONNECTED']", timeout=timeout)
    page.wait_for_selector(f"{APP}[data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_selector(f"{APP}[data-test-script-state='notRunning']", timeout=timeout)


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    wait_idle(page)


def assert_no_exception(page: Page) -> None:
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def screenshot(page: Page, path) -> None:
    """Full-length screenshot: Streamlit scrolls inside its main section, so grow the viewport to fit it."""
    height = page.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))")
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": max(900, min(int(height) + 40, 6000))})
    charts = page.locator("[data-testid='stPlotlyChart']")
    for i in range(charts.count()):  # plotly draws after the script finishes: wait until each chart has its SVG
        # (attached, not visible: a chart a live fragment is about to replace can be hidden for a moment)
        charts.nth(i).locator(".main-svg").first.wait_for(state="attached", timeout=20_000)
    page.wait_for_timeout(400)
    page.screenshot(path=path, full_page=True)


def plotly_slider_steps(page: Page) -> list[tuple[float, float]]:
    """Screen points (x, y) of the steps of the first plotly chart's own slider (a browser-played animation),
    scrolled into view; click one with page.mouse.click(*points[i])."""
    chart = page.locator("[data-testid='stPlotlyChart'] .slider-container").first
    chart.scroll_into_view_if_needed()
    rail = chart.locator(".slider-rail-touch-rect").first.bounding_box()
    ticks = chart.locator("rect.slider-tick-rect")
    return [(b["x"] + b["width"] / 2, rail["y"] + rail["height"] / 2)
            for b in (ticks.nth(i).bounding_box() for i in range(ticks.count()))]
