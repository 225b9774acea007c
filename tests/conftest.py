"""Shared fixtures: a fresh Streamlit cache per AppTest, and a real `streamlit run` server for browser tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread in the test process: the browser tests' server process needs the other core,
    and oversubscribed OpenMP threads made small tensor ops up to 30x slower."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_CACHE_MODULE: list[str] = []  # the test module the Streamlit caches were last emptied for


@pytest.fixture
def clear_streamlit_caches(request):
    """st.cache_resource/cache_data are process-wide. They are emptied when a test module starts, and before and
    after any test that monkeypatches (a patched data folder or checkpoint must not leak into or out of them);
    the other tests of a module share them as the app's users do. Jobs a test left running are cancelled."""
    import streamlit as st

    def clear() -> None:
        st.cache_resource.clear()
        st.cache_data.clear()

    patched = "monkeypatch" in request.fixturenames
    if patched or _CACHE_MODULE != [request.module.__name__]:
        clear()
        _CACHE_MODULE[:] = [request.module.__name__]
    yield
    from app import jobs
    jobs.cancel_all()  # a job the test left running would slow the next test
    if patched:
        clear()


@pytest.fixture(scope="session")
def app_url():
    """Start `streamlit run streamlit_app.py` on a free loopback port; yield its URL; stop it after."""
    port = free_port()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # pytest-xdist: a server per worker, one OpenMP thread each
    log = open(ARTIFACTS / f"streamlit-server{'-' + worker if worker else ''}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **({"OMP_NUM_THREADS": "1"} if worker else {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"streamlit did not become healthy; see {log.name}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright: use Debian's Chromium (no browser downloads here), sandbox off for root."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 1000}, "device_scale_factor": 1}
