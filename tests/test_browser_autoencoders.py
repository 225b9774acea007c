"""The Autoencoders page in headless Chromium against `streamlit run`, with a screenshot of every view."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, screenshot, wait_idle
from tests.conftest import ARTIFACTS

VIEWS = ["shallow", "linear", "deep", "codes", "retrieval"]


@pytest.mark.parametrize("view", VIEWS)
def test_autoencoder_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/autoencoders?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Autoencoders vs PCA")).to_be_visible()
    if view in ("codes", "retrieval"):
        expect(page.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1000)  # WebGL scatters draw after the chart mounts
    screenshot(page, ARTIFACTS / f"autoencoders-{view}.png")


def test_linear_autoencoder_trains_live(page: Page, app_url: str):
    """Start the linear-AE job; the live chart and both sets of basis images appear, then it finishes."""
    open_page(page, f"{app_url}/autoencoders?view=linear")
    form = page.locator("[data-testid='stForm']")
    epochs = form.get_by_role("slider", name="Epochs (50,000 images each)")
    epochs.focus()
    for _ in range(5):
        page.keyboard.press("ArrowLeft")  # 5 epochs
    form.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("principal components", exact=False).last).to_be_visible(timeout=20_000)
    expect(page.get_by_text("finished in")).to_be_visible(timeout=90_000)
    wait_idle(page)
    assert_no_exception(page)
    expect(page.locator("[data-testid='stImage'] img")).to_have_count(2)
    screenshot(page, ARTIFACTS / "autoencoders-linear-done.png")


def test_selecting_codes_decodes_them(page: Page, app_url: str):
    """Drag a box over the autoencoder's scatter: the selected digit is decoded in place of test #0."""
    open_page(page, f"{app_url}/autoencoders?view=codes")
    expect(page.get_by_text("Test #0 (a 7) and its autoencoder code")).to_be_visible(timeout=30_000)
    chart = page.locator("[data-testid='stPlotlyChart']").first
    page.wait_for_timeout(1500)  # WebGL draws after the chart mounts
    box = chart.locator(".nsewdrag").first.bounding_box()
    x0, y0 = box["x"] + 0.2 * box["width"], box["y"] + 0.2 * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 0.6 * box["width"], y0 + 0.6 * box["height"], steps=10)
    page.mouse.up()
    expect(page.get_by_text("Test #0 (a 7) and its autoencoder code")).to_have_count(0, timeout=20_000)
    wait_idle(page)
    assert_no_exception(page)
    expect(page.get_by_text("and its autoencoder code")).to_be_visible()
    screenshot(page, ARTIFACTS / "autoencoders-codes-selected.png")


def test_faces_rows(page: Page, app_url: str):
    """Choose Olivetti faces in the deep AE view: held-out faces, both reconstructions and their errors."""
    from engine.data import faces
    if not faces.available():
        pytest.skip("olivettifaces.mat is not in the data folder")
    open_page(page, f"{app_url}/autoencoders?view=deep")
    page.get_by_role("radio", name="Olivetti faces").click()
    expect(page.get_by_text("625-2000-1000-500-30 vs PCA(30) on Olivetti faces")).to_be_visible(timeout=30_000)
    wait_idle(page)
    assert_no_exception(page)
    expect(page.locator("[data-testid='stMetric']")).to_have_count(3)
    expect(page.locator("[data-testid='stImage'] img")).to_have_count(1)
    screenshot(page, ARTIFACTS / "autoencoders-faces.png")
