"""Landing grading: each step's impact against the runner's own baseline.

Landing loudness tracks impact loading *within one runner*, not across
runners; so stepsound grades a step against this runner's recent steps, never
against an absolute scale.  This is coaching feedback, not a diagnosis.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from stepsound.errors import ParameterError


class ImpactBaseline:
    """Rolling baseline of step loudness, and ``impact_db`` against it.

    Parameters
    ----------
    history : int
        Number of recent steps whose median loudness is the baseline (default
        24, about 8 s of running).
    heavy_db : float [dB]
        A step at least this far above the baseline is *heavy* (default 6 dB).

    Notes
    -----
    :meth:`grade` takes one step's loudness (``energy_db``, dBFS, noise
    compensated) and returns ``(impact_db, heavy)``: 0 dB is a typical step of
    this runner now, +6 dB clearly harder.  The step is compared with the
    steps *before* it, so a heavy step does not hide in its own baseline.
    Gain-invariant: a louder microphone shifts every step and the baseline
    alike.  :meth:`freeze` keeps the current baseline fixed (e.g. after a
    warm-up).  Not thread-safe.
    """

    def __init__(self, history: int = 24, heavy_db: float = 6.0):
        if not (int(history) >= 1):
            raise ParameterError(f"history={history} must be >= 1")
        if not (math.isfinite(heavy_db) and heavy_db > 0):
            raise ParameterError(f"heavy_db={heavy_db} must be a positive number of dB")
        self.history = int(history)
        self.heavy_db = float(heavy_db)
        self._recent: deque[float] = deque(maxlen=self.history)
        self._frozen: float | None = None

    @property
    def baseline_db(self) -> float | None:
        """Current baseline loudness [dBFS], or None before the first step."""
        if self._frozen is not None:
            return self._frozen
        if not self._recent:
            return None
        return float(np.median(self._recent))

    def freeze(self, baseline_db: float | None = None) -> None:
        """Fix the baseline (to ``baseline_db`` or to its current value)."""
        self._frozen = self.baseline_db if baseline_db is None else float(baseline_db)

    def unfreeze(self) -> None:
        """Return to a rolling baseline."""
        self._frozen = None

    def grade(self, energy_db: float) -> tuple[float, bool]:
        """Grade one step: return (impact_db [dB re baseline], heavy)."""
        base = self.baseline_db
        impact = 0.0 if base is None else float(energy_db) - base
        self._recent.append(float(energy_db))
        return impact, impact >= self.heavy_db


@dataclass(frozen=True)
class Grade:
    """How one landing is graded.

    Attributes
    ----------
    impact_db : float [dB re the runner's baseline]
    heavy : bool
    strike : {"heel", "forefoot", "uncertain"} or None
        None without a calibrated profile.
    strike_confidence : float or None
        0–1, None without a profile.
    """

    impact_db: float
    heavy: bool
    strike: str | None = None
    strike_confidence: float | None = None


class LandingGrader:
    """Grades each step: impact against the runner's baseline (and strike type).

    Parameters
    ----------
    heavy_db : float [dB]
        Impact above the baseline that makes a step heavy.
    history : int
        Steps in the rolling baseline.

    Notes
    -----
    :meth:`grade` consumes one step's feature dict (see
    :data:`stepsound.detect.FEATURE_NAMES`) and returns a :class:`Grade`.
    Called once per step from the thread that runs the engine.
    """

    def __init__(self, heavy_db: float = 6.0, history: int = 24):
        self.baseline = ImpactBaseline(history=history, heavy_db=heavy_db)

    @property
    def heavy_db(self) -> float:
        return self.baseline.heavy_db

    def grade(self, features: dict) -> Grade:
        impact, heavy = self.baseline.grade(features["energy_db"])
        return Grade(impact, heavy)
