"""The part-based features page in the real browser: a screenshot of every view, and a short training run
started from the page whose result appears (tests never check wall-clock time)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, screenshot, wait_idle
from tests.conftest import ARTIFACTS

VIEWS = ["parts", "groups", "face", "train"]


@pytest.mark.parametrize("view", VIEWS)
def test_parts_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/parts?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Part-based features")).to_be_visible()
    if view != "train":
        expect(page.locator("[data-testid='stImage']").first).to_be_visible(timeout=30_000)
    screenshot(page, ARTIFACTS / f"parts-{view}.png")


def test_training_from_the_page_shows_the_new_parts(page: Page, app_url: str):
    open_page(page, f"{app_url}/parts?view=train&epochs=20")
    page.get_by_role("button", name="Train").click()
    expect(page.get_by_text("finished in")).to_be_visible(timeout=240_000)
    wait_idle(page)
    assert_no_exception(page)
    expect(page.get_by_text("Show this model on every view")).to_be_visible()
    screenshot(page, ARTIFACTS / "parts-train-done.png")
