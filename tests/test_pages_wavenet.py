"""The WaveNet page through AppTest: every view runs, the clip picker and the stack's controls change what is drawn
and go into the URL, the prediction window moves, generation gives identical naive and fast waveforms, and bad
input (absurd URL values, typed dilations that are not numbers, no data folder, a missing or corrupt checkpoint)
gives a message; the vocoder renders a test clip from its mel-spectrogram and the classifier's verdicts are shown.
Views that need a bundled checkpoint skip when it is absent."""
from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from app import wavenet_views
from engine import api
from tests import apptest

PAGE = "app_pages/wavenet.py"
VIEWS = ["mulaw", "stack", "predict", "generate", "vocoder"]
HAS_DATA = api.fsdd.available()
HAS_MODEL = (api.BUNDLED_DIR / wavenet_views.MODEL).exists()
HAS_VOCODER = (api.BUNDLED_DIR / wavenet_views.VOCODER).exists() and (api.BUNDLED_DIR / wavenet_views.JUDGE).exists()
needs_data = pytest.mark.skipif(not HAS_DATA, reason="the FSDD recordings are not installed")
needs_model = pytest.mark.skipif(not (HAS_DATA and HAS_MODEL), reason="no bundled wavenet-fsdd checkpoint")
needs_vocoder = pytest.mark.skipif(not (HAS_DATA and HAS_VOCODER), reason="no bundled vocoder and classifier")


def open_view(view: str, **params) -> AppTest:
    return apptest.open_view(PAGE, view, **params)


metrics = apptest.metrics
param = apptest.param


@needs_data
@pytest.mark.parametrize("view", VIEWS)
def test_view_runs_without_errors(clear_streamlit_caches, view):
    if view in ("predict", "generate") and not HAS_MODEL or view == "vocoder" and not HAS_VOCODER:
        pytest.skip("no bundled checkpoint for this view")
    at = open_view(view)
    assert not at.error, [e.value for e in at.error]
    assert not [w for w in at.warning if "no measured test" not in w.value]
    assert at.title[0].value == "WaveNet on spoken digits"


@needs_data
def test_mulaw_picks_a_clip_and_shares_it(clear_streamlit_caches):
    at = open_view("mulaw")
    before = apptest.charts(at)
    assert 100 < int(metrics(at)["Levels used (of 256)"]) <= 256 and len(at.get("audio")) == 2
    at.selectbox(key="wn_mu_digit").set_value(3).run()
    assert apptest.charts(at) != before and param(at, "digit") == "3"
    at = open_view("mulaw", digit=3, speaker="theo", take=2)
    assert (at.selectbox(key="wn_mu_digit").value, at.selectbox(key="wn_mu_speaker").value,
            at.selectbox(key="wn_mu_take").value) == (3, "theo", 2)
    assert any("3_theo_2.wav" in c.value for c in at.caption)


@needs_data
def test_mulaw_beats_uniform_bins_on_the_quiet_half(clear_streamlit_caches):
    at = open_view("mulaw")
    mu, uniform = metrics(at)["SNR, quiet half"], at.metric[1].proto.delta
    assert float(mu.split()[0]) > float(uniform.split()[1]) + 5, (mu, uniform)


def test_bad_url_values_warn(clear_streamlit_caches):
    at = open_view("mulaw", digit=99, speaker="bob", take="x")
    if HAS_DATA:
        assert len(at.warning) == 3 and at.selectbox(key="wn_mu_digit").value == 7
    at = open_view("stack", stacks=0, layers=50, k=9)
    assert len(at.warning) == 3 and at.slider(key="wn_layers").value == 4
    at = open_view("nonsense")
    assert any("view='nonsense'" in w.value for w in at.warning)


def test_stack_receptive_field_follows_the_controls_and_autograd_agrees(clear_streamlit_caches):
    at = open_view("stack")
    assert metrics(at)["Receptive field R"] == "16 samples" and metrics(at)["Measured by autograd"] == "16 samples"
    at.slider(key="wn_stacks").set_value(2).run()
    at.slider(key="wn_layers").set_value(3).run()
    assert metrics(at)["Receptive field R"] == "15 samples" and metrics(at)["Measured by autograd"] == "15 samples"
    assert (param(at, "stacks"), param(at, "layers")) == ("2", "3")
    assert "every one" in at.metric[3].proto.delta
    at.slider(key="wn_stacks").set_value(1).run()
    at.text_input(key="wn_dil").input("1, 3, 9").run()
    assert metrics(at)["Receptive field R"] == "14 samples" and metrics(at)["Measured by autograd"] == "14 samples"
    assert "only 8 of them read: holes" in at.metric[3].proto.delta and param(at, "dil") == "1,3,9"
    at.select_slider(key="wn_kernel").set_value(3).run()
    assert metrics(at)["Receptive field R"] == "27 samples" and metrics(at)["At 8 kHz"] == "3.4 ms"


def test_stack_bad_dilations_warn_and_wide_stacks_are_not_drawn(clear_streamlit_caches):
    at = open_view("stack", dil="a,b")
    assert any("Dilations 'a,b'" in w.value for w in at.warning)
    assert metrics(at)["Receptive field R"] == "16 samples"
    at = open_view("stack", stacks=4, layers=7)
    assert metrics(at)["Receptive field R"] == "509 samples" and any("too wide" in i.value for i in at.info)
    assert not at.get("plotly_chart")


@needs_model
def test_prediction_window_moves_and_bits_are_shown(clear_streamlit_caches):
    at = open_view("predict")
    table = next(m.value for m in at.markdown if "Bits per sample" in m.value)
    assert "Previous sample" in table and "Unigram" in table
    heat = apptest.charts(at)[0]
    at.slider(key="wn_window").set_value(100).run()
    assert apptest.charts(at)[0] != heat and param(at, "at") == "100"
    assert any("samples 800 to 1,199" in c.value for c in at.caption)


@needs_model
def test_generation_gives_identical_naive_and_fast_waveforms(clear_streamlit_caches, monkeypatch):
    monkeypatch.setattr(wavenet_views, "FAST_SECONDS", [0.01, 0.02])  # 80 and 160 samples: a fast test
    monkeypatch.setattr(wavenet_views, "FAST_DEFAULT", 0.01)
    monkeypatch.setattr(wavenet_views, "NAIVE_SECONDS", [0.005, 0.01])
    monkeypatch.setattr(wavenet_views, "NAIVE_DEFAULT", 0.005)
    at = open_view("generate", digit=4, seed=3)
    at.select_slider(key="wn_gen_fast").set_value(0.02)
    at.select_slider(key="wn_gen_naive").set_value(0.01)
    at.button[0].click().run()  # the form's Generate button
    apptest.wait_for_job(at, seconds=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = metrics(at)
    assert shown["Same waveform"] == "identical" and "Naive" in shown and "Fast" in shown
    assert len(at.get("audio")) == 3  # generated (fast), the real clip, the naive prefix
    assert any("Generated '4'" in m.value for m in at.markdown)
    if (api.BUNDLED_DIR / wavenet_views.JUDGE).exists():  # the classifier's verdict on both clips, its measured score
        assert sum("the classifier hears" in m.value for m in at.markdown) == 2
        assert any("right on real test clips" in i.value and "generated clips" in i.value for i in at.info)


@needs_vocoder
def test_vocoder_renders_a_test_clip_from_its_spectrogram(clear_streamlit_caches):
    shortest = min(api.fsdd.clips("test"), key=lambda c: len(c.audio))  # a fast test: the shortest test clip
    at = open_view("vocoder", digit=shortest.digit, speaker=shortest.speaker, take=shortest.take, seed=2)
    assert not at.error and any("right on real test clips" in i.value and "vocoded" in i.value for i in at.info)
    assert at.number_input(key="wn_voc_seed").value == 2
    at.button[0].click().run()  # the form's Render button
    apptest.wait_for_job(at, seconds=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.get("audio")) == 2 and len(at.get("plotly_chart")) == 2
    assert sum("the classifier hears" in m.value for m in at.markdown) == 2
    assert any(f"{shortest.name}.wav" in m.value for m in at.markdown)
    assert any("ms per sample, fast sampler" in c.value for c in at.caption)


@needs_vocoder
def test_vocoder_bad_url_values_warn(clear_streamlit_caches):
    at = open_view("vocoder", seed=-5, take=9)
    assert len(at.warning) == 2 and at.number_input(key="wn_voc_seed").value == 0 and not at.error


def test_no_data_folder_gives_a_message(clear_streamlit_caches, monkeypatch, tmp_path):
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))
    for view in ("mulaw", "predict", "generate", "vocoder"):
        at = open_view(view)
        assert any("Free Spoken Digit Dataset is not available" in e.value for e in at.error), view
    assert not open_view("stack").error  # the stack needs no data


@needs_model
def test_missing_or_corrupt_checkpoint_gives_a_message(clear_streamlit_caches, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    shutil.copytree(api.resolve(wavenet_views.MODEL), folder / wavenet_views.MODEL)
    monkeypatch.setattr(api, "BUNDLED_DIR", folder)
    (folder / wavenet_views.MODEL / "model.safetensors").write_bytes(b"broken")
    at = open_view("predict")
    assert any("cannot be loaded" in e.value for e in at.error) and not at.get("plotly_chart")
    shutil.rmtree(folder / wavenet_views.MODEL)
    at = open_view("generate")
    assert any("missing" in e.value for e in at.error)
    assert not open_view("mulaw").error  # the mu-law view needs no model
    at = open_view("vocoder")
    assert any(wavenet_views.VOCODER in e.value and "missing" in e.value for e in at.error)


@needs_vocoder
def test_corrupt_vocoder_gives_a_message(clear_streamlit_caches, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    shutil.copytree(api.resolve(wavenet_views.VOCODER), folder / wavenet_views.VOCODER)
    monkeypatch.setattr(api, "BUNDLED_DIR", folder)
    (folder / wavenet_views.VOCODER / "model.safetensors").write_bytes(b"broken")
    at = open_view("vocoder")
    assert any("vocoder cannot be loaded" in e.value for e in at.error) and not at.button
