"""Landing grading: each step's impact against the runner's own baseline.

Landing loudness tracks impact loading *within one runner*, not across
runners; so stepsound grades a step against this runner's usual landing,
never against an absolute scale.  With a calibrated profile it also says
whether the landing was heel-first or on the forefoot
(:mod:`stepsound.grade.strike`).  This is coaching feedback, not a diagnosis.

Loudness of a landing
---------------------
:func:`stepsound.grade.strike.landing_db`: the noise-compensated power of the
40 Hz–8 kHz bands over the detector's 120 ms feature window.  It holds the
heel contact and the forefoot slap that follows it by 25–70 ms; the 50 ms
``energy_db`` misses part of the slap and tracks known gain changes of
heel-first landings less well (r 0.93 vs 0.99 on synthetic runs).

Baseline
--------
The baseline is the runner's *usual* loudness among the previous
``history`` steps (default 300, under two minutes of running):
:func:`usual_level_db`, the mode of their loudness refined to the median of
the steps within 3 dB of it.  Trade-offs:

* a long window lets a block of harder (or softer) steps stand out for as
  long as it lasts; a short one (24 steps) absorbs a +6 dB block within ~12
  steps and stops calling those steps heavy;
* the mode, unlike the median, stays on the usual landings when harder and
  softer steps together are the majority of the window (on the bench's
  block-gain runs: RMS error 0.8 dB vs 0.9 dB for a 300-step median and 1.2 dB
  for a 160-step median);
* but a *lasting* change (the runner changed form for good, the laptop was
  moved) becomes the new baseline only once it is the commonest loudness of
  the window, after about ``history / 2`` steps (~1 min).  :meth:`ImpactBaseline.freeze` fixes the baseline
altogether, e.g. after a warm-up, so that a long run of heavy steps stays
heavy; :meth:`~ImpactBaseline.unfreeze` returns to the rolling median.

Every step is compared with the steps *before* it, so a heavy step does not
hide in its own baseline, and the grade is causal (live == offline).  The
first step has impact 0 dB; the baseline settles over the first
``min_steps`` steps (``Grade.baseline_ready``).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from stepsound.errors import ParameterError
from stepsound.grade.strike import StrikeClassifier, landing_db

__all__ = ["DEFAULT_HEAVY_DB", "DEFAULT_HISTORY", "ImpactBaseline", "Grade", "LandingGrader",
           "check_heavy_db"]

#: Impact above the runner's baseline that makes a step heavy [dB].
DEFAULT_HEAVY_DB = 6.0

#: Steps in the rolling baseline (about 1.8 minutes at 170 steps/min).
DEFAULT_HISTORY = 300


def usual_level_db(levels_db: np.ndarray, bandwidth_db: float = 3.0, halfwidth_db: float = 3.0) -> float:
    """The runner's usual landing loudness among recent steps [dB].

    The mode of the loudness distribution -- the level with the most steps
    within ``bandwidth_db`` of it (a box kernel; the middle one of ties) --
    refined to the median of the steps within ``halfwidth_db`` of it.
    Unlike the plain median it stays on the runner's usual landings when
    harder and softer steps together are the majority of the window, as
    long as they do not outnumber the usual ones at one level.
    O(n log n).

    Parameters
    ----------
    levels_db : np.ndarray [shape=(n,), float64, dB], n >= 1, finite
    bandwidth_db, halfwidth_db : float > 0 [dB]
    """
    v = np.sort(np.asarray(levels_db, float))
    if v.size <= 2:
        return float(np.median(v))
    counts = np.searchsorted(v, v + bandwidth_db, side="right") - np.searchsorted(v, v - bandwidth_db, side="left")
    tied = v[counts == counts.max()]
    mode = float(tied[(len(tied) - 1) // 2])  # a step's level: the window below is never empty
    lo, hi = np.searchsorted(v, mode - halfwidth_db, side="left"), np.searchsorted(v, mode + halfwidth_db, side="right")
    return float(np.median(v[lo:hi]))


def check_heavy_db(heavy_db) -> float:
    """Validate a heavy threshold [dB]: a finite number > 0."""
    try:
        v = float(heavy_db)
    except (TypeError, ValueError):
        raise ParameterError(f"heavy_db={heavy_db!r} must be a positive number of dB") from None
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(f"heavy_db={heavy_db!r} must be a positive number of dB")
    return v


class ImpactBaseline:
    """Rolling baseline of step loudness, and ``impact_db`` against it.

    Parameters
    ----------
    history : int >= 1
        Number of previous steps whose median loudness is the baseline
        (default :data:`DEFAULT_HISTORY`).
    heavy_db : float > 0 [dB]
        A step at least this far above the baseline is *heavy*.
    min_steps : int >= 1
        Steps needed before the baseline counts as settled (default 8).

    Notes
    -----
    :meth:`grade` consumes one step's loudness [dBFS] and returns
    ``(impact_db, heavy)``: 0 dB is this runner's usual landing, +6 dB
    clearly harder.  Gain-invariant: a louder microphone shifts every step
    and the baseline alike.  A non-finite loudness gives a NaN impact, is
    never heavy and does not enter the baseline.  :meth:`reset` forgets
    every step and unfreezes.  Not thread-safe: call from one thread.
    """

    def __init__(self, history: int = DEFAULT_HISTORY, heavy_db: float = DEFAULT_HEAVY_DB, min_steps: int = 8):
        if isinstance(history, bool) or not (int(history) == history and history >= 1):
            raise ParameterError(f"history={history!r} must be a whole number of steps >= 1")
        if isinstance(min_steps, bool) or not (int(min_steps) == min_steps and min_steps >= 1):
            raise ParameterError(f"min_steps={min_steps!r} must be a whole number of steps >= 1")
        self.history = int(history)
        self.heavy_db = check_heavy_db(heavy_db)
        self.min_steps = int(min_steps)
        self._recent: deque[float] = deque(maxlen=self.history)
        self._frozen: float | None = None

    @property
    def baseline_db(self) -> float | None:
        """Current baseline loudness [dBFS], or None before the first step."""
        if self._frozen is not None:
            return self._frozen
        if not self._recent:
            return None
        return usual_level_db(np.fromiter(self._recent, float, len(self._recent)))

    @property
    def frozen(self) -> bool:
        """Whether the baseline is fixed (:meth:`freeze`)."""
        return self._frozen is not None

    @property
    def ready(self) -> bool:
        """Whether the baseline has settled (frozen, or ``min_steps`` steps seen)."""
        return self._frozen is not None or len(self._recent) >= self.min_steps

    @property
    def steps_seen(self) -> int:
        """Steps in the rolling window now (at most ``history``)."""
        return len(self._recent)

    def freeze(self, baseline_db: float | None = None) -> None:
        """Fix the baseline to ``baseline_db`` [dBFS] or, by default, to its current value.

        Raises
        ------
        ParameterError
            Nothing to freeze (no step yet and no value given), or a non-finite value.
        """
        value = self.baseline_db if baseline_db is None else baseline_db
        if value is None:
            raise ParameterError("cannot freeze the impact baseline before any step was heard")
        value = float(value)
        if not math.isfinite(value):
            raise ParameterError(f"baseline_db={baseline_db!r} must be finite")
        self._frozen = value

    def unfreeze(self) -> None:
        """Return to the rolling baseline (the steps heard meanwhile count)."""
        self._frozen = None

    def reset(self) -> None:
        """Forget every step and unfreeze."""
        self._recent.clear()
        self._frozen = None

    def grade(self, loudness_db: float) -> tuple[float, bool]:
        """Grade one step: return (impact_db [dB re baseline], heavy)."""
        loudness_db = float(loudness_db)
        if not math.isfinite(loudness_db):
            return float("nan"), False
        base = self.baseline_db
        impact = 0.0 if base is None else loudness_db - base
        self._recent.append(loudness_db)
        return impact, impact >= self.heavy_db


@dataclass(frozen=True)
class Grade:
    """How one landing is graded.

    Attributes
    ----------
    impact_db : float [dB re the runner's baseline]
        NaN when the step's loudness could not be measured.
    heavy : bool
        ``impact_db >= heavy_db``.
    strike : {"heel", "forefoot", "uncertain"} or None
        None without a calibrated profile.
    strike_confidence : float or None
        Calibrated probability (0.5–1) of the likelier landing; None without
        a profile.
    landing_db : float [dBFS]
        The step's loudness (:func:`stepsound.grade.strike.landing_db`).
    baseline_ready : bool
        Whether the baseline had settled when the step was graded.
    """

    impact_db: float
    heavy: bool
    strike: str | None = None
    strike_confidence: float | None = None
    landing_db: float = float("nan")
    baseline_ready: bool = True


class LandingGrader:
    """Grades each step: impact against the runner's baseline, and heel vs forefoot.

    Parameters
    ----------
    heavy_db : float > 0 [dB], optional
        Impact above the baseline that makes a step heavy.  Default: the
        profile's learned threshold, else :data:`DEFAULT_HEAVY_DB` (6 dB).
    history : int
        Steps in the rolling baseline (:class:`ImpactBaseline`).
    profile : str, stepsound.grade.profiles.RunnerProfile or StrikeClassifier, optional
        A runner's calibration, or the name of a stored profile (loaded
        here; StoreError if missing or corrupt).  Without one ``strike`` is
        None.
    min_steps : int
        Steps before the baseline counts as settled.

    Notes
    -----
    :meth:`grade` consumes one step's feature dict (see
    :data:`stepsound.detect.detector.FEATURE_NAMES`) and returns a :class:`Grade`;
    nothing is delayed (latency 0 beyond the detector's feature latency).
    :meth:`freeze` fixes the baseline (a live session does so after its
    warm-up); :meth:`reset` forgets the steps.  Call from the one thread that
    runs the engine.
    """

    def __init__(self, heavy_db: float | None = None, history: int = DEFAULT_HISTORY, *, profile=None,
                 min_steps: int = 8):
        classifier = None
        profile_heavy = None
        if isinstance(profile, str):
            from stepsound.grade.profiles import load_profile

            profile = load_profile(profile)
        if profile is not None:
            if isinstance(profile, StrikeClassifier):
                classifier = profile
            else:
                classifier = getattr(profile, "classifier", None)
                profile_heavy = getattr(profile, "heavy_db", None)
                if classifier is not None and not isinstance(classifier, StrikeClassifier):
                    raise ParameterError(f"profile={profile!r} has no strike classifier")
        if heavy_db is None:
            heavy_db = profile_heavy if profile_heavy is not None else DEFAULT_HEAVY_DB
        self.profile = profile
        self.classifier: StrikeClassifier | None = classifier
        self.baseline = ImpactBaseline(history=history, heavy_db=heavy_db, min_steps=min_steps)

    @property
    def heavy_db(self) -> float:
        """Heavy threshold in use [dB above the baseline]."""
        return self.baseline.heavy_db

    @property
    def baseline_db(self) -> float | None:
        """Current baseline loudness [dBFS] (None before the first step)."""
        return self.baseline.baseline_db

    def freeze(self, baseline_db: float | None = None) -> None:
        """Fix the impact baseline (see :meth:`ImpactBaseline.freeze`)."""
        self.baseline.freeze(baseline_db)

    def unfreeze(self) -> None:
        """Return to the rolling baseline."""
        self.baseline.unfreeze()

    def reset(self) -> None:
        """Forget every step (the profile stays)."""
        self.baseline.reset()

    def grade(self, features: dict) -> Grade:
        """Grade one step from its detector features."""
        loud = landing_db(features)
        ready = self.baseline.ready
        impact, heavy = self.baseline.grade(loud)
        strike = confidence = None
        if self.classifier is not None:
            strike, confidence = self.classifier.classify(features)
        return Grade(impact, heavy, strike, confidence, loud, ready)
