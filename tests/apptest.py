"""Helpers for driving pages through Streamlit's AppTest (the browser's counterparts are in tests/browser.py)."""
from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def open_page(page_file: str, timeout: float = 120) -> AppTest:
    """The app switched to `page_file` (e.g. "app_pages/txl.py") and run once, without an exception."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=timeout)
    at.switch_page(page_file).run()
    assert not at.exception, at.exception
    return at


def open_view(page_file: str, view: str, timeout: float = 120, **params) -> AppTest:
    """The page opened by a shared link: ?view=...&key=value..., run once without an exception."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=timeout)
    at.switch_page(page_file)
    at.query_params["view"] = view
    for key, value in params.items():
        at.query_params[key] = str(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def show(at: AppTest, selector_key: str, view: str) -> AppTest:
    """Choose `view` in the page's view selector (keyed `selector_key`) and check the rerun raised nothing."""
    at.segmented_control(key=selector_key).set_value(view).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[str]:
    """The plotly figures on the page, as their JSON specs (to see whether a control redrew them)."""
    return [c.proto.spec for c in at.get("plotly_chart")]


def images(at: AppTest) -> list[str]:
    """The page's images as their URLs (a new picture has a new URL)."""
    return [im.value[0] for im in at.image]


def wait_for_job(at: AppTest, seconds: float = 90) -> None:
    """Rerun until the page's background job has finished (AppTest never fires run_every)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        at.run()
        if not any(b.label == "Cancel" for b in at.button):
            return
        time.sleep(1)
    raise AssertionError("the background job did not finish")


def metrics(at: AppTest) -> dict[str, str]:
    """The page's st.metric values by label."""
    return {m.label: m.value for m in at.metric}


def param(at: AppTest, key: str) -> str:
    """One URL query parameter's value (AppTest may hold it as a one-item list)."""
    value = at.query_params[key]
    return value[0] if isinstance(value, list) else value
