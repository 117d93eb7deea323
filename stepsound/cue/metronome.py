"""The metronome: a drift-free click schedule on an int64 sample clock, rendered into audio blocks.

One :class:`Metronome` serves three users with the same code:

* ``stepsound render`` renders a plan block after block into a file;
* ``stepsound metronome`` renders it inside a PortAudio callback;
* the live coaching session (issue #4) drives it from the main thread with
  :meth:`Metronome.set_tempo`, :meth:`Metronome.enable` and
  :meth:`Metronome.trigger_cue` while the callback renders.

Clock and grid
--------------
Positions are int64 sample indices.  Two time lines are used:

* *grid* samples: when a click is meant to be **heard**; click ``k`` of a
  tempo segment is at ``anchor + round(k * 60 * sample_rate / cadence_spm)``
  (for a linear ramp, the closed-form inverse of the tempo integral), never an
  accumulation of rounded periods, so there is no drift over any length;
* *output* samples: where the click starts in the rendered stream,
  ``grid - latency_samples`` (a click is played early by the measured output
  latency so that it is heard on the grid).

Tempo changes take effect on the beat: a change due at grid sample ``T`` (a
plan boundary or a ``set_tempo(at_sample=T)``) re-anchors the grid at the
first click at or after ``T``; that click is played once and the new tempo
governs the intervals after it.  No click is doubled or lost.

Threads
-------
``render_into`` / ``skip_to`` belong to the audio thread (one renderer).
``set_tempo``, ``enable``, ``trigger_cue``, ``set_latency_samples``, ``stop``
and ``read_clicks`` belong to one control thread: they go through a bounded
single-producer/single-consumer command queue drained at the start of each
block (changes waiting for their beat are kept in a bounded FIFO and apply in
the order given), and a bounded click-log ring read by the control thread.
Overflows are refused and counted (:attr:`Metronome.dropped`), never raised on
the audio thread.  The callback takes no lock and allocates nothing; the
hand-off relies on each call being atomic under the GIL, which the callback
holds anyway.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from stepsound.cue import _metronome
from stepsound.errors import ParameterError
from stepsound.coach.plans import TempoMap, check_cadence, constant_map, load_plan
from stepsound.cue.sounds import CLICK_SOUNDS, CUE_SOUNDS, SOUND_KINDS, db_to_gain, make_sound

__all__ = ["Metronome", "MetronomeSettings", "make_metronome", "ClickLog", "KIND_NAMES", "INT64_MAX"]

INT64_MAX = 2**63 - 1
#: Names of the log entry kinds.
KIND_NAMES = {_metronome.KIND_BEAT: "beat", _metronome.KIND_ACCENT: "accent", _metronome.KIND_CUE: "cue"}


class ClickLog(NamedTuple):
    """Clicks and cues emitted, oldest first (arrays of equal length n).

    Attributes
    ----------
    sample : np.ndarray [shape=(n,), int64]
        Output sample where the sound starts (grid sample − latency).
    kind : np.ndarray [shape=(n,), int8]
        0 beat, 1 accented beat, 2 cue (see :data:`KIND_NAMES`).
    sound : np.ndarray [shape=(n,), int32]
        Index into :data:`stepsound.cue.sounds.SOUND_KINDS`.
    target_spm : np.ndarray [shape=(n,), float64]
        Tempo of the grid at that click [steps/min].
    audible : np.ndarray [shape=(n,), bool]
        False for beats muted by the plan, faded feedback or ``enable(False)``.
    """

    sample: np.ndarray
    kind: np.ndarray
    sound: np.ndarray
    target_spm: np.ndarray
    audible: np.ndarray

    def __len__(self) -> int:  # number of entries, not of fields
        return int(self.sample.shape[0])

    @staticmethod
    def concatenate(logs) -> "ClickLog":
        logs = list(logs)
        if not logs:
            return ClickLog(
                np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int32),
                np.zeros(0, np.float64), np.zeros(0, bool),
            )
        return ClickLog(*(np.concatenate([getattr(l, f) for l in logs]) for f in ClickLog._fields))


def _check_sample_rate(sample_rate) -> int:
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive integer [Hz]") from None
    if sr != sample_rate or not (8000 <= sr <= 384000):
        raise ParameterError(f"sample_rate={sample_rate!r} must be an integer within 8000-384000 [Hz]")
    return sr


def _check_level(level_db, name) -> float:
    try:
        v = float(level_db)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={level_db!r} must be a number [dBFS]") from None
    if not (math.isfinite(v) and -120.0 <= v <= 0.0):
        raise ParameterError(f"{name}={level_db!r} must be within -120..0 [dBFS]")
    return v


class Metronome:
    """Drift-free metronome on an int64 sample clock.

    Parameters
    ----------
    sample_rate : int [Hz]
    tempo_map : TempoMap, optional
        A resolved plan (:meth:`stepsound.coach.plans.Plan.resolve`).  Plan time 0 is
        grid sample ``start_sample``; clicks stop at the end of the plan.
    cadence_spm : float, optional [steps/min, 60-240]
        Instead of a plan: hold this tempo forever (until :meth:`stop`).
        With neither, the metronome is silent until :meth:`set_tempo`.
    sound : str
        Beat sound, one of :data:`stepsound.cue.sounds.CLICK_SOUNDS`.
    level_db : float <= 0 [dBFS]
        Peak level of the beat.
    accent_every : int >= 0
        Accent every Nth beat (2: one foot; 0: no accent).  Counting starts at
        the first beat, which is accented.
    accent_sound : str, optional
        Sound of accented beats (default: ``sound``).
    accent_db : float [dB]
        Accented beats are this much louder (capped at 0 dBFS).
    cue_level_db : float <= 0 [dBFS]
        Default peak level of :meth:`trigger_cue` sounds.
    latency_samples : int >= 0 [samples]
        Play every click this many samples early (measured output latency).
    start_sample : int
        Grid sample of plan time 0 (and the first output sample rendered).
    max_voices, log_capacity, command_capacity : int
        Sizes of the preallocated voice table, click log ring and command queue.

    Notes
    -----
    One :meth:`render_into` call consumes nothing and produces one block of
    output; its latency is ``-latency_samples`` (clicks are early on purpose).
    :meth:`reset` returns to plan time 0 with an empty log and queue.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        tempo_map: TempoMap | None = None,
        cadence_spm: float | None = None,
        sound: str = "woodblock",
        level_db: float = -6.0,
        accent_every: int = 0,
        accent_sound: str | None = None,
        accent_db: float = 4.0,
        cue_level_db: float = -6.0,
        latency_samples: int = 0,
        start_sample: int = 0,
        max_voices: int = 64,
        log_capacity: int = 8192,
        command_capacity: int = 256,
    ):
        self.sample_rate = _check_sample_rate(sample_rate)
        if tempo_map is not None and cadence_spm is not None:
            raise ParameterError("give either tempo_map or cadence_spm, not both")
        if cadence_spm is not None:
            tempo_map = constant_map(cadence_spm)
        for name, value in (("sound", sound), ("accent_sound", accent_sound)):
            if value is not None and value not in SOUND_KINDS:
                raise ParameterError(f"{name}={value!r} is unknown; choose one of {', '.join(CLICK_SOUNDS)}")
        if isinstance(accent_every, bool) or not isinstance(accent_every, (int, np.integer)) or accent_every < 0:
            raise ParameterError(f"accent_every={accent_every!r} must be a whole number >= 0")
        self.level_db = _check_level(level_db, "level_db")
        self.cue_level_db = _check_level(cue_level_db, "cue_level_db")
        if not math.isfinite(float(accent_db)):
            raise ParameterError(f"accent_db={accent_db!r} must be finite")
        if isinstance(latency_samples, bool) or int(latency_samples) != latency_samples or latency_samples < 0:
            raise ParameterError(f"latency_samples={latency_samples!r} must be a whole number >= 0")
        self.sound = sound
        self.accent_sound = accent_sound or sound
        self.accent_every = int(accent_every)
        self.tempo_map = tempo_map
        self.start_sample = int(start_sample)

        sounds = [make_sound(kind, self.sample_rate, 0.0) for kind in SOUND_KINDS]
        width = max(len(s) for s in sounds)
        bank = np.zeros((len(sounds), width), np.float32)
        for i, s in enumerate(sounds):
            bank[i, : len(s)] = s
        self._sound_len = np.array([len(s) for s in sounds], np.int64)
        self._engine = _metronome.ClickEngine(
            float(self.sample_rate), bank, self._sound_len, max_voices, log_capacity, command_capacity
        )
        self._engine.set_click_sounds(
            SOUND_KINDS.index(self.sound),
            db_to_gain(self.level_db),
            SOUND_KINDS.index(self.accent_sound),
            db_to_gain(min(self.level_db + float(accent_db), 0.0)),
            self.accent_every,
        )
        self._engine.set_latency(int(latency_samples))
        if tempo_map is not None:
            self._load_map(tempo_map)
        else:
            self._engine.set_plan([], [], [], [], [], self.start_sample)

    def _load_map(self, tm: TempoMap) -> None:
        sr = self.sample_rate
        origin = self.start_sample

        def to_sample(t_s):
            return INT64_MAX if math.isinf(t_s) else origin + int(round(t_s * sr))

        starts = [to_sample(s.start_s) for s in tm.spans]
        ends = [to_sample(s.end_s) for s in tm.spans]
        for i in range(1, len(starts)):
            starts[i] = ends[i - 1]
        keep = [i for i in range(len(starts)) if ends[i] > starts[i]]
        self._engine.set_plan(
            [starts[i] for i in keep],
            [ends[i] for i in keep],
            [tm.spans[i].start_spm for i in keep],
            [tm.spans[i].end_spm for i in keep],
            [1 if tm.spans[i].audible else 0 for i in keep],
            origin,
        )
        fb = tm.feedback
        if fb is not None:
            self._engine.set_fade(True, fb.audible_from, fb.audible_to, fb.start_s, fb.end_s, fb.cycle_s)
        else:
            self._engine.set_fade(False)

    # ----------------------------------------------------------------- audio thread

    def render_into(self, out: np.ndarray, start_sample: int | None = None, *, add: bool = False) -> int:
        """Render one block of output (audio thread; allocation-free).

        Parameters
        ----------
        out : np.ndarray [shape=(n,) or (n, channels), float32, C-contiguous]
            Output block; zeroed first unless ``add`` (then the clicks are mixed
            onto what it holds, e.g. music).  Every channel gets the clicks.
        start_sample : int, optional
            Output sample index of ``out[0]``; default: where the previous call
            ended.  Any block sizes (including 0) give identical output.
        add : bool
            Mix onto ``out`` instead of overwriting it.

        Returns
        -------
        n_clicks : int
            Grid clicks emitted in this block (audible or not).
        """
        if start_sample is None:
            start_sample = self._engine.position
        if out.ndim == 1:
            return self._engine.render_mono(out, start_sample, add)
        return self._engine.render_frames(out, start_sample, add)

    def skip_to(self, end_sample: int) -> int:
        """Advance the schedule to output sample ``end_sample`` without audio (clicks are logged)."""
        return self._engine.skip(int(end_sample))

    def reset(self) -> None:
        """Back to plan time 0: empty log, queue and voices (not thread-safe: call when stopped)."""
        self._engine.reset()

    # ----------------------------------------------------------------- control thread

    def _at(self, at_sample) -> int:
        if at_sample is None:
            return _metronome.NOW
        if isinstance(at_sample, bool) or int(at_sample) != at_sample:
            raise ParameterError(f"at_sample={at_sample!r} must be a whole sample index")
        return int(at_sample)

    def set_tempo(self, cadence_spm: float, at_sample: int | None = None, ramp_s: float = 0.0) -> bool:
        """Change the tempo on the beat (control thread).

        Parameters
        ----------
        cadence_spm : float [steps/min, 60-240]
        at_sample : int, optional
            Grid sample from which the change applies: it takes effect at the
            first click at or after it.  Default: the next click.  If the
            metronome is idle, the first click is at ``at_sample`` (or as
            soon as possible).  Overrides a running plan from then on.
        ramp_s : float >= 0 [seconds]
            Glide linearly from the current tempo instead of stepping.

        Returns
        -------
        queued : bool
            False when the command queue was full (the change is dropped and counted).
        """
        spm = check_cadence(cadence_spm, "cadence_spm")
        if not (math.isfinite(ramp_s) and ramp_s >= 0):
            raise ParameterError(f"ramp_s={ramp_s!r} must be >= 0 [seconds]")
        return self._engine.push_tempo(self._at(at_sample), spm, float(ramp_s) * self.sample_rate)

    def enable(self, on: bool, at_sample: int | None = None) -> bool:
        """Unmute/mute the beat from the first click at or after ``at_sample`` (default: next click).

        The grid keeps running while muted, so the beat resumes in phase.
        """
        return self._engine.push_enable(self._at(at_sample), bool(on))

    def trigger_cue(self, kind: str, at_sample: int | None = None, level_db: float | None = None) -> bool:
        """Play a one-off sound (``land_softer``, ``speed_up``, ``on_target``, ...).

        Parameters
        ----------
        kind : str
            Any of :data:`stepsound.cue.sounds.SOUND_KINDS`.
        at_sample : int, optional
            Grid sample at which it should be heard (played ``latency_samples``
            early, never before the next block); default: the next block.
        level_db : float, optional [dBFS]
            Default: ``cue_level_db``.
        """
        if kind not in SOUND_KINDS:
            raise ParameterError(f"cue {kind!r} is unknown; choose one of {', '.join(CUE_SOUNDS + CLICK_SOUNDS)}")
        lv = self.cue_level_db if level_db is None else _check_level(level_db, "level_db")
        return self._engine.push_cue(self._at(at_sample), SOUND_KINDS.index(kind), db_to_gain(lv))

    def set_latency_samples(self, latency_samples: int) -> bool:
        """Change the latency offset (applies to clicks not yet emitted)."""
        if int(latency_samples) != latency_samples or latency_samples < 0:
            raise ParameterError(f"latency_samples={latency_samples!r} must be a whole number >= 0")
        if self._engine.position == self.start_sample and self._engine.n_clicks == 0:
            self._engine.set_latency(int(latency_samples))
            return True
        return self._engine.push_latency(int(latency_samples))

    def stop(self, at_sample: int | None = None) -> bool:
        """No click at or after grid sample ``at_sample`` (default: from the next click)."""
        return self._engine.push_stop(self._at(at_sample))

    def read_clicks(self) -> ClickLog:
        """Clicks and cues emitted since the previous call (control thread)."""
        return ClickLog(*self._engine.read_log())

    # ----------------------------------------------------------------- state (read-only)

    @property
    def latency_samples(self) -> int:
        """Current latency offset [samples]."""
        return self._engine.latency_samples

    @property
    def position_sample(self) -> int:
        """Output sample just after the last rendered block."""
        return self._engine.position

    @property
    def finished(self) -> bool:
        """True once the plan (or a :meth:`stop`) has ended the clicks."""
        return bool(self._engine.finished)

    @property
    def current_spm(self) -> float:
        """Tempo at the next click [steps/min] (0.0 when idle)."""
        return float(self._engine.current_spm)

    @property
    def next_click_sample(self) -> int | None:
        """Grid sample of the next click (None when idle or finished)."""
        return self._engine.next_click_sample

    @property
    def n_clicks(self) -> int:
        """Grid clicks emitted so far (audible or not)."""
        return int(self._engine.n_clicks)

    @property
    def dropped(self) -> dict:
        """Counters of things lost: ``voices`` (too many sounding), ``log`` (unread entries overwritten), ``commands`` (queue full)."""
        e = self._engine
        return {"voices": int(e.dropped_voices), "log": int(e.log_dropped), "commands": int(e.commands_dropped)}

    @property
    def duration_s(self) -> float:
        """Plan length [seconds] (``inf`` for a constant tempo, 0 when idle)."""
        return self.tempo_map.duration_s if self.tempo_map is not None else 0.0

    def elapsed_s(self) -> float:
        """Output time rendered since plan time 0 [seconds]."""
        return (self._engine.position - self.start_sample) / self.sample_rate

    def sound_length(self, kind: str) -> int:
        """Length of a sound [samples]."""
        return int(self._sound_len[SOUND_KINDS.index(kind)])


@dataclass
class MetronomeSettings:
    """What the metronome plays: a plan or a constant cadence, and how it sounds.

    Parameters
    ----------
    plan : str or None
        A plan file or preset name (see ``stepsound plans``).
    spm : float or None
        A constant cadence [steps/min] (when no plan).
    baseline_spm : float or None
        The runner's measured cadence, for relative plans ("+5%") [steps/min].
    sound, accent_sound : str or None
        Beat sounds (None: the plan's, else woodblock; accents: the beat's).
    level_db : float or None
        Beat peak level [dBFS] (None: the plan's, else -6).
    accent_every : int or None
        Accent every Nth step (2: one foot; None: the plan's, else none).
    """

    plan: str | None = None
    spm: float | None = None
    baseline_spm: float | None = None
    sound: str | None = None
    level_db: float | None = None
    accent_every: int | None = None
    accent_sound: str | None = None


def make_metronome(cues: MetronomeSettings, sample_rate: int, *, latency_samples: int = 0):
    """Build the metronome a plan or cadence asks for.

    Parameters
    ----------
    cues : MetronomeSettings
    sample_rate : int
        Output rate [Hz].
    latency_samples : int
        Play every beat this much early (measured output latency) [samples].

    Returns
    -------
    (Metronome, float, str)
        The metronome, the plan's length [s] (inf for a constant cadence) and a
        label ("plan fade", "170 spm").
    """
    sound, level_db, accent_every = cues.sound, cues.level_db, cues.accent_every
    if cues.plan is not None:
        plan = load_plan(cues.plan)
        tempo_map = plan.resolve(cues.baseline_spm)
        sound = sound or plan.sound
        level_db = level_db if level_db is not None else plan.level_db
        accent_every = accent_every if accent_every is not None else plan.accent_every
        label = f"plan {plan.name}"
    else:
        if cues.baseline_spm is not None:
            raise ParameterError("--baseline-spm only applies to --plan")
        if cues.spm is None:
            raise ParameterError("give a plan or a cadence (--plan or --spm)")
        tempo_map = constant_map(cues.spm)
        label = f"{tempo_map.spans[0].start_spm:g} spm"
    if accent_every is not None and accent_every < 0:
        raise ParameterError(f"--accent-every={accent_every} must be >= 0")
    m = Metronome(sample_rate, tempo_map=tempo_map, sound=sound or "woodblock",
                  level_db=-6.0 if level_db is None else level_db, accent_every=accent_every or 0,
                  accent_sound=cues.accent_sound, latency_samples=latency_samples)
    return m, tempo_map.duration_s, label
