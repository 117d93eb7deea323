"""Cue sounds synthesized by stepsound (no third-party samples).

Every sound is computed from a few damped sinusoids, glides and envelopes,
deterministically, at any sample rate; its peak is set to ``level_db`` dBFS.
Partials above 0.45 × sample_rate are left out so nothing aliases at low rates.

Metronome sounds (short, sharp onset at sample 0 so the click lands on the grid):

``click``      bright 2 ms tick, the most precise-sounding
``woodblock``  hollow wooden "tock" (default)
``low_tick``   soft low tick, least intrusive over music
``beep``       60 ms 1 kHz tone

Coaching cues (longer, clearly different from the metronome):

``land_softer``  soft falling two-note chime ("shh-down")
``speed_up``     rising three-note arpeggio
``slow_down``    falling three-note arpeggio
``on_target``    warm major-third dyad chime

Examples
--------
>>> y = make_sound("woodblock", 48000, level_db=-6.0)
>>> y.dtype, round(float(abs(y).max()), 3)
(dtype('float32'), 0.501)
"""
from __future__ import annotations

import math

import numpy as np

from stepsound.errors import ParameterError

__all__ = [
    "CLICK_SOUNDS",
    "CUE_SOUNDS",
    "SOUND_KINDS",
    "DESCRIPTIONS",
    "make_sound",
    "db_to_gain",
]

#: Sounds suitable as the metronome beat.
CLICK_SOUNDS = ("click", "woodblock", "low_tick", "beep")
#: Coaching cue sounds (triggered, not on the grid).
CUE_SOUNDS = ("land_softer", "speed_up", "slow_down", "on_target")
#: Every sound kind, in a stable order (the index is the sound id of the engine).
SOUND_KINDS = CLICK_SOUNDS + CUE_SOUNDS

DESCRIPTIONS = {
    "click": "bright 2 ms tick, the most precise-sounding",
    "woodblock": "hollow wooden tock (default)",
    "low_tick": "soft low tick, least intrusive over music",
    "beep": "60 ms 1 kHz tone",
    "land_softer": "soft falling two-note chime: land softer",
    "speed_up": "rising three-note arpeggio: cadence too low",
    "slow_down": "falling three-note arpeggio: cadence too high",
    "on_target": "warm two-note chord: on target",
}


def db_to_gain(level_db: float) -> float:
    """Convert a level in dB (relative to full scale) to a linear gain."""
    return float(10.0 ** (level_db / 20.0))


def _check(sample_rate, level_db) -> tuple[float, float]:
    try:
        sr = float(sample_rate)
    except (TypeError, ValueError):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive number") from None
    if not (math.isfinite(sr) and sr >= 1000):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a number >= 1000 [Hz]")
    try:
        lv = float(level_db)
    except (TypeError, ValueError):
        raise ParameterError(f"level_db={level_db!r} must be a number [dBFS]") from None
    if not (math.isfinite(lv) and lv <= 0.0):
        raise ParameterError(f"level_db={level_db!r} must be a finite number <= 0 [dBFS]")
    return sr, lv


def _t(sample_rate: float, duration_s: float) -> np.ndarray:
    n = max(1, int(round(duration_s * sample_rate)))
    return np.arange(n, dtype=np.float64) / sample_rate


def _partials(sample_rate, duration_s, partials, attack_s=0.0) -> np.ndarray:
    """Sum of damped sines ``(freq_hz, amplitude, decay_time_constant_s)``."""
    t = _t(sample_rate, duration_s)
    y = np.zeros_like(t)
    nyq = 0.45 * sample_rate
    for freq, amp, tau in partials:
        if freq >= nyq:
            continue
        y += amp * np.sin(2 * np.pi * freq * t) * np.exp(-t / tau)
    if attack_s > 0:
        n_att = max(1, int(round(attack_s * sample_rate)))
        ramp = np.ones_like(t)
        k = min(n_att, len(t))
        ramp[:k] = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / n_att)
        y *= ramp
    return y


def _tone(sample_rate, duration_s, freq_start, freq_end=None, fade_s=0.005, harmonics=(1.0,)) -> np.ndarray:
    """A (gliding) tone with raised-cosine fades; exponential glide in frequency."""
    t = _t(sample_rate, duration_s)
    f_end = freq_start if freq_end is None else freq_end
    if f_end == freq_start:
        phase = 2 * np.pi * freq_start * t
        freq_max = freq_start
    else:
        d = duration_s
        r = math.log(f_end / freq_start) / d
        phase = 2 * np.pi * freq_start * (np.exp(r * t) - 1.0) / r
        freq_max = max(freq_start, f_end)
    y = np.zeros_like(t)
    for i, amp in enumerate(harmonics, start=1):
        if freq_max * i < 0.45 * sample_rate:
            y += amp * np.sin(i * phase)
    n_fade = min(len(t) // 2, max(1, int(round(fade_s * sample_rate))))
    env = np.ones_like(t)
    w = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_fade) / n_fade)
    env[:n_fade] = w
    env[len(t) - n_fade:] = w[::-1]
    return y * env


def _concat(sample_rate, pieces, gap_s) -> np.ndarray:
    gap = np.zeros(int(round(gap_s * sample_rate)))
    out = []
    for i, p in enumerate(pieces):
        if i:
            out.append(gap)
        out.append(p)
    return np.concatenate(out)


def _raw(kind: str, sr: float) -> np.ndarray:
    if kind == "click":
        # Two bright partials, very fast decay: ~2 ms perceptual length.
        return _partials(sr, 0.012, [(3100.0, 1.0, 0.0012), (5300.0, 0.6, 0.0008), (1700.0, 0.4, 0.0016)])
    if kind == "woodblock":
        # Inharmonic wood modes with a 0.3 ms attack so the onset is crisp but not a pop.
        return _partials(
            sr, 0.080, [(820.0, 1.0, 0.018), (1930.0, 0.55, 0.010), (3260.0, 0.25, 0.005)], attack_s=0.0003
        )
    if kind == "low_tick":
        return _partials(sr, 0.120, [(210.0, 1.0, 0.030), (430.0, 0.35, 0.015)], attack_s=0.002)
    if kind == "beep":
        return _tone(sr, 0.060, 1000.0, fade_s=0.003)
    if kind == "land_softer":
        soft = (1.0, 0.15)
        a = _tone(sr, 0.16, 660.0, 600.0, fade_s=0.04, harmonics=soft)
        b = _tone(sr, 0.26, 440.0, 400.0, fade_s=0.08, harmonics=soft)
        return _concat(sr, [a, 0.8 * b], 0.03)
    if kind == "speed_up":
        notes = [523.25, 659.25, 783.99]
        return _concat(sr, [_tone(sr, 0.07, f, fade_s=0.008, harmonics=(1.0, 0.3)) for f in notes], 0.025)
    if kind == "slow_down":
        notes = [783.99, 659.25, 523.25]
        return _concat(sr, [_tone(sr, 0.07, f, fade_s=0.008, harmonics=(1.0, 0.3)) for f in notes], 0.025)
    if kind == "on_target":
        t = _t(sr, 0.35)
        env = np.exp(-t / 0.12)
        y = np.zeros_like(t)
        for f, amp in ((523.25, 1.0), (659.25, 0.8), (1046.5, 0.25)):
            if f < 0.45 * sr:
                y += amp * np.sin(2 * np.pi * f * t)
        n_att = max(1, int(round(0.004 * sr)))
        env[:n_att] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(n_att) / n_att)
        return y * env
    raise ParameterError(f"sound {kind!r} is unknown; choose one of {', '.join(SOUND_KINDS)}")


def make_sound(kind: str, sample_rate: float, level_db: float = -6.0) -> np.ndarray:
    """Synthesize one cue sound.

    Parameters
    ----------
    kind : str
        One of :data:`SOUND_KINDS`.
    sample_rate : float >= 1000 [Hz]
    level_db : float <= 0 [dBFS]
        Peak level of the sound.

    Returns
    -------
    y : np.ndarray [shape=(n,), float32]
        Mono sound; its onset is at sample 0 and its peak is ``level_db`` dBFS.
        Deterministic: the same arguments give the same samples.

    Raises
    ------
    ParameterError
        Unknown kind, bad sample rate or level.
    """
    sr, lv = _check(sample_rate, level_db)
    if not isinstance(kind, str):
        raise ParameterError(f"sound {kind!r} must be a name; choose one of {', '.join(SOUND_KINDS)}")
    y = _raw(kind, sr)
    peak = float(np.max(np.abs(y)))
    if peak > 0:
        y = y * (db_to_gain(lv) / peak)
    return y.astype(np.float32)
