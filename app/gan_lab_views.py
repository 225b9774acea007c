"""The GAN page's 2-D lab: the training game, watched live.

The engine's Lab (engine.gan_lab) holds the model and plays the game; here a `Runner` owns one Lab per
session and trains it in a background thread while the page plays. The thread never calls st.*; an
@st.fragment(run_every=...) takes the Lab's snapshot (under its lock) and draws it. Controls sit in two
rows on top, the four panels in a 2x2 grid below them, then the curves and numbers.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import streamlit as st

from app import gan_lab_plots as plots
from app import widgets
from engine import api

log = logging.getLogger(__name__)
KEY = "gan_lab_runner"
REFRESH_S = 1.0  # the board redraws this often while playing
CURVES_S = 3.0  # and the curves this often
IDLE_S = 20.0  # the worker pauses itself when no page has drawn it for this long (tab closed)
MAX_STEPS = 50_000  # and stops at this many steps, so a forgotten lab never trains forever
CHUNK = 5  # rounds between checks of the pause flag
LRS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2]
# While the board redraws, Streamlit fades the elements it has not redrawn yet; on a live board that
# flickers, so inside the lab they stay at full opacity.
CSS = """<style>.st-key-gan_lab [data-stale="true"] { opacity: 1 !important; transition: none !important; }</style>"""
EXAMPLE = "\n".join(f"{x:.3f}, {y:.3f}" for x, y in api.toy2d.heart(80))


@dataclass
class Runner:
    """A session's Lab and the thread that trains it while `playing` is set."""

    lab: api.Lab
    preset: str  # a preset id, or "custom"
    playing: threading.Event = field(default_factory=threading.Event)
    last_seen: float = field(default_factory=time.time)
    note: str = ""  # why the worker stopped by itself
    thread: threading.Thread | None = None

    def play(self) -> None:
        self.note, self.last_seen = "", time.time()
        self.playing.set()
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._work, name="dgm-gan-lab", daemon=True)
            self.thread.start()

    def pause(self) -> None:
        self.playing.clear()

    def _work(self) -> None:
        """Train in chunks while playing; stop by itself (saying why) when unwatched, done or failed."""
        try:
            while self.playing.is_set():
                if time.time() - self.last_seen > IDLE_S:
                    return self._stop("Paused by itself: nobody was watching.")
                if self.lab.step >= MAX_STEPS:
                    return self._stop(f"Paused at {MAX_STEPS:,} steps; press Reset to start again.")
                self.lab.run(CHUNK)
        except Exception as e:  # shown on the page; the traceback goes to the server log
            log.exception("GAN lab worker failed")
            self._stop(f"Training stopped: {type(e).__name__}: {e}")

    def _stop(self, note: str) -> None:
        self.note = note
        self.playing.clear()


# --- state: settings from the URL, the widgets and the presets ----------------------------------
def _runner() -> Runner:
    if KEY not in st.session_state:
        preset = widgets.url_choice("preset", [*api.LAB_PRESETS, "custom"], "collapse")
        settings = api.LAB_PRESETS[preset][1] if preset != "custom" else _url_settings()
        st.session_state[KEY] = Runner(api.Lab(settings), preset)
        _fill_widgets(settings, preset)
    return st.session_state[KEY]


def _url_settings():
    s = api.LabSettings()
    loss = widgets.url_choice("loss", list(api.LOSSES), s.loss)
    return replace(s, target=widgets.url_choice("target", [t for t in api.toy2d.TARGETS if t != "points"], s.target),
                   loss=loss, noise_dim=widgets.url_int("noise", 1, 16, s.noise_dim),
                   seed=widgets.url_int("seed", 0, 10_000, s.seed), **api.LAB_LOSS_DEFAULTS[loss])


def _fill_widgets(s, preset: str, *, only_missing: bool = False) -> None:
    """Put a run's settings into the controls (only where a control has no state, e.g. after another view)."""
    values = {"lab_preset": preset, "lab_target": s.target, "lab_loss": s.loss, "lab_noise": s.noise_dim,
              "lab_seed": s.seed, "lab_g_lr": s.g_lr, "lab_d_lr": s.d_lr, "lab_d_steps": s.d_steps}
    for key, value in values.items():
        if not only_missing or key not in st.session_state:
            st.session_state[key] = value


def _replace(runner: Runner, settings, preset: str, points=None) -> None:
    runner.pause()
    st.session_state[KEY] = Runner(api.Lab(settings, points=points), preset)


def _on_preset() -> None:
    preset = st.session_state.lab_preset
    if preset == "custom":
        return
    settings = api.LAB_PRESETS[preset][1]
    _fill_widgets(settings, preset)
    _replace(st.session_state[KEY], settings, preset)


def _on_setup() -> None:
    """Target, loss, noise size or seed changed: a fresh run (a new loss brings its usual rates). Choosing
    "Your points" before any are given only opens the input; the run changes once they are read."""
    runner, ss = st.session_state[KEY], st.session_state
    points = ss.get("lab_user_points")  # the last set read, kept while other targets are tried
    if ss.lab_target == "points" and points is None:
        ss.lab_target, ss.lab_want_points = runner.lab.settings.target, True
        return
    if ss.lab_loss != runner.lab.settings.loss:
        ss.update({f"lab_{k}": v for k, v in api.LAB_LOSS_DEFAULTS[ss.lab_loss].items()})
    settings = replace(runner.lab.settings, target=ss.lab_target, loss=ss.lab_loss, noise_dim=int(ss.lab_noise),
                       seed=int(ss.lab_seed), g_lr=ss.lab_g_lr, d_lr=ss.lab_d_lr, d_steps=int(ss.lab_d_steps))
    ss.lab_preset = "custom"
    _replace(runner, settings, "custom", points if settings.target == "points" else None)


def _on_rates() -> None:
    ss = st.session_state
    ss[KEY].lab.set_rates(g_lr=ss.lab_g_lr, d_lr=ss.lab_d_lr, d_steps=int(ss.lab_d_steps))
    ss.lab_preset = ss[KEY].preset = "custom"


def _on_reset() -> None:
    runner = st.session_state[KEY]
    _replace(runner, runner.lab.settings, runner.preset, runner.lab.points)


# --- the view ----------------------------------------------------------------------------------
def lab() -> None:
    with st.container(key="gan_lab"):
        _lab()


def _lab() -> None:
    st.html(CSS)
    runner = _runner()
    _fill_widgets(runner.lab.settings, runner.preset, only_missing=True)
    st.subheader("The training game, watched live")
    st.markdown("D learns to tell real points (grey) from generated ones (orange); G moves its points to where D "
                "is fooled. Press **Play**, or make one move at a time with the step buttons.")
    _controls(runner)
    runner = st.session_state[KEY]  # a control may have started a fresh run
    if runner.preset in api.LAB_PRESETS:
        st.caption(f"**{api.LAB_PRESETS[runner.preset][0]}.** {api.LAB_PRESETS[runner.preset][2]}")
    if runner.playing.is_set():
        _live_board()
        _live_curves()
    else:
        panels = _board(runner)
        snap = _curves(runner)
        _downloads(snap, panels)
    _share(runner)


def _controls(runner: Runner) -> None:
    names = {**{k: v[0] for k, v in api.LAB_PRESETS.items()}, "custom": "Custom"}
    playing = runner.playing.is_set()
    row = st.columns([1.7, 1, 1, 1, 1, 1], vertical_alignment="bottom")
    row[0].selectbox("Preset", list(names), format_func=names.get, key="lab_preset", on_change=_on_preset)
    row[1].button("Pause" if playing else "Play", key="lab_play", type="primary", width="stretch",
                  icon=":material/pause:" if playing else ":material/play_arrow:",
                  on_click=runner.pause if playing else runner.play)
    row[2].button("Step D", key="lab_step_d", help="One update of D (the critic) on a fresh real batch",
                  disabled=playing, width="stretch", on_click=runner.lab.step_d)
    row[3].button("Step G", key="lab_step_g", help="One update of G against the current D", disabled=playing,
                  width="stretch", on_click=runner.lab.step_g)
    row[4].button("Step both", key="lab_step", help="One round: 'D steps per G step' updates of D, then one of G",
                  disabled=playing, width="stretch", on_click=runner.lab.round)
    row[5].button("Reset", key="lab_reset", icon=":material/restart_alt:", width="stretch", on_click=_on_reset,
                  help="Start this run again from its first step (same seed)")
    fmt = lambda v: f"{v:g}"  # noqa: E731
    row = st.columns([1, 1, 1, 1.7])
    row[0].select_slider("G learning rate", LRS, key="lab_g_lr", format_func=fmt, on_change=_on_rates)
    row[1].select_slider("D learning rate", LRS, key="lab_d_lr", format_func=fmt, on_change=_on_rates)
    row[2].slider("D steps per G step", 1, 10, key="lab_d_steps", on_change=_on_rates)
    want_points = bool(st.session_state.get("lab_want_points"))
    with row[3].expander("Target, loss, noise (restarts the run)", expanded=want_points):
        targets = {k: t.label for k, t in api.toy2d.TARGETS.items()}
        c1, c2 = st.columns(2)
        c1.selectbox("Target", list(targets), format_func=targets.get, key="lab_target", on_change=_on_setup)
        c2.selectbox("Loss", list(api.LOSSES), format_func=api.LOSS_LABELS.get, key="lab_loss", on_change=_on_setup)
        c1.number_input("Noise size", 1, 16, key="lab_noise", on_change=_on_setup)
        c2.number_input("Seed", 0, 10_000, key="lab_seed", on_change=_on_setup)
        if st.session_state.lab_target == "points" or st.session_state.get("lab_want_points"):
            _points_input()


def _points_input() -> None:
    """The user's own target: drawn on a pad, typed as x, y lines or uploaded as a CSV, checked before use."""
    st.session_state.setdefault("lab_points_text", EXAMPLE)
    st.caption("Draw: lasso or box a region of the grid below; its points are added to the text.")
    st.plotly_chart(plots.draw_pad(api.LAB_EXTENT), key="lab_draw", on_select=_on_draw,
                    selection_mode=("lasso", "box"), config={"displayModeBar": False}, width="content")
    st.button("Clear the text", key="lab_points_clear", on_click=_on_clear_points)
    st.text_area("Your points: one x, y per line", height=140, key="lab_points_text")
    st.file_uploader("…or a CSV with x, y columns", type=["csv", "txt"], key="lab_points_file")
    st.button("Use these points", key="lab_points_use", width="stretch", on_click=_on_points)
    if st.session_state.get("lab_points_error"):
        st.error(st.session_state.lab_points_error)


def _on_draw() -> None:
    """A lasso or box on the pad: the grid points inside it become lines of the points text."""
    ss = st.session_state
    chosen = drawn_points(ss.lab_draw.selection)
    if chosen:
        text = ss.lab_points_text.strip()
        ss.lab_points_text = "\n".join(([text] if text and text != EXAMPLE.strip() else []) + chosen)


def drawn_points(selection) -> list[str]:
    """The selected grid points of the pad as "x, y" lines (selection: Streamlit's plotly selection state)."""
    return [f"{p['x']:.3f}, {p['y']:.3f}" for p in (selection or {}).get("points", []) if "x" in p and "y" in p]


def _on_clear_points() -> None:
    st.session_state.lab_points_text = ""


def _on_points() -> None:
    ss = st.session_state
    upload = ss.get("lab_points_file")
    try:
        source = api.toy2d.decode_upload(upload.getvalue()) if upload is not None else ss.lab_points_text
        points = api.toy2d.user_points(source)
    except api.toy2d.BadPoints as e:
        ss.lab_points_error = f"Could not use {upload.name if upload is not None else 'these points'}: {e}."
        return
    ss.update(lab_points_error="", lab_want_points=False, lab_target="points", lab_preset="custom",
              lab_user_points=points)
    runner = ss[KEY]
    _replace(runner, replace(runner.lab.settings, target="points"), "custom", points)


@st.fragment(run_every=REFRESH_S)
def _live_board() -> None:
    runner = st.session_state.get(KEY)
    if runner is None:
        return
    if not runner.playing.is_set():
        st.rerun(scope="app")  # the worker stopped: redraw the controls too
    runner.last_seen = time.time()
    _board(runner)


@st.fragment(run_every=CURVES_S)
def _live_curves() -> None:
    runner = st.session_state.get(KEY)
    if runner is not None:
        _curves(runner)


PANELS = [  # title and legend (markdown, one line), figure
    ("**Real vs generated** &nbsp; :gray[●] real &nbsp; :orange[●] generated", plots.samples),
    ("**{value}** &nbsp; :red[■] {low} (fake) &nbsp; :blue[■] {high} (real)", plots.value_map),
    ("**G's map of the noise {grid}** &nbsp; :blue[━] z₂ fixed &nbsp; :violet[━] z₁ fixed{spot}", plots.manifold),
    ("**−∂(G's loss)/∂x**: where G's next step pushes its points", plots.arrows),
]


def _board(runner: Runner) -> list[bytes]:
    """The status line and the four panels; returns the panels' images (JPEG bytes)."""
    snap = runner.lab.snapshot()
    rate = f"{snap.steps_per_s:.0f} steps/s · playing" if runner.playing.is_set() else "paused"
    st.markdown(f"#### Step {snap.step:,} · {snap.d_updates:,} D updates · {rate}")
    if runner.note:
        st.warning(runner.note)
    if not np.isfinite(snap.fake).all():
        st.error("Training diverged: the generated points are no longer finite numbers. Lower the learning rates "
                 "and press Reset.")
    critic = snap.value_label != "D(x)"
    names = {"value": "Critic f(x)" if critic else "Discriminator D(x)", "low": "low" if critic else "0",
             "high": "high" if critic else "1", "grid": "grid" if snap.settings.noise_dim > 1 else "line", "spot": ""}
    width = plots.manifold_width(snap.manifold)
    if width < plots.SPOT:
        names["spot"] = f" &nbsp; :violet[◯ all of it, {width:.2g} wide]"
    panels = []
    for i, (title, draw) in enumerate(PANELS):
        if i % 2 == 0:
            row = st.columns(2, gap="medium")
        image = draw(snap, api.LAB_EXTENT)
        panels.append(image)
        with row[i % 2]:
            st.markdown(title.format(**names))
            st.image(image, width="stretch", output_format="JPEG")
    return panels


def _curves(runner: Runner):
    snap = runner.lab.snapshot(resolution=2, arrows=1)
    cfg = {"displaylogo": False}
    curves, coverage, numbers = st.columns([2, 1.5, 1])
    curves.plotly_chart(plots.curves(snap), key="lab_fig_curves", config=cfg)
    if snap.value_label != "D(x)":
        curves.caption("W estimate: E f(real) − E f(generated), the critic's estimate of the Wasserstein distance "
                       "(up to its Lipschitz constant). It shrinks as G's points reach the data.")
    coverage.plotly_chart(plots.coverage_curve(snap), key="lab_fig_coverage", config=cfg)
    with numbers:
        _numbers(snap)
    return snap


def _numbers(snap) -> None:
    c = snap.coverage
    if "modes_covered" in c:
        st.metric("Modes covered", f"{c['modes_covered']} of {c['modes']}")
        st.metric("High-quality samples", f"{100 * c['high_quality']:.0f}%")
        st.caption(f"{api.LAB_EVAL_POINTS:,} samples of fixed noise, every {api.LAB_EVAL_EVERY} steps. High quality: "
                   f"within 3σ of a mode; a mode is covered by {c['min_count']} or more of them.")
    else:
        st.metric("Target covered", f"{100 * c['covered']:.0f}%")
        st.metric("Samples on target", f"{100 * c['on_target']:.0f}%")
        r = c["radius"]
        st.caption(f"{api.LAB_EVAL_POINTS:,} samples of fixed noise, every {api.LAB_EVAL_EVERY} steps. On target: a "
                   f"sample within {r} of a real point; covered: a real point within {r} of a sample.")


def _downloads(snap, panels: list[bytes]) -> None:
    run = {"settings": asdict(snap.settings), "step": snap.step, "d_updates": snap.d_updates,
           "coverage": snap.coverage, "coverage_curve": {k: v.tolist() for k, v in snap.coverage_curve.items()},
           "losses": {k: v.tolist() for k, v in snap.curves.items()}}
    rows = [{"kind": "real", "x": float(x), "y": float(y)} for x, y in snap.real] + \
           [{"kind": "generated", "x": float(x), "y": float(y)} for x, y in snap.fake]
    c1, c2, c3, _ = st.columns([1, 1, 1, 2])
    with c1:
        widgets.download_png(plots.board_png(panels), f"gan-lab-step{snap.step}.png", key="lab_dl_png",
                             label="Panels as PNG")
    with c2:
        widgets.download_json(json.loads(json.dumps(run, default=float)), "gan-lab-run.json", key="lab_dl_json",
                              label="Run as JSON")
    with c3:
        widgets.download_csv(rows, "gan-lab-points.csv", key="lab_dl_csv", label="Points as CSV")


def _share(runner: Runner) -> None:
    """The URL names the preset, or the settings of a custom run (not the user's points)."""
    if runner.preset != "custom":
        for k in ("target", "loss", "noise", "seed"):
            st.query_params.pop(k, None)
        widgets.share(preset=runner.preset)
        return
    s = runner.lab.settings
    params = {"preset": "custom", "loss": s.loss, "noise": s.noise_dim, "seed": s.seed}
    if s.target != "points":
        params["target"] = s.target
    widgets.share(**params)
