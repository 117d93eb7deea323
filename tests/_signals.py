"""Small deterministic test signals with known step onsets (no synthesizer needed)."""
import numpy as np


def bursts(sample_rate=16000, duration_s=12.0, cadence_spm=170.0, noise_rms=0.01, level=0.3, seed=0,
           hum=0.0, jitter=0.03):
    """Decaying noise bursts (footfall-like) in white noise, optional 100 Hz hum.

    Returns (audio float32, onset_samples int64).
    """
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    x = rng.normal(0.0, noise_rms, n)
    if hum:
        t = np.arange(n) / sample_rate
        x += hum * (np.sin(2 * np.pi * 100 * t) + 0.5 * np.sin(2 * np.pi * 200 * t + 1.0))
    onsets = []
    pos = int(0.6 * sample_rate)
    length = int(0.08 * sample_rate)
    env = np.exp(-np.arange(length) / (0.012 * sample_rate))
    while pos + length < n:
        x[pos:pos + length] += level * rng.normal(0.0, 1.0, length) * env
        onsets.append(pos)
        pos += int(sample_rate * 60.0 / cadence_spm * (1.0 + jitter * rng.normal()))
    return x.astype(np.float32), np.array(onsets, dtype=np.int64)


def clinks_before(x, onsets, sample_rate, every, before_s, rel_db, seed=5):
    """Add a "clink" (a noise burst shaped like the steps' bursts, ``rel_db`` re their level) ``before_s`` before
    every ``every``-th step (from the 8th on, once the rhythm is known); return the audio and the clink samples."""
    rng = np.random.default_rng(seed)
    y = x.copy()
    n = int(0.06 * sample_rate)
    env = np.exp(-np.arange(n) / (0.012 * sample_rate))
    clicks = []
    for k in range(8, len(onsets), every):
        a = int(onsets[k] - before_s * sample_rate)
        y[a:a + n] += (0.3 * 10 ** (rel_db / 20) * rng.normal(0.0, 1.0, n) * env).astype(np.float32)
        clicks.append(a)
    return y, np.array(clicks)


def match(found, truth, tolerance):
    """Greedy one-to-one matching; returns (hits, misses, false_alarms, errors)."""
    found = sorted(int(f) for f in found)
    used = set()
    errors = []
    for t in truth:
        best = None
        for i, f in enumerate(found):
            if i in used or abs(f - t) > tolerance:
                continue
            if best is None or abs(f - t) < abs(found[best] - t):
                best = i
        if best is not None:
            used.add(best)
            errors.append(found[best] - t)
    hits = len(errors)
    return hits, len(truth) - hits, len(found) - hits, np.array(errors)


def locate_in_recording(recording, recording_rate, source, source_rate, times_s, *, half_window_s=0.3,
                        search_s=0.6, min_corr=0.5, lag_range_s=None):
    """Where moments of ``source`` ended up in a ``recording`` of it (a loopback capture).

    A player that underruns plays gaps, and a capture that overflows drops samples, so the
    source's clock and the recording's drift apart by unknown jumps.  Each moment is found
    by its own waveform: the ``±half_window_s`` around it in the source is cross-correlated
    with the recording around the global alignment (``±search_s``).

    Parameters
    ----------
    recording, source : np.ndarray [shape=(n,), float]
    recording_rate, source_rate : int [Hz]
    times_s : array-like [s]
        Moments of the source.
    half_window_s, search_s : float [s]
    min_corr : float
        Normalised correlation a match must reach (else NaN: not in the recording).
    lag_range_s : (float, float) or None [s]
        Where the recording can start relative to the source (recording time - source
        time), e.g. ``(-30, 5)``; limits the global alignment (a looped noise bed in the
        source can match elsewhere).

    Returns
    -------
    np.ndarray [shape=(len(times_s),), s]
        Times in the recording, NaN where a moment was not captured.
    """
    from math import gcd

    from scipy.signal import correlate, resample_poly

    rate = 11025
    def to_rate(x, r):
        g = gcd(int(r), rate)
        return resample_poly(np.asarray(x, np.float64), rate // g, int(r) // g)

    rec, src = to_rate(recording, recording_rate), to_rate(source, source_rate)
    # global alignment: recording time = source time + lag
    full = correlate(rec, src, mode="full", method="fft")
    if lag_range_s is not None:
        lags = (np.arange(len(full)) - (len(src) - 1)) / rate
        full[(lags < lag_range_s[0]) | (lags > lag_range_s[1])] = -np.inf
    lag0 = (int(np.argmax(full)) - (len(src) - 1)) / rate
    h, s = int(half_window_s * rate), int(search_s * rate)
    rec_energy = np.concatenate([[0.0], np.cumsum(rec ** 2)])
    out = np.full(len(times_s), np.nan)
    for i, t in enumerate(np.asarray(times_s, float)):
        c = int(round(t * rate))
        if c - h < 0 or c + h > len(src):
            continue
        tmpl = src[c - h:c + h]
        lo = max(0, int(round((t + lag0) * rate)) - h - s)
        hi = min(len(rec), int(round((t + lag0) * rate)) + h + s)
        if hi - lo < len(tmpl):
            continue
        xc = correlate(rec[lo:hi], tmpl, mode="valid", method="fft")
        energy = rec_energy[lo + len(tmpl):hi + 1] - rec_energy[lo:hi - len(tmpl) + 1]
        norm = xc / np.sqrt(np.maximum(energy, 1e-20) * np.sum(tmpl ** 2))
        k = int(np.argmax(norm))
        if norm[k] >= min_corr:
            out[i] = (lo + k + h) / rate
    return out


def burst_train(onsets, levels, sample_rate=16000, duration_s=20.0, noise_rms=0.01, seed=1):
    """Footfall-like bursts (as in :func:`bursts`) at the given onset samples and peak levels, in white noise.

    Returns audio float32.
    """
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    x = rng.normal(0.0, noise_rms, n)
    length = int(0.08 * sample_rate)
    env = np.exp(-np.arange(length) / (0.012 * sample_rate))
    for pos, level in zip(onsets, levels):
        x[pos:pos + length] += level * rng.normal(0.0, 1.0, length) * env
    return x.astype(np.float32)
