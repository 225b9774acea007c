"""The GAN page's MNIST views in the real browser: a screenshot of every view, and the interpolation's
t slider redrawing its image (a partial rerun of the fragment)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from engine import api
from tests.browser import assert_no_exception, open_page, screenshot, wait_idle
from tests.conftest import ARTIFACTS

VIEWS = ["mnist", "interpolate", "quality"]
pytestmark = pytest.mark.skipif(not all(n in api.bundled() for n in ("dcgan-mnist", "wgan-gp-mnist")),
                                reason="the bundled MNIST GANs are not trained yet (make train-gan)")


@pytest.mark.parametrize("view", VIEWS)
def test_gan_mnist_views(page: Page, app_url: str, view: str):
    page.set_viewport_size({"width": 1440, "height": 1000})
    open_page(page, f"{app_url}/gan?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Generative adversarial networks")).to_be_visible()
    expect(page.locator("[data-testid='stAlertContentError']")).to_have_count(0)
    screenshot(page, ARTIFACTS / f"gan-{view}.png")


def test_t_slider_redraws_the_interpolated_image(page: Page, app_url: str):
    open_page(page, f"{app_url}/gan?view=interpolate")
    image = page.locator("[data-testid='stImage'] img").last
    before = image.get_attribute("src")
    page.get_by_role("slider", name="t (position on the path)").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(image).not_to_have_attribute("src", before, timeout=10_000)
    wait_idle(page)
    assert_no_exception(page)


def test_snapshot_slider_redraws_the_grid(page: Page, app_url: str):
    open_page(page, f"{app_url}/gan?view=mnist")
    image = page.locator("[data-testid='stImage'] img").first
    before = image.get_attribute("src")
    page.get_by_role("slider", name="Training step").focus()
    page.keyboard.press("Home")
    expect(image).not_to_have_attribute("src", before, timeout=10_000)
    wait_idle(page)
    assert_no_exception(page)
