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
