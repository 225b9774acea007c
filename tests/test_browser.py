"""The real thing: every page in headless Chromium against `streamlit run`, with a screenshot of each."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import assert_no_exception, open_page, screenshot, wait_idle
from tests.conftest import ARTIFACTS

RBM_VIEWS = ["filters", "features", "gibbs", "gradient", "train", "likelihood"]


def test_shared_link_on_a_fresh_server_goes_through_the_entrypoint(page: Page, app_url: str):
    """First visit of the server is a deep link: it must get our navigation, not Streamlit's legacy pages/ one."""
    open_page(page, f"{app_url}/rbm?view=gibbs")
    nav = page.locator("[data-testid='stSidebarNav']")
    expect(nav).to_contain_text("Restricted Boltzmann machines")
    expect(nav).to_contain_text("Undirected models")


def test_home(page: Page, app_url: str):
    open_page(page, app_url)
    assert_no_exception(page)
    expect(page.get_by_text("Deep generative models, live")).to_be_visible()
    expect(page.locator("[data-testid='stImage'] img").first).to_be_visible()
    screenshot(page, ARTIFACTS / "home.png")


@pytest.mark.parametrize("view", RBM_VIEWS)
def test_rbm_views(page: Page, app_url: str, view: str):
    open_page(page, f"{app_url}/rbm?view={view}")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Restricted Boltzmann machines")).to_be_visible()
    screenshot(page, ARTIFACTS / f"rbm-{view}.png")


def test_rbm_default_view(page: Page, app_url: str):
    """The page without parameters (the README's screenshot)."""
    open_page(page, f"{app_url}/rbm")
    assert_no_exception(page)
    expect(page.locator("[data-testid='stImage'] img").first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "rbm.png", full_page=False)


def test_bad_url_parameter_gives_a_message(page: Page, app_url: str):
    open_page(page, f"{app_url}/rbm?view=features&digit=99999")
    assert_no_exception(page)
    expect(page.get_by_text("it must be a whole number from 0 to 9999")).to_be_visible()


def test_slider_reruns_only_its_figure(page: Page, app_url: str):
    """Moving the filter-count slider swaps the image (a fragment rerun) without an exception."""
    open_page(page, f"{app_url}/rbm?view=filters")
    image = page.locator("[data-testid='stImage'] img").first
    before = image.get_attribute("src")
    slider = page.get_by_role("slider", name="Number of filters")
    slider.focus()
    page.keyboard.press("ArrowLeft")
    expect(image).not_to_have_attribute("src", before, timeout=10_000)
    wait_idle(page)
    assert_no_exception(page)


def test_train_in_the_background_then_use_the_model(page: Page, app_url: str):
    """Start a small training job, watch it finish, use the model on the filters view, then estimate its AIS."""
    open_page(page, f"{app_url}/rbm?view=train")
    form = page.locator("[data-testid='stForm']")
    hidden = form.get_by_role("slider", name="Hidden units")
    hidden.focus()
    page.keyboard.press("Home")  # 16 hidden units
    epochs = form.get_by_role("slider", name="Epochs (50,000 images each)")
    epochs.focus()
    page.keyboard.press("Home")  # 1 epoch
    form.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("Training a 784-16 RBM")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("finished in")).to_be_visible(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page)
    screenshot(page, ARTIFACTS / "rbm-train-done.png")
    page.get_by_role("button", name="Show this model on every view").click()
    wait_idle(page)
    expect(page.get_by_text("784 visible × 16 hidden units")).to_be_visible()

    page.get_by_role("radio", name="Likelihood (AIS)").click() if page.get_by_role("radio", name="Likelihood (AIS)").count() \
        else page.get_by_text("Likelihood (AIS)").click()
    wait_idle(page)
    page.get_by_role("slider", name="AIS runs").focus()
    page.keyboard.press("Home")  # 10 runs
    page.get_by_role("slider", name="Temperatures").focus()
    page.keyboard.press("Home")  # 1,000 temperatures
    wait_idle(page)
    page.get_by_role("button", name="Estimate").click()
    expect(page.get_by_text("Test log-likelihood (AIS estimate)")).to_be_visible(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page)
    screenshot(page, ARTIFACTS / "rbm-likelihood-done.png")


def test_cancel_keeps_a_usable_model(page: Page, app_url: str):
    open_page(page, f"{app_url}/rbm?view=train")
    form = page.locator("[data-testid='stForm']")
    form.get_by_role("slider", name="Epochs (50,000 images each)").focus()
    page.keyboard.press("End")  # 30 epochs: far longer than the test waits
    form.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("step", exact=False).first).to_be_visible(timeout=20_000)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("cancelled; the model keeps its last complete update")).to_be_visible(timeout=30_000)
    assert_no_exception(page)
    expect(page.get_by_role("button", name="Show this model on every view")).to_be_visible()
