"""Landing grading: each step's impact against the runner's own baseline.

Landing loudness tracks impact loading *within one runner*, not across
runners; so stepsound grades a step against this runner's usual landing,
never against an absolute scale.  With a calibrated profile it also says
whether the landing was heel-first or on the forefoot
(:mod:`stepsound.grade.strike`).  This is coaching feedback, not a diagnosis.

Loudness of a landing
---------------------
:func:`impact_level_db`: the mean, in dB, of the detector's ``energy_db``
(noise-compensated broadband power over the first 50 ms after the onset:
the contact) and :func:`stepsound.grade.strike.landing_db` (the
noise-compensated 40 Hz–8 kHz band power over the 120 ms feature window:
the whole landing, with the forefoot slap that follows a heel contact by
25–70 ms).  A gain of g dB moves both, and so the mean, by g dB.  Chosen on
the bench_world *tuning* scenes (real footstep events over real noise; same
rolling baseline): pooled r 0.33 with ``landing_db`` alone, 0.37 with
``energy_db`` alone, 0.36 with the mean -- and on the synthetic runs of
``bench/bench_grading.py`` ``energy_db`` alone misses the slap of heel-first
landings (r down to 0.92, RMS error 1.9 dB) where the mean keeps r >= 0.96.
Tried and dropped (all lower on the tuning scenes): only the bands where
the step stands 3–10 dB above that band's noise floor; band-wise
deviations from each band's own baseline weighted by band SNR; the peak;
running medians over 3 or 5 hops, which resist a short click but shave the
step's own peak.  A 2 ms click as loud as the step's peak, 10–45 ms after
the onset, moves ``energy_db`` by under 0.5 dB and ``landing_db`` by under
0.35 dB.

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

Channel changes
---------------
A change of the *channel* -- the microphone turned down, the phone moved, a
slow automatic gain -- moves the steps and the background alike; a harder
landing moves only the step.  So when 6 steps in a row
(:data:`REBASE_STEPS`) all stand 2 dB or more, and by their median 4 dB
(:data:`REBASE_DB`) or more, to the same side of the baseline *and* the
median noise floors of all three bands (``low_noise_db``,
``mid_noise_db``, ``high_noise_db``) at those steps moved, from the
earlier steps of the window, the same way by 2 dB or more, within 3 dB of
each other, the rolling baseline restarts from those 6 steps (never a
frozen one).
A runner's block of harder landings in steady noise never triggers it, and
stays heavy.  On the bench_world tuning scenes this lifts the pooled r from
0.36 to 0.43 (scenes with a level jump 0.22 → 0.33, with slow AGC 0.35 →
0.40) and leaves scenes with neither unchanged (0.60).  It reacts within
about 6 steps to a jump down, and to a jump up as fast as the detector's
noise floors follow it (2 dB/s up, 8 dB/s down); the steps before that are
graded against the old level.  Without noise floors
(:meth:`ImpactBaseline.grade` given none) it never fires.

Confidence
----------
Each grade carries a ``confidence`` in [0, 1]: the share of the step's
measured power that stood above the noise floor, ``1 - 10**(-snr_db / 10)``
(``snr_db``: the energy window's power over the noise floor).  0.5 is a
step 3 dB above the noise; 0.9, 10 dB.  A step below ``min_confidence``
(default 0.5) is graded but never heavy, and does not enter the baseline:
its noise-compensated level is mostly the noise's.  (On the bench_world
tuning scenes this is neutral -- the detector seldom reports such steps --
but it keeps a rumble that barely crossed the detector from moving the
runner's baseline.)

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

__all__ = ["DEFAULT_HEAVY_DB", "DEFAULT_HISTORY", "DEFAULT_MIN_CONFIDENCE", "ImpactBaseline", "Grade",
           "LandingGrader", "check_heavy_db", "impact_level_db", "impact_confidence", "NOISE_BANDS"]

#: Impact above the runner's baseline that makes a step heavy [dB].
DEFAULT_HEAVY_DB = 6.0

#: Steps in the rolling baseline (about 1.8 minutes at 170 steps/min).
DEFAULT_HISTORY = 300

#: Lowest confidence (share of the step's power above the noise floor) for a
#: step to be heavy and to enter the baseline (0.5: 3 dB above the noise).
DEFAULT_MIN_CONFIDENCE = 0.5

#: Detector features holding the band noise floors at a step's onset [dBFS].
NOISE_BANDS = ("low_noise_db", "mid_noise_db", "high_noise_db")

#: Channel-change re-baseline: steps in a row, their offset [dB], the least
#: move of every band's noise floor as a share of that offset, and the most
#: the bands' moves may differ [dB] (see the module docstring).
REBASE_STEPS, REBASE_DB, REBASE_NOISE_SHARE, REBASE_AGREE_DB = 6, 4.0, 0.5, 3.0


def _finite(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return v if math.isfinite(v) else float("nan")


def impact_level_db(features: dict) -> float:
    """Loudness of one landing for impact grading [dBFS].

    The mean of the detector's ``energy_db`` (noise-compensated broadband
    power over the first 50 ms after the onset) and
    :func:`stepsound.grade.strike.landing_db` (noise-compensated band power
    over the 120 ms feature window), both in dBFS; either alone when the
    other is missing or non-finite; NaN when neither is finite.

    Parameters
    ----------
    features : dict
        Detector features of one step (names of
        :data:`stepsound.detect.detector.FEATURE_NAMES` -> float).
    """
    whole = landing_db(features)
    contact = _finite(features.get("energy_db") if hasattr(features, "get") else None)
    if not math.isfinite(contact):
        return whole
    if not math.isfinite(whole):
        return contact
    return 0.5 * (contact + whole)


def impact_confidence(features: dict) -> float:
    """Share of a step's measured power that stood above the noise floor, in [0, 1].

    ``1 - 10**(-snr_db / 10)`` from the detector's ``snr_db`` (energy window
    power over the noise floor [dB]); NaN when ``snr_db`` is missing.
    """
    snr = _finite(features.get("snr_db") if hasattr(features, "get") else None)
    if not math.isfinite(snr):
        return float("nan")
    return min(1.0, max(0.0, 1.0 - 10.0 ** (-snr / 10.0)))


def noise_floors_db(features: dict) -> tuple | None:
    """The band noise floors of :data:`NOISE_BANDS` [dBFS], or None if any is missing or non-finite."""
    if not hasattr(features, "get"):
        return None
    out = tuple(_finite(features.get(k)) for k in NOISE_BANDS)
    return out if all(math.isfinite(v) for v in out) else None


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
    min_confidence : float in [0, 1]
        Steps graded with a lower confidence are never heavy and do not
        enter the baseline (default :data:`DEFAULT_MIN_CONFIDENCE`).

    Notes
    -----
    :meth:`grade` consumes one step's loudness [dBFS] and returns
    ``(impact_db, heavy)``: 0 dB is this runner's usual landing, +6 dB
    clearly harder.  Gain-invariant: a louder microphone shifts every step
    and the baseline alike.  Given the band noise floors at each step, a
    channel change (steps and noise moving together, see the module
    docstring) restarts the rolling baseline.  A non-finite loudness gives
    a NaN impact, is never heavy and does not enter the baseline.
    :meth:`reset` forgets every step and unfreezes.  Not thread-safe: call
    from one thread.
    """

    def __init__(self, history: int = DEFAULT_HISTORY, heavy_db: float = DEFAULT_HEAVY_DB, min_steps: int = 8,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        if isinstance(history, bool) or not (int(history) == history and history >= 1):
            raise ParameterError(f"history={history!r} must be a whole number of steps >= 1")
        if isinstance(min_steps, bool) or not (int(min_steps) == min_steps and min_steps >= 1):
            raise ParameterError(f"min_steps={min_steps!r} must be a whole number of steps >= 1")
        try:
            mc = float(min_confidence)
        except (TypeError, ValueError):
            mc = float("nan")
        if not 0.0 <= mc <= 1.0:
            raise ParameterError(f"min_confidence={min_confidence!r} must be a number in [0, 1]")
        self.history = int(history)
        self.heavy_db = check_heavy_db(heavy_db)
        self.min_steps = int(min_steps)
        self.min_confidence = mc
        self._recent: deque[float] = deque(maxlen=self.history)
        self._noise: deque = deque(maxlen=self.history)      # band noise floors of the steps in _recent (or None)
        self._run: deque = deque(maxlen=REBASE_STEPS)        # impacts of the latest steps in _recent
        self.rebases = 0
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
        self._noise.clear()
        self._run.clear()
        self._frozen = None

    def grade(self, loudness_db: float, noise_db=None, confidence: float = float("nan")) -> tuple[float, bool]:
        """Grade one step: return (impact_db [dB re baseline], heavy).

        Parameters
        ----------
        loudness_db : float [dBFS]
            The step's loudness (:func:`impact_level_db`).
        noise_db : sequence of float [dBFS], optional
            The band noise floors at the step (:data:`NOISE_BANDS`); needed
            to tell a channel change from harder landings.
        confidence : float in [0, 1], optional
            :func:`impact_confidence`; NaN (default): not gated.
        """
        loudness_db = float(loudness_db)
        if not math.isfinite(loudness_db):
            return float("nan"), False
        base = self.baseline_db
        impact = 0.0 if base is None else loudness_db - base
        confident = not (confidence < self.min_confidence)     # NaN: unknown, not gated
        if confident:
            self._recent.append(loudness_db)
            self._noise.append(None if noise_db is None else tuple(float(v) for v in noise_db))
            self._run.append(impact)
            if self._frozen is None:
                self._maybe_rebase()
        return impact, confident and impact >= self.heavy_db

    def _maybe_rebase(self) -> None:
        """Restart the rolling baseline from the latest steps after a channel change."""
        k = REBASE_STEPS
        if len(self._run) < k or len(self._recent) <= k + self.min_steps:
            return
        run = np.fromiter(self._run, float, k)
        offset = float(np.median(run))
        if abs(offset) < REBASE_DB or np.any(np.sign(run) != np.sign(offset)) or np.any(np.abs(run) < REBASE_DB / 2):
            return
        noise = list(self._noise)
        if any(n is None for n in noise):
            return
        nz = np.asarray(noise, float)
        moved = np.median(nz[-k:], axis=0) - np.median(nz[:-k], axis=0)
        if (np.all(np.sign(moved) == np.sign(offset)) and np.min(np.abs(moved)) >= REBASE_NOISE_SHARE * REBASE_DB
                and np.ptp(moved) <= REBASE_AGREE_DB):
            keep_l, keep_n = list(self._recent)[-k:], noise[-k:]
            self._recent.clear()
            self._noise.clear()
            self._recent.extend(keep_l)
            self._noise.extend(keep_n)
            self._run.clear()
            self.rebases += 1


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
        The step's loudness as graded (:func:`impact_level_db`).
    baseline_ready : bool
        Whether the baseline had settled when the step was graded.
    confidence : float in [0, 1]
        How far the step stood above the noise: the share of its measured
        power above the noise floor (:func:`impact_confidence`); NaN when
        unknown.  Below the grader's ``min_confidence`` a step is never heavy.
    """

    impact_db: float
    heavy: bool
    strike: str | None = None
    strike_confidence: float | None = None
    landing_db: float = float("nan")
    baseline_ready: bool = True
    confidence: float = float("nan")


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
    min_confidence : float in [0, 1]
        See :class:`ImpactBaseline` (default :data:`DEFAULT_MIN_CONFIDENCE`).

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
                 min_steps: int = 8, min_confidence: float = DEFAULT_MIN_CONFIDENCE):
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
        self.baseline = ImpactBaseline(history=history, heavy_db=heavy_db, min_steps=min_steps,
                                       min_confidence=min_confidence)

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
        loud = impact_level_db(features)
        conf = impact_confidence(features)
        ready = self.baseline.ready
        impact, heavy = self.baseline.grade(loud, noise_floors_db(features), conf)
        strike = strike_conf = None
        if self.classifier is not None:
            strike, strike_conf = self.classifier.classify(features)
        return Grade(impact, heavy, strike, strike_conf, loud, ready, conf)
