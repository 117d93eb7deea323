"""The echo canceller removes our own clicks from the microphone and leaves steps alone.

The 'microphone' is built here: the metronome's own output through a known path (a pure delay, as on the
virtual audio device, or a small room), plus noise and step-like bursts."""
import numpy as np
import pytest

from _signals import bursts
from stepsound.echo._aec import EchoCanceller
from stepsound.cue.metronome import Metronome

SR = 44100
LAG = 1662


def _scene(seconds=8.0, room=False, steps=None, level_db=-6.0, seed=0):
    met = Metronome(SR, cadence_spm=176, sound="woodblock", level_db=level_db)
    out = np.zeros(int(seconds * SR), np.float32)
    met.render_into(out, 0)
    h = np.zeros(int(0.03 * SR))
    h[0] = 0.8
    if room:
        h[int(0.004 * SR)] = -0.3
        h[int(0.011 * SR)] = 0.2
        h += 0.01 * np.random.default_rng(seed).standard_normal(len(h)) * np.exp(-np.arange(len(h)) / (0.005 * SR))
    echo = np.zeros(len(out))
    e = np.convolve(out, h)[:len(out) - LAG]
    echo[LAG:] = e
    noise = np.random.default_rng(seed + 1).normal(0.0, 3e-4, len(out))
    mic = echo + noise + (0.0 if steps is None else steps[:len(out)])
    full = np.zeros(int(0.5 * SR))
    full[LAG:LAG + len(h)] = h
    return out, mic.astype(np.float32), echo, full


def _run(aec, mic, out, blocks):
    clean = np.zeros_like(mic)
    pos = 0
    for n in blocks:
        if pos >= len(mic):
            break
        n = min(n, len(mic) - pos)
        aec.process(mic[pos:pos + n], out[pos:pos + n], clean[pos:pos + n])
        pos += n
    return clean


def _erle_db(echo, clean, mic, lo, hi):
    resid = clean[lo:hi] - (mic[lo:hi] - echo[lo:hi])     # what is left of the echo
    return 10 * np.log10(np.sum(echo[lo:hi] ** 2) / np.sum(resid ** 2))


def test_same_output_whatever_the_block_sizes():
    out, mic, _, resp = _scene(3.0, room=True)
    ref = None
    rng = np.random.default_rng(3)
    for blocks in ([256] * 600, [1] * 5000 + [4096] * 40, list(rng.integers(1, 3000, 400))):
        aec = EchoCanceller(SR, LAG - 400)
        got = _run(aec, mic, out, blocks)
        if ref is None:
            ref = got
        else:
            np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("room", [False, True])
def test_started_from_the_measured_response_it_cancels_from_the_first_click(room):
    out, mic, echo, resp = _scene(4.0, room=room)
    aec = EchoCanceller(SR, 0)
    aec.set_delay(LAG - aec.pre_samples)
    aec.set_impulse_response(resp[aec.delay:])
    clean = _run(aec, mic, out, [512] * 1000)
    assert _erle_db(echo, clean, mic, 0, int(1.0 * SR)) > 30.0
    assert _erle_db(echo, clean, mic, int(1.0 * SR), len(mic)) > 30.0


def test_without_a_measured_response_the_clicks_teach_it_the_path():
    """No sweep measurement (refused, or --round-trip-ms given): the tracker deconvolves the session's own
    clicks and hands the canceller the path once three estimates agree; from then on it cancels."""
    from stepsound.echo.path import EchoPathTracker

    out, mic, echo, _ = _scene(8.0, room=True)
    aec = EchoCanceller(SR, LAG - 2000)      # a guess 45 ms off
    tracker = EchoPathTracker(SR, aec)
    clean = np.zeros_like(mic)
    for pos in range(0, len(mic) - 512, 512):
        aec.process(mic[pos:pos + 512], out[pos:pos + 512], clean[pos:pos + 512])
        tracker.push(mic[pos:pos + 512], out[pos:pos + 512])
        tracker.update()
    assert tracker.moves == 1
    assert abs(aec.delay + int(np.argmax(np.abs(aec.impulse_response()))) - LAG) <= 2   # the direct sound
    assert _erle_db(echo, clean, mic, 0, int(0.5 * SR)) < 3.0
    assert _erle_db(echo, clean, mic, 3 * SR, 8 * SR - 512) > 20.0


def test_a_step_on_top_of_a_click_keeps_its_own_level():
    """With the clicks as loud as the steps, the cleaned signal holds each step at its true level."""
    steps, onsets = bursts(sample_rate=SR, duration_s=6.0, cadence_spm=168, noise_rms=0.0, level=0.3, seed=4)
    out, mic, echo, resp = _scene(6.0, steps=steps.astype(float))
    aec = EchoCanceller(SR, 0)
    aec.set_delay(LAG - aec.pre_samples)
    aec.set_impulse_response(resp[aec.delay:])
    clean = _run(aec, mic, out, [512] * 1000)
    win = int(0.06 * SR)
    true_db, clean_db, mic_db = [], [], []
    for o in onsets:
        if o + win < len(mic):
            true_db.append(10 * np.log10(np.mean(steps[o:o + win].astype(float) ** 2)))
            clean_db.append(10 * np.log10(np.mean(clean[o:o + win].astype(float) ** 2)))
            mic_db.append(10 * np.log10(np.mean(mic[o:o + win].astype(float) ** 2)))
    err = np.abs(np.array(clean_db) - np.array(true_db))
    assert np.max(np.abs(np.array(mic_db) - np.array(true_db))) > 1.0    # the clicks did change some steps
    assert np.max(err) < 0.5, np.round(err, 2)
