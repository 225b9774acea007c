"""The 2-D GAN lab in the real browser: Play trains in the background while the page keeps drawing."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from app.gan_lab_views import EXAMPLE
from tests.browser import assert_no_exception, open_page, wait_idle
from tests.conftest import ARTIFACTS

STEP = re.compile(r"Step ([\d,]+) ·")
DRAWN = """() => [...document.querySelectorAll('[data-testid=stImage] img')].filter(i => i.complete && i.naturalWidth > 0)
  .length >= 4 && [...document.querySelectorAll('[data-testid=stPlotlyChart]')].filter(
  c => c.querySelector('.main-svg') && c.getBoundingClientRect().height > 100).length >= 2"""  # 2x2 panels, 2 curves


def board_screenshot(page: Page, path) -> None:
    """Full-length screenshot of a board that redraws while it trains: wait until its panels and charts are
    drawn (tests.browser.screenshot waits for every chart, including ones a redraw is about to replace)."""
    height = page.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": page.viewport_size["width"], "height": max(900, min(int(height) + 40, 6000))})
    page.wait_for_function(DRAWN, timeout=30_000)
    page.wait_for_timeout(400)
    page.screenshot(path=path, full_page=True)


def shown_step(page: Page) -> int:
    text = page.get_by_text(STEP).first.inner_text()
    return int(STEP.search(text).group(1).replace(",", ""))


def test_play_advances_the_step_counter_and_pause_stops_it(page: Page, app_url: str):
    open_page(page, f"{app_url}/gan?view=lab&preset=wgan-gp")
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="The training game, watched live")).to_be_visible()
    assert shown_step(page) == 0
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => /Step ([1-9]\\d*|\\d{1,3}(,\\d{3})+) ·/.test(document.body.innerText)",
                           timeout=30_000, polling=250)
    first = shown_step(page)
    page.wait_for_function(f"() => {{ const m = document.body.innerText.match(/Step ([\\d,]+) ·/); "
                           f"return m && parseInt(m[1].replace(/,/g, '')) > {first}; }}", timeout=30_000, polling=250)
    page.wait_for_timeout(1500)  # let a few frames draw: the screenshot shows a run in progress
    board_screenshot(page, ARTIFACTS / "gan-lab.png")
    page.get_by_role("button", name="Pause").click()
    wait_idle(page)
    expect(page.get_by_text("paused", exact=False).first).to_be_visible()
    stopped = shown_step(page)
    page.wait_for_timeout(1500)
    assert shown_step(page) == stopped
    assert_no_exception(page)


def test_step_buttons_move_the_counter_once(page: Page, app_url: str):
    open_page(page, f"{app_url}/gan?view=lab&preset=collapse")
    page.get_by_role("button", name="Step both").click()
    wait_idle(page)
    assert shown_step(page) == 1
    page.get_by_role("button", name="Step G").click()
    wait_idle(page)
    assert shown_step(page) == 2
    assert_no_exception(page)


def test_a_lasso_on_the_draw_pad_becomes_the_target(page: Page, app_url: str):
    open_page(page, f"{app_url}/gan?view=lab")
    page.get_by_text("Target, loss, noise (restarts the run)").click()
    target = page.locator(".st-key-lab_target input")  # by its key: the preset box may also mention a target
    target.wait_for(timeout=60_000)
    target.click()
    page.keyboard.type("Your points")
    page.keyboard.press("Enter")
    wait_idle(page)
    pad = page.locator(".st-key-lab_draw .nsewdrag").first
    pad.wait_for(timeout=20_000)
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] / 4
    page.mouse.move(cx - r, cy - r)
    page.mouse.down()
    for dx, dy in [(r, -r), (r, r), (-r, r), (-r, -r)]:  # a lasso around a square in the middle of the pad
        page.mouse.move(cx + dx, cy + dy, steps=8)
    page.mouse.up()
    text = page.locator(".st-key-lab_points_text textarea")
    page.wait_for_function("([start]) => { const t = document.querySelector('.st-key-lab_points_text textarea');"
                           " return t && t.value.length > 0 && !t.value.startsWith(start); }", arg=[EXAMPLE[:12]],
                           timeout=20_000)
    wait_idle(page)
    lines = text.input_value().splitlines()
    xs = [float(line.split(",")[0]) for line in lines]
    assert max(abs(x) for x in xs) < 2.0  # only the middle of the [-3, 3] pad was lassoed
    page.get_by_role("button", name="Use these points").click()
    wait_idle(page)
    assert_no_exception(page)
    expect(page.locator("[data-testid='stAlertContentError']")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "gan-lab-draw.png", full_page=True)
