"""When the coach speaks: spoken cues and form reminders, rate-limited, never over each other.

:class:`Speaker` sits between the :class:`~stepsound.coach.coach.Coach` and
the metronome of a session whose metronome holds spoken phrases
(:func:`stepsound.cue.voice.load_phrases`):

* a coaching cue ("speed up", "slow down", "on target", "land softer") is
  spoken instead of its tone; if another phrase is still being spoken it
  waits until ``gap_s`` after that phrase (speech never overlaps speech);
* a form reminder is spoken only when something calls for it and the runner
  has heard nothing for a while (``quiet_s`` since the last phrase ended,
  ``reminder_every_s`` since the last reminder):

  - ``ball_of_foot`` ("land on the ball of your foot"): the runner's goal is
    a forefoot landing (``strike_goal="forefoot"``) and at least half of the
    last 16 labelled landings were heel-first;
  - ``under_hips`` ("land under your hips, with a soft, bent knee"): at least
    a quarter of the last 16 steps were heavy;
  - ``quick_light`` ("quick, light steps"): the cadence is below the target
    by more than half the on-target band.

  The most pressing one is said (in that order); nothing is said while all
  is well.

Decisions are made on the stream's sample clock, so a replayed recording
speaks exactly where a live session would.
"""
from __future__ import annotations

from collections import deque

from stepsound.cue.voice import CUE_PHRASES, REMINDERS, phrase_name
from stepsound.errors import ParameterError

__all__ = ["Speaker", "STRIKE_GOALS"]

#: Landing goals a runner may set (None: no landing goal).
STRIKE_GOALS = ("forefoot",)


class Speaker:
    """Speaks cues and reminders through a metronome that holds the phrases.

    Parameters
    ----------
    metronome : stepsound.cue.metronome.Metronome
        Built with the phrases of :data:`stepsound.cue.voice.CUE_PHRASES` and
        :data:`~stepsound.cue.voice.REMINDERS` (``phrase_name(key)``); a phrase
        it lacks is not spoken (its tone is played instead).
    sample_rate : int [Hz]
    strike_goal : {"forefoot"} or None
        The runner's landing goal (enables the ball-of-the-foot reminder).
    band_pct : float [%]
        The coach's on-target band (the cadence reminder waits for more than half of it).
    gap_s : float [seconds]
        Silence kept between two phrases.
    quiet_s : float [seconds]
        A reminder needs this long without speech before it.
    reminder_every_s : float [seconds]
        Least time between two reminders.

    Notes
    -----
    Main thread only (the coach's thread); it calls ``trigger_cue`` of the
    metronome, whose audio thread plays the phrase on its sample clock.
    """

    def __init__(self, metronome, sample_rate: int, *, strike_goal: str | None = None, band_pct: float = 3.0,
                 gap_s: float = 0.4, quiet_s: float = 20.0, reminder_every_s: float = 60.0):
        if strike_goal is not None and strike_goal not in STRIKE_GOALS:
            raise ParameterError(f"strike goal {strike_goal!r} must be one of {', '.join(STRIKE_GOALS)}")
        self.metronome = metronome
        self.sample_rate = int(sample_rate)
        self.strike_goal = strike_goal
        self.band_pct = float(band_pct)
        self.gap = int(round(gap_s * self.sample_rate))
        self.quiet = int(round(quiet_s * self.sample_rate))
        self.reminder_every = int(round(reminder_every_s * self.sample_rate))
        self.busy_until: int | None = None      # sample where the last phrase queued ends
        self._last_reminder: int | None = None
        self._first_tick: int | None = None
        self._heavy = deque(maxlen=16)
        self._strikes = deque(maxlen=16)
        #: (sample queued for, phrase key) of everything said, in order.
        self.said: list[tuple[int, str]] = []

    def available(self, key: str) -> bool:
        """True when the metronome holds the phrase ``key``."""
        return phrase_name(key) in getattr(self.metronome, "phrases", ())

    def _speak(self, key: str, sample: int) -> int:
        """Queue phrase ``key`` decided at ``sample``; return the sample it is queued for."""
        name = phrase_name(key)
        now = max(int(sample), int(getattr(self.metronome, "position_sample", 0)))
        at = now
        if self.busy_until is not None and self.busy_until + self.gap > now:
            at = self.busy_until + self.gap
        self.metronome.trigger_cue(name, at_sample=None if at == now else at)
        self.busy_until = at + self.metronome.sound_length(name)
        self.said.append((at, key))
        return at

    def say_cue(self, kind: str, sample: int) -> bool:
        """Speak coaching cue ``kind`` (decided at ``sample``); False when there is no phrase for it."""
        if kind not in CUE_PHRASES or not self.available(kind):
            return False
        self._speak(kind, sample)
        return True

    def on_step(self, step) -> None:
        """Note a step's landing (heavy, heel/forefoot) for the reminders."""
        if step.extra:
            return
        self._heavy.append(bool(step.heavy))
        if step.strike in ("heel", "forefoot"):
            self._strikes.append(step.strike)

    def reminder_due(self, cadence_spm: float | None, target_spm: float | None) -> str | None:
        """The reminder the runner's landings and cadence call for now, if any (no timing checked)."""
        if (self.strike_goal == "forefoot" and len(self._strikes) >= 8
                and sum(s == "heel" for s in self._strikes) >= len(self._strikes) / 2):
            return "ball_of_foot"
        if len(self._heavy) >= 8 and sum(self._heavy) >= len(self._heavy) / 4:
            return "under_hips"
        if (cadence_spm is not None and target_spm is not None
                and cadence_spm < target_spm * (1.0 - self.band_pct / 200.0)):
            return "quick_light"
        return None

    def on_tick(self, sample: int, cadence_spm: float | None, target_spm: float | None) -> str | None:
        """Say a reminder if one is due and the runner has heard nothing for a while; return its key.

        The first ``quiet_s`` of coaching are left to the cues themselves.
        """
        if self._first_tick is None:
            self._first_tick = int(sample)
        if sample - self._first_tick < self.quiet:
            return None
        if self.busy_until is not None and sample - self.busy_until < self.quiet:
            return None
        if self._last_reminder is not None and sample - self._last_reminder < self.reminder_every:
            return None
        key = self.reminder_due(cadence_spm, target_spm)
        if key is None or key not in REMINDERS or not self.available(key):
            return None
        self._last_reminder = self._speak(key, sample)
        if key == "under_hips":
            self._heavy.clear()        # judged afresh on the steps after the reminder
        elif key == "ball_of_foot":
            self._strikes.clear()
        return key
