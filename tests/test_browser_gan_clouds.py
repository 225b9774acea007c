"""The GAN page's point-cloud views in the real browser: screenshots, and a check that the WebGL 3-D plots
really draw in headless Chromium (--disable-gpu falls back to software WebGL): the shape colours must
show up in the pixels of every 3-D chart, not only the plots' SVG titles."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from app import gan_cloud_views
from engine import api
from tests.browser import assert_no_exception, open_page, screenshot
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.skipif(gan_cloud_views.MODEL not in api.bundled(),
                                reason="the bundled point-cloud GAN is not trained yet")


def coloured_pixels(png: bytes) -> int:
    """Pixels that are clearly coloured (not white, grey or black): the markers of the 3-D scatters."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((rgb.max(-1) - rgb.min(-1)) > 60).sum())


def wait_for_webgl(page: Page, charts: int) -> None:
    """Every 3-D chart has drawn into its WebGL canvas (plotly creates one per scene)."""
    plots = page.locator("[data-testid='stPlotlyChart']")
    expect(plots).to_have_count(charts, timeout=20_000)
    for i in range(charts):
        plots.nth(i).locator(".main-svg").first.wait_for(timeout=20_000)
    page.wait_for_function("document.querySelectorAll('.gl-container canvas').length > 0", timeout=20_000)
    page.wait_for_timeout(1500)


def chart_png(page: Page, index: int) -> bytes:
    chart = page.locator("[data-testid='stPlotlyChart']").nth(index)
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    return chart.screenshot()


def test_clouds_view_draws_its_3d_plots(page: Page, app_url: str):
    page.set_viewport_size({"width": 1440, "height": 1000})
    open_page(page, f"{app_url}/gan?view=clouds")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Generative adversarial networks")).to_be_visible()
    wait_for_webgl(page, 2)
    screenshot(page, ARTIFACTS / "gan-clouds.png")
    for i in range(2):  # real, generated
        assert coloured_pixels(chart_png(page, i)) > 2000, f"3-D chart {i} drew no points"


def test_morph_view_draws_the_strip_and_plays_the_animation(page: Page, app_url: str):
    page.set_viewport_size({"width": 1440, "height": 1000})
    open_page(page, f"{app_url}/gan?view=morph&from=torus&to=cube")
    assert_no_exception(page)
    wait_for_webgl(page, 3)
    assert coloured_pixels(chart_png(page, 0)) > 2000, "the strip drew no points"
    before = chart_png(page, 1)
    assert coloured_pixels(before) > 2000, "the animation's first frame drew no points"
    screenshot(page, ARTIFACTS / "gan-clouds-morph.png")
    anim = page.locator("[data-testid='stPlotlyChart']").nth(1)
    anim.scroll_into_view_if_needed()
    anim.get_by_text("▶ Play").click()
    page.wait_for_timeout(5000)  # 31 frames at 110 ms: the walk has reached the other end
    after = chart_png(page, 1)
    assert before != after
    expect(anim.locator(".gtitle")).to_contain_text("t = 1.00")
