"""Control-to-picture latency in the real browser: the RBM page, the VAE page's latent sliders, the GAN
page's interpolation slider, and the sliders that play in the browser (the planar flows' layer slider and the
Glow page's temperature and layer sliders: plotly figures with every frame inside, clicked at their steps).

Starts `streamlit run` on a free loopback port and, in headless Chromium, 30 times moves a slider with
the keyboard for each case in CASES, timing from the key press to the moment the picture changes (a new image
source, or a new chart title). Prints p50/p95 against the target (p95 within 250 ms; Streamlit's own round trip is
about 200 ms). One case times a button instead: the PixelCNN page's "New samples", from the click to the
first picture of the new digits (they are drawn row by row while the sampler runs), 12 times, target 500 ms.

    .venv/bin/python bench/latency.py            (or: make bench)
    .venv/bin/python bench/latency.py gan        (only the cases whose page path contains "gan")
"""
from __future__ import annotations

import statistics
import sys
import time

from bench.server import app_page
from tests.browser import plotly_slider_steps

CHANGES, TARGET_MS = 30, 250


# (name, page path, slider label ("plotly": the first plotly chart's own slider, clicked at its steps), what shows
# the result: the "first" or "last" image on the page, the first plotly chart's image ("plotly-image") or its
# "title")
CASES = [
    ("RBM page, 'Features shown' slider -> new decomposition image", "rbm?view=features", "Features shown", "last"),
    ("VAE page, latent slider z1 -> new decoded image", "vae?view=sliders", "z1", "first"),
    ("GAN page, interpolation t slider -> new decoded image", "gan?view=interpolate", "t (position on the path)",
     "last"),
    ("Flows page, planar layer slider k (in the browser) -> new frame (U3, K = 32)",
     "flows?view=layers&target=u3&K=32&k=16", "plotly", "title"),
    ("Glow page, temperature slider (in the browser) -> new sample grid", "glow?view=samples", "plotly",
     "plotly-image"),
    ("Glow page, layer slider (in the browser) -> new layer state", "glow?view=inside&layer=20", "plotly",
     "plotly-image"),
    ("NADE and MADE page, sampling scrubbed (in the browser) -> new frame", "made?view=sampling", "plotly",
     "plotly-image"),
    ("PixelCNN page, generation scrubbed (in the browser) -> new frame", "pixelcnn?view=generate", "plotly",
     "plotly-image"),
    ("PixelCNN page, 'New samples' button -> first picture of the new digits (drawn live, row by row)",
     "pixelcnn?view=generate", "button:New samples", "picture"),
]
BUTTON_TARGET_MS, BUTTON_CHANGES = 500, 12  # the target for starting generation -> first frame

SIGNATURES = {  # JavaScript for what changes when the result is drawn
    "first": "(() => { const im = document.querySelectorAll(\"[data-testid='stImage'] img\"); "
             "return im.length ? im[0].src : null; })()",
    "last": "(() => { const im = document.querySelectorAll(\"[data-testid='stImage'] img\"); "
            "return im.length ? im[im.length - 1].src : null; })()",
    "plotly-image": "(() => { const im = document.querySelector(\"[data-testid='stPlotlyChart'] image\"); "
                    "return im ? im.getAttribute('href') : null; })()",
    "picture": "(() => { const im = document.querySelector(\"[data-testid='stImage'] img\"); "
               "const fig = document.querySelector(\"[data-testid='stPlotlyChart'] image\"); "
               "return (im ? im.src : '') + '|' + (fig ? fig.getAttribute('href') : ''); })()",
    "title": "(() => { const t = document.querySelector(\"[data-testid='stPlotlyChart'] .gtitle\"); "
             "return t ? t.textContent : null; })()",
}


def measure(page, url: str, path: str, slider_name: str, which: str) -> list[float]:
    """Milliseconds from a slider key press to a changed result, for CHANGES changes after 3 warm-ups."""
    page.goto(f"{url}/{path}")
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=120_000)
    if slider_name == "plotly":
        return measure_plotly_slider(page, SIGNATURES[which])
    if slider_name.startswith("button:"):
        return measure_button(page, slider_name.removeprefix("button:"), SIGNATURES[which])
    slider = page.get_by_role("slider", name=slider_name).first  # the 2-D model is the default: z1, z2
    slider.wait_for(timeout=60_000)
    signature = SIGNATURES[which]
    page.wait_for_function(f"{signature} !== null", timeout=60_000)
    times = []
    for i in range(CHANGES + 3):
        before = page.evaluate(signature)
        slider.focus()
        start = time.perf_counter()
        page.keyboard.press("ArrowRight" if (i // 4) % 2 == 0 else "ArrowLeft")
        page.wait_for_function(f"old => {signature} !== old", arg=before, polling="raf", timeout=10_000)
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
        page.wait_for_timeout(150)
    return sorted(times)


def measure_plotly_slider(page, signature: str) -> list[float]:
    """Milliseconds from a mouse click on a step of a plotly figure's own slider (played in the browser, no server
    round trip) to a changed result, for CHANGES changes after 3 warm-ups."""
    page.wait_for_selector("[data-testid='stPlotlyChart'] .slider-rail-touch-rect", timeout=120_000)
    steps = plotly_slider_steps(page)
    page.mouse.click(*steps[0])  # from the first step, every later click moves the slider (4 right, 4 left, ...)
    page.wait_for_timeout(1000)
    times, current = [], 0
    for i in range(CHANGES + 3):
        current += 1 if (i // 4) % 2 == 0 else -1
        before = page.evaluate(signature)
        start = time.perf_counter()
        page.mouse.click(*steps[current])
        page.wait_for_function(f"old => {signature} !== old", arg=before, polling="raf", timeout=10_000)
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
        page.wait_for_timeout(150)
    return sorted(times)


def measure_button(page, label: str, signature: str) -> list[float]:
    """Milliseconds from a button click to the first changed picture, BUTTON_CHANGES times after 2 warm-ups,
    waiting for the page to finish between clicks."""
    button = page.get_by_role("button", name=label).first
    button.wait_for(timeout=60_000)
    times = []
    for i in range(BUTTON_CHANGES + 2):
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=120_000)
        page.wait_for_timeout(300)
        before = page.evaluate(signature)
        start = time.perf_counter()
        button.click()
        page.wait_for_function(f"old => {signature} !== old", arg=before, polling="raf", timeout=60_000)
        if i >= 2:
            times.append((time.perf_counter() - start) * 1000)
        page.wait_for_timeout(500)
    return sorted(times)


def main() -> None:
    chosen = [c for c in CASES if not sys.argv[1:] or any(a in c[1] for a in sys.argv[1:])]
    with app_page() as (page, url):
        for name, path, slider, which in chosen:
            report(name, measure(page, url, path, slider, which),
                   BUTTON_TARGET_MS if slider.startswith("button:") else TARGET_MS)


def report(name: str, times: list[float], target_ms: float = TARGET_MS) -> None:
    p50 = statistics.median(times)
    p95 = times[int(round(0.95 * (len(times) - 1)))]
    print(f"{name}, {len(times)} changes")
    print(f"  p50 {p50:6.0f} ms   p95 {p95:6.0f} ms   min {times[0]:.0f}   max {times[-1]:.0f}")
    print(f"  target p95 <= {target_ms} ms: {'met' if p95 <= target_ms else 'NOT met'} "
          f"(ratio p95/target = {p95 / target_ms:.2f})")


if __name__ == "__main__":
    main()
