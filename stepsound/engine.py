"""The engine: one code path for live sessions and offline analysis.

:class:`Engine` chains detector → cadence tracker → grader for one stream.
``analyze`` feeds it a file block by block; a live session feeds it the
microphone.  Both get the same events, so a recording of a live session,
analysed offline, reproduces what the runner was told.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from stepsound.detect.cadence import CadenceTracker
from stepsound.detect.detector import Detector, DetectorConfig, Onset, StepFeatures
from stepsound.grade.impact import LandingGrader, check_heavy_db
from stepsound.grade.profiles import load_profile


@dataclass(slots=True)
class StepOnsetEvent:
    """A step just detected (low latency): timing only.

    Attributes
    ----------
    onset_sample, detect_sample : int
        Step onset and commit time on the stream's sample clock.
    cadence_spm, smoothed_spm : float or None [steps/min]
    side : str or None
    extra : bool
        Too early for the current rhythm, or off its grid after missed
        steps (see :class:`stepsound.detect.cadence.CadenceTracker`); not counted
        for cadence.
    missed : int
        Steps judged missing before this one.
    supersedes : int or None
        Onset sample of the step this one replaces (the detector had taken a
        sound just before this step for it); consumers no longer count that
        one.  None for most steps.
    """

    onset_sample: int
    detect_sample: int
    cadence_spm: float | None
    smoothed_spm: float | None
    side: str | None
    extra: bool
    missed: int = 0
    supersedes: int | None = None


@dataclass(slots=True)
class Step:
    """A fully measured step (emitted once its feature window has passed).

    Attributes
    ----------
    onset_sample : int
        First sample of the footfall.
    time_s : float [seconds]
    detect_sample : int
        Sample clock when the step was detected (commit).
    cadence_spm, smoothed_spm : float or None [steps/min]
    side : {"L", "R"} or None
    extra : bool
    impact_db : float [dB re the runner's baseline]
    heavy : bool
    features : dict
        Detector features (``peak_db``, ``energy_db`` ... see
        :data:`stepsound.detect.detector.FEATURE_NAMES`).
    detect_latency_ms : float [ms]
    strike, strike_confidence : str or None, float or None
        Heel vs forefoot (with a calibrated profile), see
        :class:`stepsound.grade.impact.Grade`.
    impact_confidence : float in [0, 1] or None
        Share of the step's measured power above the noise floor
        (:func:`stepsound.grade.impact.impact_confidence`); a step below the
        grader's ``min_confidence`` is never heavy.
    supersedes : int or None
        Onset sample of the step this one replaces (see
        :class:`StepOnsetEvent`); that step's record was emitted before this
        one and is no longer a step.
    """

    onset_sample: int
    time_s: float
    detect_sample: int
    cadence_spm: float | None
    smoothed_spm: float | None
    side: str | None
    extra: bool
    missed: int
    impact_db: float
    heavy: bool
    features: dict = field(default_factory=dict)
    detect_latency_ms: float = 0.0
    strike: str | None = None
    strike_confidence: float | None = None
    impact_confidence: float | None = None
    supersedes: int | None = None

    def to_dict(self) -> dict:
        """The JSON record of a step (floats rounded, NaN → None)."""
        rec = {
            "time_s": round(self.time_s, 4),
            "onset_sample": int(self.onset_sample),
            "detect_latency_ms": round(self.detect_latency_ms, 2),
            "impact_db": _r(self.impact_db, 2),
            "heavy": bool(self.heavy),
            "cadence_spm": _r(self.cadence_spm, 2),
            "smoothed_spm": _r(self.smoothed_spm, 2),
            "side": self.side,
            "strike": self.strike,
            "strike_confidence": _r(self.strike_confidence, 3),
            "impact_confidence": _r(self.impact_confidence, 3),
            "extra": bool(self.extra),
            "missed_before": int(self.missed),
            "supersedes": None if self.supersedes is None else int(self.supersedes),
        }
        for name, value in self.features.items():
            rec[name] = _r(value, 2)
        return rec


@dataclass(slots=True)
class CadenceTick:
    """The cadence a live display shows at a sample (every ``tick_s``)."""

    sample: int
    time_s: float
    spm: float | None


def _r(value, digits):
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits)


class Engine:
    """Detector, cadence tracker and impact grader for one audio stream.

    Parameters
    ----------
    sample_rate : int [Hz]
    config : DetectorConfig, optional
    tick_s : float [seconds]
        Interval of :class:`CadenceTick` events (default 0.25 s: 4 per second).
    heavy_db : float [dB]
        Impact above the runner's baseline that makes a step heavy.
    grader : LandingGrader, optional
        Grades each step (default: a fresh :class:`LandingGrader`).

    Notes
    -----
    :meth:`process` consumes one block of any size and returns, in sample
    order, the :class:`StepOnsetEvent`, :class:`Step` and
    :class:`CadenceTick` events it completed.  Identical events whatever the
    block sizes.  Latency: :attr:`latency_samples` for onsets,
    :attr:`feature_latency_samples` for steps.  Call from one thread.
    """

    def __init__(self, sample_rate: int, config: DetectorConfig | None = None, *,
                 tick_s: float = 0.25, heavy_db: float = 6.0, grader: LandingGrader | None = None):
        self.detector = Detector(sample_rate, config)
        self.sample_rate = self.detector.sample_rate
        self.cadence = CadenceTracker(self.sample_rate)
        self.grader = grader if grader is not None else LandingGrader(heavy_db=heavy_db)
        self.tick_samples = max(1, int(round(tick_s * self.sample_rate)))
        self._next_tick = self.tick_samples
        self._pending: dict[int, StepOnsetEvent] = {}

    @property
    def latency_samples(self) -> int:
        return self.detector.latency_samples

    @property
    def feature_latency_samples(self) -> int:
        return self.detector.feature_latency_samples

    @property
    def sample_index(self) -> int:
        return self.detector.sample_index

    def process(self, block, ref=None) -> list:
        """Feed one block; return the events completed, in sample order.

        ``ref`` (live duplex only): our own output delayed by the round trip,
        see :meth:`stepsound.detect.detector.Detector.process`.
        """
        out: list = []
        for ev in self.detector.process(block, ref):
            if isinstance(ev, Onset):
                # a tick at t reflects the onsets detected at or before t
                self._ticks_until(ev.detect_sample - 1, out)
                timing = self.cadence.add(ev.onset_sample, ev.supersedes is not None)
                onset = StepOnsetEvent(ev.onset_sample, ev.detect_sample, timing.cadence_spm,
                                       timing.smoothed_spm, timing.side, timing.extra, timing.missed,
                                       ev.supersedes)
                self._pending[ev.onset_sample] = onset
                out.append(onset)
            elif isinstance(ev, StepFeatures):
                out.append(self._complete(ev))
        self._ticks_until(self.detector.sample_index, out)
        return out

    def _complete(self, ev: StepFeatures) -> Step:
        onset = self._pending.pop(ev.onset_sample)
        grade = self.grader.grade(ev.values)
        return Step(ev.onset_sample, ev.onset_sample / self.sample_rate, ev.detect_sample,
                    onset.cadence_spm, onset.smoothed_spm, onset.side, onset.extra, onset.missed,
                    grade.impact_db, grade.heavy, dict(ev.values),
                    1000.0 * (ev.detect_sample - ev.onset_sample) / self.sample_rate,
                    grade.strike, grade.strike_confidence, grade.confidence, onset.supersedes)

    def _ticks_until(self, sample: int, out: list) -> None:
        while self._next_tick <= sample:
            t = self._next_tick
            out.append(CadenceTick(t, t / self.sample_rate, self.cadence.at(t)))
            self._next_tick += self.tick_samples


class EngineFactory:
    """A picklable ``callable(sample_rate) -> Engine`` with a :class:`LandingGrader`.

    For :func:`stepsound.analyze.analyze_file` (also across worker
    processes).  The profile is loaded once, by name, in each process.

    Parameters
    ----------
    heavy_db : float, optional [dB]
    profile : str, optional
        Profile name (see :mod:`stepsound.grade.profiles`).
    """

    def __init__(self, heavy_db: float | None = None, profile: str | None = None):
        self.heavy_db = None if heavy_db is None else check_heavy_db(heavy_db)
        self.profile = profile
        self._loaded = None

    def grader(self) -> LandingGrader:
        """A fresh grader (loading the profile on first use)."""
        prof = None
        if self.profile is not None:
            if self._loaded is None:
                self._loaded = load_profile(self.profile)
            prof = self._loaded
        return LandingGrader(heavy_db=self.heavy_db, profile=prof)

    def __call__(self, sample_rate: int):
        return Engine(sample_rate, grader=self.grader())

    def __getstate__(self):
        return {"heavy_db": self.heavy_db, "profile": self.profile, "_loaded": None}
