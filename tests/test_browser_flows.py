"""The Normalizing flows page in the real browser: a screenshot of every view, and the layer slider redrawing
the figure (with its latency, printed for the report; tests never check wall-clock time)."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, screenshot, wait_idle
from tests.conftest import ARTIFACTS

VIEWS = ["change", "layers", "compare", "train", "realnvp"]


@pytest.mark.parametrize("view", VIEWS)
def test_flows_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/flows?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Normalizing flows")).to_be_visible()
    if view == "train":  # show a run in progress: the free energy against the -log Z line
        page.get_by_role("button", name="Start training").click()
        expect(page.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(15_000)
    screenshot(page, ARTIFACTS / f"flows-{view}.png")
    if view == "train":  # cancel the run if it still goes (on a quiet machine it can finish within the wait)
        page.evaluate("() => [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Cancel')"
                      "?.click()")
        expect(page.get_by_text(re.compile(r"finished in \d+ s|cancelled"))).to_be_visible(timeout=30_000)
        assert_no_exception(page)


def test_layer_slider_redraws_the_flow(page: Page, app_url: str):
    open_page(page, f"{app_url}/flows?view=layers&target=u3&K=32&k=32")
    title = page.locator("[data-testid='stPlotlyChart'] .gtitle").first
    expect(title).to_contain_text("k = 32", timeout=20_000)
    slider = page.get_by_role("slider", name="Layers applied k")
    times = []
    for expected in (31, 30, 29, 28, 27):
        slider.focus()
        start = time.perf_counter()
        page.keyboard.press("ArrowLeft")
        expect(title).to_contain_text(f"k = {expected}:", timeout=10_000)
        times.append(time.perf_counter() - start)
        wait_idle(page)
    assert_no_exception(page)
    print(f"layer slider: key press to redrawn title, {len(times)} presses: "
          f"median {sorted(times)[len(times) // 2] * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
