"""The speaker → microphone path: sweep probes, their deconvolution and the verdict.

Offline: what a microphone would hear is built here (our probe through a known path, plus footsteps and
noise), so the truth is known to the sample.  The live measurement on the virtual device is in
tests/test_session.py."""
import numpy as np
import pytest

from _signals import bursts
from stepsound.echo.roundtrip import (MAX_ROUND_TRIP_S, RoundTripRefused, deconvolve, judge_sweeps, sweep)
from stepsound.errors import AudioDeviceError

SR = 44100


def _heard(probe, lag, gain=0.5, extra=None, tail=True, seed=0):
    """The microphone during one probe: probe delayed by `lag` through a small room, plus `extra`."""
    rng = np.random.default_rng(seed)
    n = len(probe) + int(MAX_ROUND_TRIP_S * SR)
    h = np.zeros(int(0.05 * SR))
    h[0] = gain
    h[int(0.003 * SR)] = -0.4 * gain
    if tail:
        h += gain * 0.02 * rng.standard_normal(len(h)) * np.exp(-np.arange(len(h)) / (0.01 * SR))
    y = np.zeros(n)
    echo = np.convolve(probe, h)
    y[lag:lag + len(echo)] += echo[:n - lag]
    if extra is not None:
        y += extra[:n]
    return y.astype(np.float32)


def _responses(lags, extra_level=0.0, noise=1e-4, seed=0, gain=0.5):
    probe = sweep(SR, 0.5, -12.0)
    n = len(probe) + int(MAX_ROUND_TRIP_S * SR)
    out = []
    for i, lag in enumerate(lags):
        steps, _ = bursts(sample_rate=SR, duration_s=n / SR + 0.1, cadence_spm=180, noise_rms=noise,
                          level=extra_level, seed=seed + i) if extra_level else (np.zeros(n), None)
        heard = _heard(probe, lag, gain=gain, extra=np.asarray(steps, float), seed=seed + i)
        out.append(deconvolve(heard, probe, int(MAX_ROUND_TRIP_S * SR)))
    return out


def test_round_trip_is_found_to_the_sample_while_the_runner_runs():
    """Footsteps louder than the probe (0.9 peak against a -12 dBFS sweep at half gain) do not move it."""
    quiet = judge_sweeps(_responses([1662] * 3), SR)
    assert quiet["round_trip_samples"] == 1662 and quiet["spread_ms"] == 0.0
    running = judge_sweeps(_responses([1662] * 3, extra_level=0.9, noise=0.01), SR)
    assert abs(running["round_trip_samples"] - 1662) <= 1, running["round_trip_samples"]
    assert running["peak_db"] > 20.0
    # the mean response starts the echo canceller: its direct sound is where the path put it
    assert abs(int(np.argmax(np.abs(running["response"]))) - 1662) <= 1


def test_unclean_measurements_are_refused_with_the_reason():
    # the probe drowned in noise: peaks too weak
    with pytest.raises(RoundTripRefused, match="stood clear of the noise"):
        judge_sweeps(_responses([1662] * 3, extra_level=0.9, noise=0.3, gain=0.15), SR)
    # the path moved between sweeps (an audio server changing its latency mid-measurement)
    with pytest.raises(RoundTripRefused, match="disagree by"):
        judge_sweeps(_responses([1662, 1662 + 200, 1662 + 400]), SR)
    # nothing came back at all
    silent = [deconvolve(np.random.default_rng(1).standard_normal(40000).astype(np.float32) * 1e-3,
                         sweep(SR), 20000) for _ in range(3)]
    with pytest.raises(AudioDeviceError, match="could not hear"):
        judge_sweeps(silent, SR)


def test_two_clean_sweeps_of_three_are_enough():
    """One sweep spoiled by a burst of noise: the other two decide, and say so."""
    good = _responses([1500] * 2)
    rng = np.random.default_rng(5)
    probe = sweep(SR, 0.5, -12.0)
    spoiled = deconvolve(_heard(probe, 1500, gain=0.01, extra=rng.standard_normal(60000) * 0.5),
                         probe, int(MAX_ROUND_TRIP_S * SR))
    res = judge_sweeps(good + [spoiled], SR)
    assert res["round_trip_samples"] == 1500 and res["sweeps_clean"] == 2 and res["sweeps"] == 3
