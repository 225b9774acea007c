"""Background jobs owned by a session: start / progress / cancel, thread-safe.

A job runs `work(job)`, a generator of plain metric dicts (the engine's training or AIS stream), in a
daemon thread. The thread never calls st.*: it only appends to the job under a lock. Pages poll a job
from an `@st.fragment(run_every=...)` and draw what it holds. Cancelling sets an Event that the
engine loop checks between steps, so the model keeps its last complete update.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import streamlit as st

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
_THREADS: list[tuple["Job", threading.Thread]] = []  # every session's job threads still alive


@dataclass
class Job:
    title: str
    cancel: threading.Event = field(default_factory=threading.Event)
    history: list[dict] = field(default_factory=list)  # scalar metrics, one dict per update
    preview: Any = None  # the latest small preview array, if any
    progress: float = 0.0
    status: str = "running"  # running | done | cancelled | failed
    error: str = ""
    result: Any = None  # set by the work function (e.g. the trained model, an AIS result)
    meta: dict = field(default_factory=dict)  # set by the work function: settings worth keeping
    started: float = field(default_factory=time.time)
    finished: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def record(self, update: dict) -> None:
        """Called from the worker thread with one update of the engine's stream."""
        scalars = {k: v for k, v in update.items() if isinstance(v, (int, float, bool))}
        with self.lock:
            self.history.append(scalars)
            self.progress = float(update.get("progress", self.progress))
            if update.get("preview") is not None:
                self.preview = update["preview"]
            if update.get("cancelled"):
                self.status = "cancelled"

    def snapshot(self) -> tuple[list[dict], Any, float, str]:
        with self.lock:
            return list(self.history), self.preview, self.progress, self.status


def _run(job: Job, work: Callable[[Job], Iterator[dict]]) -> None:
    try:
        for update in work(job):
            job.record(update)
        with job.lock:
            if job.status == "running":
                job.status = "cancelled" if job.cancel.is_set() else "done"
            job.finished = time.time()
    except Exception as e:  # shown to the user in the job panel; the traceback goes to the server log
        log.exception("job %r failed", job.title)
        with job.lock:
            job.status, job.error, job.finished = "failed", f"{type(e).__name__}: {e}", time.time()


def start(key: str, title: str, work: Callable[[Job], Iterator[dict]]) -> Job:
    """Start `work` in a background thread as this session's job `key` (replacing a finished one)."""
    jobs = st.session_state.setdefault("jobs", {})
    if key in jobs and jobs[key].running:
        return jobs[key]
    job = Job(title=title)
    jobs[key] = job
    thread = threading.Thread(target=_run, args=(job, work), name=f"dgm-job-{key}", daemon=True)
    _THREADS[:] = [(j, t) for j, t in _THREADS if t.is_alive()]
    _THREADS.append((job, thread))
    thread.start()
    return job


def cancel_all(wait_seconds: float = 30.0) -> None:
    """Cancel the running jobs of every session and wait for their threads (at most `wait_seconds` in all),
    so one test's leftover training does not slow the next."""
    for job, _ in _THREADS:
        job.cancel.set()
    deadline = time.time() + wait_seconds
    for _, thread in _THREADS:
        thread.join(max(0.0, deadline - time.time()))
    _THREADS[:] = [(j, t) for j, t in _THREADS if t.is_alive()]


def get(key: str) -> Job | None:
    return st.session_state.get("jobs", {}).get(key)


def panel(key: str, draw: Callable[[Job], None]) -> Job | None:
    """Show job `key`: progress, a cancel button and `draw(job)`; live-polled while it runs.

    When the job ends, the whole page reruns once so its result appears everywhere it is used."""
    job = get(key)
    if job is None:
        return None
    if job.running:
        _live(key, draw)
    else:
        _header(job, key)
        draw(job)
    return job


@st.fragment(run_every=POLL_SECONDS)
def _live(key: str, draw: Callable[[Job], None]) -> None:
    job = get(key)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    _header(job, key)
    draw(job)


def _header(job: Job, key: str) -> None:
    _, _, progress, status = job.snapshot()
    elapsed = (job.finished or time.time()) - job.started
    if status == "running":
        cols = st.columns([5, 1])
        cols[0].progress(min(progress, 1.0), text=f"{job.title}: {100 * progress:.0f}% · {elapsed:.0f} s")
        cols[1].button("Cancel", key=f"cancel-{key}", on_click=job.cancel.set, width="stretch")
    elif status == "done":
        st.success(f"{job.title}: finished in {elapsed:.0f} s.")
    elif status == "cancelled":
        st.warning(f"{job.title}: cancelled; the model keeps its last complete update.")
    else:
        st.error(f"{job.title} failed: {job.error}")
