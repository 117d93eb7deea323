"""The Python API a scientist uses in a notebook (``import stepsound``), on the bundled recordings."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import stepsound
from stepsound.errors import ParameterError

FIXTURE = Path(__file__).resolve().parents[1] / "audio_fixtures" / "heel_calibration.flac"


@pytest.fixture(scope="module")
def audio():
    x, sr = sf.read(str(FIXTURE), dtype="float32", always_2d=False)
    return x, sr


@pytest.fixture(scope="module")
def from_file():
    return stepsound.analyze_file(str(FIXTURE))


def test_every_public_name_resolves():
    for name in stepsound.__all__:
        assert getattr(stepsound, name) is not None, name
    with pytest.raises(AttributeError):
        stepsound.no_such_thing


def test_an_array_gives_what_the_file_gives(audio, from_file):
    x, sr = audio
    a = stepsound.analyze_array(x, sr, name="heel")
    assert len(from_file.steps) > 20
    assert [s.onset_sample for s in a.steps] == [s.onset_sample for s in from_file.steps]
    assert [s.impact_db for s in a.steps] == [s.impact_db for s in from_file.steps]
    assert a.summary() == from_file.summary()
    assert a.file == "heel" and a.duration_s == pytest.approx(len(x) / sr)


def test_streaming_blocks_by_hand_gives_the_same_steps(audio, from_file):
    x, sr = audio
    engine = stepsound.Engine(sr)
    rng = np.random.default_rng(3)
    steps, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 5000))
        steps += [ev for ev in engine.process(x[i:i + n]) if isinstance(ev, stepsound.Step)]
        i += n
    assert [s.onset_sample for s in steps] == [s.onset_sample for s in from_file.steps]


def test_integer_and_stereo_input(audio, from_file):
    x, sr = audio
    pcm = np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)
    a = stepsound.analyze_array(np.stack([pcm, pcm], axis=1), sr)
    found = np.array([s.onset_sample for s in a.steps])
    truth = np.array([s.onset_sample for s in from_file.steps])
    assert len(found) == len(truth)
    assert np.max(np.abs(found - truth)) <= 2     # 16-bit rounding may move an onset by a sample or two


@pytest.mark.parametrize("samples, rate, what", [
    (np.zeros((10, 2, 2)), 44100, "shape"),
    (np.array([]), 44100, "shape"),
    (np.array([0.0, np.nan, 0.0]), 44100, "non-finite"),
    (np.zeros(100), 100, "sample_rate"),
    (np.zeros(100), 44100.5, "sample_rate"),
    (np.array(["a", "b"]), 44100, "numbers"),
])
def test_bad_arrays_are_refused_with_the_reason(samples, rate, what):
    with pytest.raises(ParameterError, match=what):
        stepsound.analyze_array(samples, rate)


def test_steps_as_a_data_frame(from_file):
    pd = pytest.importorskip("pandas")
    frame = from_file.steps_frame()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == len(from_file.steps)
    assert np.allclose(frame["time_s"], [round(s.time_s, 4) for s in from_file.steps])
    assert {"impact_db", "heavy", "cadence_spm", "side", "detect_latency_ms"} <= set(frame.columns)
    empty = stepsound.analyze_array(np.zeros(44100, np.float32), 44100).steps_frame()
    assert len(empty) == 0 and "time_s" in empty.columns


def test_render_a_plan_from_python(tmp_path):
    out = tmp_path / "cues.flac"
    result, label = stepsound.render_cue_track(stepsound.RenderSettings(
        out, stepsound.MetronomeSettings(spm=170), duration_s=10.0, clicks_csv=False))
    assert label == "170 spm" and out.exists()
    y, sr = sf.read(str(out))
    assert len(y) == pytest.approx(10 * sr, abs=1)
    assert result.n_beats == pytest.approx(170 / 6, abs=1)
