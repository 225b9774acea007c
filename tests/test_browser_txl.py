"""The Transformer-XL page in the real browser: a screenshot of every view, and a click on a word of the
running text moving the attention highlight to that word."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, screenshot, wait_idle
from tests.conftest import ARTIFACTS

VIEWS = ["segments", "distance", "attention", "generate", "context", "speed", "results"]


@pytest.mark.parametrize("view", VIEWS)
def test_txl_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/txl?view={view}")
    assert_no_exception(page)
    expect(page.locator("h1", has_text="Transformer-XL")).to_be_visible()
    if view in ("distance", "attention", "generate"):
        expect(page.locator("[data-testid='stPlotlyChart'], [data-testid='stHtml']").first).to_be_visible(timeout=60_000)
        wait_idle(page)
    screenshot(page, ARTIFACTS / f"txl-{view}.png")
    assert_no_exception(page)


def test_clicking_a_word_moves_the_attention(page: Page, app_url: str):
    open_page(page, f"{app_url}/txl?view=attention")
    chart = page.locator("[data-testid='stPlotlyChart']").nth(1)
    title = chart.locator(".gtitle")
    expect(title).to_contain_text("Attention of", timeout=60_000)
    before = title.text_content()
    bars = chart.locator(".barlayer .point")
    expect(bars.first).to_be_visible()
    n = bars.count()
    bars.nth(n - 20).click(force=True)  # a word of the segment, 20 from its end
    expect(title).not_to_have_text(before, timeout=30_000)
    wait_idle(page)
    assert_no_exception(page)
    screenshot(page, ARTIFACTS / "txl-attention-clicked.png")
