"""Step detection: configuration, filter design and the Python face of the core.

:class:`Detector` wraps :class:`stepsound.detect._core.StepDetector`: it designs the
filters for a sample rate, feeds blocks of any size (splitting huge ones so the
core's event table cannot overflow) and turns event rows into
:class:`Onset` and :class:`StepFeatures` objects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from stepsound.detect._core import (CANDIDATE_FEATURES, EVENT_ONSET, EVENT_ONSET_SUPERSEDES, EVENT_STEP,
                                    FEATURE_NAMES, StepDetector)
from stepsound.detect.models import archive
from stepsound.errors import ParameterError

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000


@dataclass(frozen=True)
class DetectorConfig:
    """Tunable parameters of the step detector (defaults need no per-file tuning).

    Attributes
    ----------
    hop_s : float [seconds]
        Analysis hop; rounded to whole samples per sample rate.
    min_interval_s : float [seconds]
        Shortest step interval accepted (0.2 s = 300 steps/min).
    refractory_fraction : float
        The refractory interval grows to this fraction of the runner's median
        recent step interval.
    feature_window_s, energy_window_s : float [seconds]
        Per-step feature window and loudness (energy) window after the onset.
    floor_up_db_s, floor_down_db_s : float [dB/s]
        Noise-floor tracker rates; their ratio sets the tracked quantile.
    rise_s : float [seconds]
        Reference window just before each band's fast window; the rise is
        the fast level over the reference level.
    fast_windows_s : tuple of 4 floats [seconds]
        Per-band window of the current level (broadband, low, mid, high),
        about one period of the hum that can be in the band.
    excess_margin_db : float [dB]
        Margin above the noise floor (and above the reference level) before a
        band contributes.
    threshold_abs : float
        Absolute ODF threshold.
    threshold_rel : float
        ODF threshold as a fraction of the recent steps' typical ODF peak.
    confirm_s : float [seconds]
        Longest wait before committing a step (bounds the detection latency).
    lookback_s : float [seconds]
        How far before the ODF crossing the onset may be moved back, over
        contiguous hops standing ``lookback_db`` above the noise floor (a
        quieter start of the same footfall).  40 ms: further back, what the
        look-back found on bench_world's tuning scenes was mostly a sound of
        the room before the step (speech, clatter), not the step (80 ms:
        counted steps 0.808, 40 ms: 0.814).
    lookback_db : float [dB]
        Level above the noise floor a hop needs to count as part of the
        footfall in the look-back.
    pre_window_s : float [seconds]
        Window just before each onset whose mean broadband power, re the
        background before it (median hop power of the 30 hops before the
        window), is the ``pre_onset_db`` feature (a heel contact the onset
        missed); NaN when digital silence or our own output fills the windows.
    band_weights : tuple of 4 floats
        ODF weights of the broadband, low (<300 Hz), mid (0.3–2 kHz) and high
        (2–8 kHz) bands.
    override_ratio : float
        Inside the refractory interval after a detection, a candidate whose
        ODF peak is this many times that detection's is still a step, which
        *supersedes* the earlier detection (:attr:`Onset.supersedes`); 0: off.
    override_db : float [dB]
        ... and whose broadband level is at least this much above it.
    early_ratio, early_gate_db, early_peak : float
        A candidate earlier than ``early_ratio`` of the median recent step
        interval after the last detection must be within ``early_gate_db``
        [dB] of the typical step level and have ``early_peak`` of the
        typical ODF peak (not a scuff or rustle between steps); see
        :class:`stepsound.detect._core.StepDetector`.
    expect_tol, expect_rel, expect_abs : float
        Where the rhythm expects the next step (within ``expect_tol`` of the
        median recent step interval after the last detection) the ODF
        threshold drops to ``expect_rel`` of the typical step peak (never
        below ``expect_abs`` times ``threshold_abs``): a quieter landing on
        the rhythm is still a step.  ``expect_rel`` 0: off.
    halve_rel : float
        Half-rate escape: when the ODF peaks half-way between detections (at
        ``halve_rel`` of the typical step peak or more, twice as high as
        elsewhere in the interval) in 3 of 4 intervals, every other step was
        being missed, and the rhythm's interval is halved.  0: off.
    limp_tol : float
        A limp (a long and a short interval in turn, each foot's repeating
        within ``limp_tol`` of the median interval) expects the next step
        one same-foot interval after the last detection, and the lowered
        threshold of ``expect_rel`` applies there too.  0: off.
    rhythm_override, rhythm_tol : float
        Supersession by the rhythm: inside the refractory interval of a
        detection that came off the rhythm, a candidate where the rhythm
        expects the step (within ``rhythm_tol`` of the median interval after
        the detection before it, and closer to it than that detection by
        ``expect_tol`` at least) is a step with an ODF peak of this many
        times that detection's, at any level, and supersedes it.  0: off.
    gate : str or None
        Candidate gate: ``"gate"`` = the small network shipped in the package
        (``stepsound/detect/models/gate.npz``, trained by
        ``bench/train_gate.py``), or the path of another archive; None = none.
        At its decision a candidate step is scored from its
        ``CANDIDATE_FEATURES`` (band levels over the noise floor and over the
        level just before it, strength and level against the typical step,
        place in the rhythm) and vetoed below ``gate_threshold``: a clink,
        consonant or drum hit vetoed this way opens no refractory interval.
    gate_threshold : float or None
        Score (0-1) a candidate needs; None = the archive's.
    model : str or None
        Detection function: None = the hand-made band ODF above; ``"stepnet"``
        = the learned step-onset model shipped in the package
        (:mod:`stepsound.detect.stepnet`; version 2, which also reads the hand-made
        ODF of each hop), or the path of another model archive.  With
        a model the ODF of a hop is ``model_scale`` times the model's
        probability, and a step needs it above ``model_threshold`` (and above
        ``threshold_rel`` of the recent steps' typical peak); everything else
        (refractory, level gate, look-back, features) is unchanged.
    model_threshold : float
        Probability the model's output must exceed to start a step (0–1).
    model_scale : float
        ODF units per unit of probability.
    """

    hop_s: float = 0.002
    min_interval_s: float = 0.2
    refractory_fraction: float = 0.4
    feature_window_s: float = 0.12
    energy_window_s: float = 0.05
    floor_up_db_s: float = 2.0
    floor_down_db_s: float = 8.0
    rise_s: float = 0.02
    fast_windows_s: tuple = (0.008, 0.02, 0.005, 0.004)
    excess_margin_db: float = 3.0
    threshold_abs: float = 8.0
    threshold_rel: float = 0.4
    confirm_s: float = 0.004
    lookback_s: float = 0.04
    lookback_db: float = 8.0
    pre_window_s: float = 0.06
    band_weights: tuple = (1.0, 0.5, 1.0, 1.0)
    override_ratio: float = 1.0
    override_db: float = 3.0
    early_ratio: float = 0.75
    early_gate_db: float = 6.0
    early_peak: float = 0.6
    expect_tol: float = 0.1
    expect_rel: float = 0.25
    expect_abs: float = 1.0
    halve_rel: float = 0.25
    rhythm_override: float = 0.6
    rhythm_tol: float = 0.1
    limp_tol: float = 0.1
    gate: str | None = "gate"
    gate_threshold: float | None = None
    model: str | None = None
    model_threshold: float = 0.85
    model_scale: float = 20.0

    def replace(self, **changes) -> "DetectorConfig":
        """Return a copy with some fields changed."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return DetectorConfig(**values)


@dataclass(frozen=True)
class Onset:
    """A committed step, emitted with low latency (before its features).

    Attributes
    ----------
    onset_sample : int
        First sample of the footfall (int64 sample clock of the stream).
    detect_sample : int
        Sample clock when the detector committed to the step.
    supersedes : int or None
        Onset sample of the onset emitted just before this one, which this
        step replaces: that detection (a sound just before the step) had
        taken its place, and this one, inside its refractory interval, was
        far stronger (see ``DetectorConfig.override_ratio``).  None for most
        steps.
    """

    onset_sample: int
    detect_sample: int
    supersedes: int | None = None


@dataclass(frozen=True)
class StepFeatures:
    """A step with the features measured over its feature window.

    ``values`` maps each name of :data:`FEATURE_NAMES` to a float (dB, ms).
    """

    onset_sample: int
    detect_sample: int
    values: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.values[name]


def check_sample_rate(sample_rate) -> int:
    """Validate a sample rate [Hz]; return it as int or raise ParameterError."""
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive integer") from None
    if not (math.isfinite(rate) and rate > 0 and rate == int(rate)):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive integer")
    if not (MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE):
        raise ParameterError(
            f"sample_rate={int(rate)} Hz is outside the supported {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz")
    return int(rate)


def butter2(kind: str, freq_hz: float, sample_rate: float) -> np.ndarray:
    """A 2nd-order Butterworth biquad (bilinear transform, prewarped cutoff).

    Parameters
    ----------
    kind : {"lowpass", "highpass"}
    freq_hz : float [Hz]
        Cutoff (-3 dB), below Nyquist.
    sample_rate : float [Hz]

    Returns
    -------
    sos : np.ndarray [shape=(6,), float64]
        (b0, b1, b2, 1, a1, a2); the same filter as
        ``scipy.signal.butter(2, freq_hz, kind, fs=sample_rate, output="sos")``
        (tested), without importing scipy.signal on the hot start-up path.
    """
    k = math.tan(math.pi * freq_hz / sample_rate)
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k * k)
    a1 = 2.0 * (k * k - 1.0) * norm
    a2 = (1.0 - math.sqrt(2.0) * k + k * k) * norm
    if kind == "lowpass":
        b0 = k * k * norm
        return np.array([b0, 2.0 * b0, b0, 1.0, a1, a2])
    if kind == "highpass":
        return np.array([norm, -2.0 * norm, norm, 1.0, a1, a2])
    raise ValueError(f"kind={kind!r} must be 'lowpass' or 'highpass'")


def design_filters(sample_rate: int) -> np.ndarray:
    """Design the six biquads of the core for a sample rate.

    Returns
    -------
    sos : np.ndarray [shape=(6, 6), float64]
        HP 40 Hz, LP 300 Hz, HP 300 Hz, LP 2 kHz, HP 2 kHz, LP 8 kHz
        (2nd-order Butterworth each).  Edges too close to Nyquist collapse to
        pass-through sections, so 8 kHz audio still has a (2–3.6 kHz) high band.
    """
    nyquist = sample_rate / 2.0

    def section(kind: str, freq: float) -> np.ndarray:
        if kind == "lowpass" and freq >= 0.9 * nyquist:
            return np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
        return butter2(kind, min(freq, 0.45 * sample_rate), sample_rate)

    high_edge = min(2000.0, 0.25 * sample_rate)
    return np.array([
        section("highpass", 40.0),
        section("lowpass", 300.0),
        section("highpass", 300.0),
        section("lowpass", min(2000.0, 0.4 * sample_rate)),
        section("highpass", high_edge),
        section("lowpass", 8000.0),
    ])


class Detector:
    """Streaming step detector for one audio stream.

    Parameters
    ----------
    sample_rate : int [Hz]
        8000–192000.
    config : DetectorConfig, optional

    Notes
    -----
    :meth:`process` consumes a block of any length (zero included) and returns
    the events it completed: :class:`Onset` (latency at most
    :attr:`latency_samples`) and :class:`StepFeatures` (after
    :attr:`feature_latency_samples`).  The events are identical whatever the
    block sizes.  :meth:`reset` returns to the fresh state.  Call from one
    thread only.
    """

    def __init__(self, sample_rate: int, config: DetectorConfig | None = None):
        self.sample_rate = check_sample_rate(sample_rate)
        self.config = config or DetectorConfig()
        c = self.config
        hop_length = max(1, int(round(c.hop_s * self.sample_rate)))
        threshold_abs = c.threshold_abs
        if c.model is not None:
            if not (0.0 < c.model_threshold < 1.0) or not (c.model_scale > 0):
                raise ParameterError(f"model_threshold={c.model_threshold} must be in (0, 1), "
                                     f"model_scale={c.model_scale} positive")
            threshold_abs = c.model_threshold * c.model_scale
        try:
            self._core = StepDetector(
                self.sample_rate, hop_length, design_filters(self.sample_rate), np.asarray(c.band_weights, float),
                min_interval_s=c.min_interval_s, refractory_fraction=c.refractory_fraction,
                feature_window_s=c.feature_window_s, energy_window_s=c.energy_window_s,
                floor_up_db_s=c.floor_up_db_s, floor_down_db_s=c.floor_down_db_s, rise_s=c.rise_s,
                excess_margin_db=c.excess_margin_db, threshold_abs=threshold_abs,
                threshold_rel=c.threshold_rel, confirm_s=c.confirm_s, pre_window_s=c.pre_window_s,
                lookback_s=c.lookback_s, lookback_db=c.lookback_db,
                fast_windows_s=np.asarray(c.fast_windows_s, float), override_ratio=c.override_ratio,
                override_db=c.override_db, early_ratio=c.early_ratio, early_gate_db=c.early_gate_db,
                early_peak=c.early_peak, expect_tol=c.expect_tol, expect_rel=c.expect_rel,
                expect_abs=c.expect_abs, halve_rel=c.halve_rel, rhythm_override=c.rhythm_override,
                rhythm_tol=c.rhythm_tol, limp_tol=c.limp_tol, capacity=64)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None
        self.hop_length = hop_length
        self._max_block = self._core.max_block
        self._last_onset: int | None = None     # the onset a superseding one replaces
        self.gate_threshold = None
        if c.gate is not None:
            self.gate_threshold = self._set_gate(c.gate, c.gate_threshold)
        if c.model is not None:
            from stepsound.detect.stepnet import make_stepnet

            try:
                net = make_stepnet(self.sample_rate, hop_length, self._max_block,
                                   archive(c.model))
                self._core.set_model(net, c.model_scale, c.threshold_abs)
            except (OSError, KeyError, ValueError) as exc:
                raise ParameterError(f"model={c.model!r}: {exc}") from None

    def _set_gate(self, name: str, threshold: float | None) -> float:
        path = archive(name)
        try:
            with np.load(path, allow_pickle=False) as z:
                w = {k: z[k] for k in ("mu", "sd", "w1", "b1", "w2", "b2", "threshold")}
                names = tuple(str(v) for v in z["features"])
        except (OSError, KeyError, ValueError) as exc:
            raise ParameterError(f"gate={name!r}: {exc}") from None
        if names != CANDIDATE_FEATURES:
            raise ParameterError(f"gate={name!r} was trained on other candidate features")
        thr = float(w["threshold"]) if threshold is None else float(threshold)
        try:
            self._core.set_gate(w["mu"], w["sd"], w["w1"], w["b1"], w["w2"], float(w["b2"]), thr)
        except ValueError as exc:
            raise ParameterError(f"gate={name!r}: {exc}") from None
        return thr

    @property
    def latency_samples(self) -> int:
        """Longest delay from a step's onset to its :class:`Onset` event [samples]."""
        return int(self._core.latency_samples)

    @property
    def feature_latency_samples(self) -> int:
        """Delay from a step's onset to its :class:`StepFeatures` event [samples]."""
        return int(self._core.feature_latency_samples)

    @property
    def sample_index(self) -> int:
        """Number of samples consumed so far (the stream's sample clock)."""
        return int(self._core.sample_index)

    @property
    def leak_gains_db(self) -> list:
        """Learned gain of our own output into the microphone, per band [dB]."""
        return list(self._core.leak_gains_db)

    def set_leak_state(self, state: int) -> None:
        """Live duplex: 0 while the input is the raw microphone, 1 while our output is cancelled
        from it; each state learns its own leak gain (see the core's ``set_leak_state``)."""
        self._core.set_leak_state(int(state))

    @property
    def nonfinite_count(self) -> int:
        """Non-finite input samples seen (replaced by zeros)."""
        return int(self._core.nonfinite_count)

    def reset(self) -> None:
        """Forget everything (filters, noise floors, rhythm, clock)."""
        self._core.reset()
        self._last_onset = None

    def process(self, block: np.ndarray, ref: np.ndarray | None = None) -> list:
        """Feed one block of mono audio; return the completed events, in order.

        Parameters
        ----------
        block : np.ndarray [shape=(n,), float32]
            Mono samples (other float dtypes are converted).
        ref : np.ndarray [shape=(n,), float32], optional
            Live duplex sessions only: our own output, delayed by the round
            trip so that ``ref[i]`` is what reaches the microphone at
            ``block[i]``.  Its leak (our clicks heard back) is suppressed.
        """
        x = np.ascontiguousarray(block, dtype=np.float32)
        if x.ndim != 1:
            raise ParameterError(f"expected mono audio of shape (n,), got shape {x.shape}")
        if ref is not None:
            ref = np.ascontiguousarray(ref, dtype=np.float32)
            if ref.shape != x.shape:
                raise ParameterError(f"ref has shape {ref.shape}, the block {x.shape}")
        events: list = []
        core = self._core
        for start in range(0, max(len(x), 1), self._max_block):
            if ref is None:
                n = core.process(x[start:start + self._max_block])
            else:
                n = core.process_ref(x[start:start + self._max_block], ref[start:start + self._max_block])
            for i in range(n):
                onset = int(core.onset_samples[i])
                detect = int(core.detect_samples[i])
                if core.kinds[i] == EVENT_ONSET or core.kinds[i] == EVENT_ONSET_SUPERSEDES:
                    events.append(Onset(onset, detect,
                                        self._last_onset if core.kinds[i] == EVENT_ONSET_SUPERSEDES else None))
                    self._last_onset = onset
                elif core.kinds[i] == EVENT_STEP:
                    row = core.features[i]
                    events.append(StepFeatures(onset, detect, dict(zip(FEATURE_NAMES, map(float, row)))))
        return events


__all__ = ["DetectorConfig", "Detector", "Onset", "StepFeatures", "FEATURE_NAMES", "design_filters",
           "check_sample_rate", "EVENT_ONSET", "EVENT_STEP"]
