"""The Normalizing flows page in the real browser: a screenshot of every view, and the layer slider redrawing
the figure (with its latency, printed for the report; tests never check wall-clock time)."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, plotly_slider_steps, screenshot
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


def test_layer_slider_plays_in_the_browser(page: Page, app_url: str):
    open_page(page, f"{app_url}/flows?view=layers&target=u3&K=32&k=32")
    title = page.locator("[data-testid='stPlotlyChart'] .gtitle").first
    expect(title).to_contain_text("k = 32", timeout=20_000)
    steps = plotly_slider_steps(page)
    assert len(steps) == 33
    times = []
    for k in (31, 30, 29, 0, 5):
        start = time.perf_counter()
        page.mouse.click(*steps[k])
        expect(title).to_contain_text(f"k = {k}:", timeout=10_000)
        times.append(time.perf_counter() - start)
    page.get_by_text("▶ Play").click()  # from k = 5 the animation walks on by itself
    expect(title).to_contain_text("k = 8:", timeout=20_000)
    assert_no_exception(page)
    print(f"layer slider (in the browser): click to new frame, {len(times)} clicks: "
          f"median {sorted(times)[len(times) // 2] * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
