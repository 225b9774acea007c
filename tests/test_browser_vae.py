"""The VAE and IWAE pages in the real browser, with a screenshot of every view."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, screenshot, wait_idle
from tests.conftest import ARTIFACTS

VAE_VIEWS = ["bound", "sliders", "manifold", "interpolate", "encode", "train"]


@pytest.mark.parametrize("view", VAE_VIEWS)
def test_vae_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/vae?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Variational autoencoders")).to_be_visible()
    screenshot(page, ARTIFACTS / f"vae-{view}.png")


def test_latent_slider_redraws_the_image(page: Page, app_url: str):
    open_page(page, f"{app_url}/vae?view=sliders")
    image = page.locator("[data-testid='stImage'] img").first
    before = image.get_attribute("src")
    page.get_by_role("slider", name="z1").focus()
    page.keyboard.press("ArrowRight")
    expect(image).not_to_have_attribute("src", before, timeout=10_000)
    wait_idle(page)
    assert_no_exception(page)


@pytest.mark.parametrize("view", ["bound", "compare"])
def test_iwae_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/iwae?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Importance-weighted autoencoders")).to_be_visible()
    screenshot(page, ARTIFACTS / f"iwae-{view}.png")
