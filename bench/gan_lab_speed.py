"""Training speed of the GAN page's 2-D lab: steps per second of visible progress with the page drawing,
against the bare engine, side by side in one run.

For each preset: first the bare engine (engine.gan_lab.Lab.run in this process, with the thread count the
app's worker gets), then a real `streamlit run` server in headless Chromium: open /gan?view=lab&preset=...,
press Play, read the step counter shown on the page for SECONDS seconds, press Pause. A step is one round
of the game (the preset's D updates, then one G update). Target: at least 20 steps/s on the page.

    PYTHONPATH=. .venv/bin/python bench/gan_lab_speed.py [--seconds 20]
"""
from __future__ import annotations

import argparse
import os
import re
import time

import torch
from bench.server import app_page
from engine import gan_lab
from engine.device import background_threads

TARGET = 20.0
STEP = re.compile(r"Step ([\d,]+) ·")


def bare(preset: str, seconds: float) -> float:
    """Rounds per second of Lab.run alone (after 20 warm-up rounds)."""
    lab = gan_lab.from_preset(preset)
    lab.run(20)
    start, steps = time.perf_counter(), lab.step
    while time.perf_counter() - start < seconds:
        lab.run(10)
    return (lab.step - steps) / (time.perf_counter() - start)


def shown_step(page) -> int | None:
    m = STEP.search(page.evaluate("document.body.innerText"))
    return int(m.group(1).replace(",", "")) if m else None


def on_page(page, url: str, preset: str, seconds: float) -> tuple[float, int, int]:
    """Steps per second of the counter drawn on the page while playing; also the counter at the end and
    how many distinct values the page showed (redraws seen)."""
    page.goto(f"{url}/gan?view=lab&preset={preset}")
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=120_000)
    page.get_by_role("button", name="Play").wait_for(timeout=60_000)
    page.get_by_role("button", name="Play").click()
    deadline = time.time() + 60
    while (shown_step(page) or 0) == 0 and time.time() < deadline:
        page.wait_for_timeout(50)
    t0, s0 = time.perf_counter(), shown_step(page)
    seen = {s0}
    while time.perf_counter() - t0 < seconds:
        page.wait_for_timeout(100)
        seen.add(shown_step(page))
    t1, s1 = time.perf_counter(), shown_step(page)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_timeout(1500)
    return (s1 - s0) / (t1 - t0), s1, len(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--presets", nargs="*", default=list(gan_lab.PRESETS))
    args = parser.parse_args()
    threads = background_threads()
    torch.set_num_threads(threads)
    print(f"{os.cpu_count()} CPU cores; torch {torch.__version__}, {threads} intra-op thread(s) for the worker")
    rows = []
    with app_page() as (page, url):
        for preset in args.presets:
            engine_rate = bare(preset, args.seconds / 2)
            page_rate, last, redraws = on_page(page, url, preset, args.seconds)
            rows.append((preset, engine_rate, page_rate, last, redraws))
    report(rows, args.seconds)


def report(rows, seconds: float) -> None:
    print(f"\n{'preset':<12} {'D:G':>4} {'engine steps/s':>15} {'page steps/s':>13} {'page/engine':>12} "
          f"{'redraws':>8}  target >= {TARGET:.0f}/s on the page")
    for preset, engine_rate, page_rate, last, redraws in rows:
        d = gan_lab.PRESETS[preset][1].d_steps
        verdict = "met" if page_rate >= TARGET else "NOT met"
        print(f"{preset:<12} {d:>2}:1 {engine_rate:>15.1f} {page_rate:>13.1f} {page_rate / engine_rate:>12.2f} "
              f"{redraws:>8}  {verdict}")
    print(f"(page: the step counter drawn in the browser over {seconds:.0f} s while playing; engine: Lab.run alone; "
          "redraws: distinct counter values seen, polled every 100 ms)")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min) on {os.cpu_count()} cores: anything "
          "above about 2 means other processes shared the cores with the server, the browser and this script")


if __name__ == "__main__":
    main()
