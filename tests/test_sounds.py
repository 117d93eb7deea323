"""Synthesized cue sounds: any rate, exact level, deterministic, distinct."""
from __future__ import annotations

import numpy as np
import pytest

from stepsound.errors import ParameterError
from stepsound.cue.sounds import CLICK_SOUNDS, CUE_SOUNDS, DESCRIPTIONS, SOUND_KINDS, make_sound


@pytest.mark.parametrize("sample_rate", [8000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("kind", SOUND_KINDS)
def test_every_sound_at_every_rate(kind, sample_rate):
    y = make_sound(kind, sample_rate, -12.0)
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) > 0
    assert np.all(np.isfinite(y))
    assert 20 * np.log10(np.max(np.abs(y))) == pytest.approx(-12.0, abs=0.01)
    assert abs(y[0]) < 0.05  # starts from (near) silence: no pop before the onset
    assert abs(y[-1]) < 0.02 * np.max(np.abs(y))  # decays / fades out: no click at the end


@pytest.mark.parametrize("kind", CLICK_SOUNDS)
def test_metronome_sounds_are_short_with_early_peak(kind):
    sr = 48000
    y = make_sound(kind, sr, 0.0)
    assert len(y) <= 0.15 * sr
    assert np.argmax(np.abs(y)) < 0.01 * sr  # the beat is heard at its onset


@pytest.mark.parametrize("kind", CUE_SOUNDS)
def test_cue_sounds_are_longer_than_clicks(kind):
    sr = 48000
    assert 0.2 * sr <= len(make_sound(kind, sr)) <= 0.6 * sr


def test_sounds_are_deterministic():
    for kind in SOUND_KINDS:
        assert np.array_equal(make_sound(kind, 44100, -6), make_sound(kind, 44100, -6))


def _spectrum(y, sr, n=1 << 15):
    mag = np.abs(np.fft.rfft(y, n))
    return mag / (np.linalg.norm(mag) + 1e-12)


def test_sounds_are_distinct():
    sr = 44100
    specs = {k: _spectrum(make_sound(k, sr), sr) for k in SOUND_KINDS}
    for a in SOUND_KINDS:
        for b in SOUND_KINDS:
            if a < b and {a, b} != {"speed_up", "slow_down"}:  # same notes, reversed: checked below
                assert float(specs[a] @ specs[b]) < 0.9, (a, b)
    # speed_up rises, slow_down falls: compare the dominant frequency of first and last note
    def first_last_peak(y):
        q = len(y) // 4
        f = np.fft.rfftfreq(1 << 15, 1 / sr)
        return (f[np.argmax(np.abs(np.fft.rfft(y[:q], 1 << 15)))], f[np.argmax(np.abs(np.fft.rfft(y[-q:], 1 << 15)))])

    a, b = first_last_peak(make_sound("speed_up", sr))
    assert b > a
    a, b = first_last_peak(make_sound("slow_down", sr))
    assert b < a


def test_no_partials_above_nyquist_at_low_rate():
    y = make_sound("click", 8000, 0.0)
    f = np.fft.rfftfreq(1 << 14, 1 / 8000)
    mag = np.abs(np.fft.rfft(y, 1 << 14))
    assert f[np.argmax(mag)] < 3600


def test_descriptions_cover_every_sound():
    assert set(DESCRIPTIONS) == set(SOUND_KINDS)


@pytest.mark.parametrize(
    "args",
    [("cowbell", 44100, -6), ("click", 0, -6), ("click", float("nan"), -6), ("click", 44100, 1.0), ("click", 44100, float("nan")), (3, 44100, -6)],
)
def test_bad_arguments(args):
    with pytest.raises(ParameterError):
        make_sound(*args)
