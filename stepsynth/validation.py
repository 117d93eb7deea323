"""Argument checks shared by the synthesiser's modules."""
from __future__ import annotations

import math

import numpy as np

from stepsynth.constants import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from stepsound.errors import ParameterError


# --------------------------------------------------------------------------- validation


def check_sample_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        if isinstance(sample_rate, float) and math.isfinite(sample_rate) and sample_rate == int(sample_rate):
            sample_rate = int(sample_rate)
        else:
            raise ParameterError(f"sample_rate={sample_rate!r} must be a positive integer")
    sample_rate = int(sample_rate)
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ParameterError(
            f"sample_rate={sample_rate} must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz"
        )
    return sample_rate


def check_real(name, value, lo=None, hi=None, lo_open=False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} must be a real number") from None
    ok = math.isfinite(x)
    if ok and lo is not None:
        ok = x > lo if lo_open else x >= lo
    if ok and hi is not None:
        ok = x <= hi
    if not ok:
        rng = []
        if lo is not None:
            rng.append(("> " if lo_open else ">= ") + f"{lo:g}")
        if hi is not None:
            rng.append(f"<= {hi:g}")
        raise ParameterError(f"{name}={value!r} must be finite" + (" and " + " and ".join(rng) if rng else ""))
    return x


def cadence_schedule(cadence_spm) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints (times_s, spm) of a constant or piecewise-linear cadence."""
    if np.ndim(cadence_spm) == 0:
        c = check_real("cadence_spm", cadence_spm, 20.0, 400.0)
        return np.array([0.0]), np.array([c])
    try:
        pts = np.asarray(cadence_spm, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"cadence_spm={cadence_spm!r} must be a number or (time_s, spm) pairs") from None
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 1:
        raise ParameterError(f"cadence_spm must be a number or a sequence of (time_s, spm) pairs, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ParameterError("cadence_spm breakpoints must be finite")
    if np.any(np.diff(pts[:, 0]) <= 0):
        raise ParameterError("cadence_spm breakpoint times must be strictly increasing")
    if np.any(pts[:, 1] < 20) or np.any(pts[:, 1] > 400):
        raise ParameterError("cadence_spm values must be between 20 and 400 steps/min")
    return pts[:, 0].copy(), pts[:, 1].copy()
