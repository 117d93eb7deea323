"""The coach: from measured steps to cues.

A session starts with a warm-up that measures the runner's baseline cadence
and landing loudness (default: the first 60 s of steady running).  Then a
target sets the goal — an absolute cadence (cueing starts at once, no need to
wait for the warm-up), a change relative to the baseline (``+5%``), or a plan
(:mod:`stepsound.coach.plans`, time 0 = end of the warm-up).  The coach drives the
metronome:

* ``cues="always"``: the metronome plays the target (muted where a plan's
  faded feedback says so);
* ``cues="off-target"``: silent while the runner is within ±``band_pct`` of
  the target; after ``off_hold_s`` outside it, a "speed up" / "slow down" cue
  and the metronome; back inside half the band for ``on_hold_s``: an "on
  target" cue and silence again (hysteresis in level and time: no flapping);
* ``cues="none"``: measure only.

And after repeated heavy landings (``heavy_count`` of the last
``heavy_window`` steps graded heavy), a "land softer" cue, at most once per
``soft_cooldown_s``.

The coach is pure logic on the stream's sample clock: it consumes engine
events and calls ``set_tempo`` / ``enable`` / ``trigger_cue`` on the
metronome, so replayed recordings exercise exactly what a live session does.
"""
from __future__ import annotations

import math
import os
import re
from collections import deque
from dataclasses import dataclass

import numpy as np

from stepsound.engine import CadenceTick, Step
from stepsound.errors import ParameterError
from stepsound.coach.plans import MAX_CADENCE_SPM, MIN_CADENCE_SPM, check_cadence, load_plan
from stepsound.units import parse_target

CUE_MODES = ("always", "off-target", "none")


@dataclass(frozen=True)
class Cue:
    """A cue given to the runner.

    Attributes
    ----------
    sample : int
        Stream sample clock when the coach decided it.
    time_s : float [seconds]
    kind : str
        ``baseline`` (warm-up done), ``metronome_on``, ``metronome_off``,
        ``tempo`` (target changed by >= 1 step/min), ``speed_up``,
        ``slow_down``, ``on_target`` or ``land_softer``.
    target_spm : float or None [steps/min]
    """

    sample: int
    time_s: float
    kind: str
    target_spm: float | None

    def to_dict(self) -> dict:
        return {"time_s": round(self.time_s, 3), "kind": self.kind,
                "target_spm": None if self.target_spm is None else round(self.target_spm, 2)}


#: Narrowest on-target band, ± percent (narrower: every stride's variation is "off target").
MIN_BAND_PCT = 0.5
#: Widest on-target band, ± percent (wider: the metronome could never cue a 5-10 % change).
MAX_BAND_PCT = 20.0


@dataclass
class CoachConfig:
    """What the coach aims for and how it cues.

    Attributes
    ----------
    target : str or None
        ``"172"`` (absolute steps/min), ``"+5%"`` / ``"-3%"`` / ``"+8spm"``
        (relative to the warm-up baseline), a plan file or preset name, or
        None (measure only).
    cues : {"always", "off-target", "none"}
    warmup_s : float [seconds]
        Warm-up length (measured from the first step).
    band_pct : float [%]
        Off-target band half-width around the target, between
        :data:`MIN_BAND_PCT` and :data:`MAX_BAND_PCT`.
    off_hold_s, on_hold_s : float [seconds]
        How long the cadence must stay off (on) target before the coach acts.
    heavy_window, heavy_count : int
        "Land softer" after ``heavy_count`` heavy landings among the last
        ``heavy_window`` steps.
    soft_cooldown_s : float [seconds]
        Least time between two "land softer" cues.
    average_s : float [seconds]
        On/off-target decisions use the mean displayed cadence over this long
        (display ticks every 0.25 s), not a single noisy value.
    """

    target: str | None = None
    cues: str = "always"
    warmup_s: float = 60.0
    band_pct: float = 3.0
    off_hold_s: float = 5.0
    on_hold_s: float = 3.0
    heavy_window: int = 8
    heavy_count: int = 3
    soft_cooldown_s: float = 30.0
    average_s: float = 6.0

    def validate(self) -> None:
        if self.cues not in CUE_MODES:
            raise ParameterError(f"cues={self.cues!r} must be one of {', '.join(CUE_MODES)}")
        if not (MIN_BAND_PCT <= float(self.band_pct) <= MAX_BAND_PCT):
            raise ParameterError(f"--band {float(self.band_pct):g}: the on-target band must be between "
                                 f"{MIN_BAND_PCT:g} and {MAX_BAND_PCT:g} % of the target")
        for name in ("warmup_s", "band_pct", "off_hold_s", "on_hold_s", "soft_cooldown_s", "average_s"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0):
                raise ParameterError(f"{name}={v!r} must be a number >= 0")
        if not (1 <= self.heavy_count <= self.heavy_window):
            raise ParameterError("heavy_count must be between 1 and heavy_window")
        _Goal(self.target)      # a bad target or plan fails here, before any audio


#: Largest relative target accepted (percent of the baseline, either way).
MAX_RELATIVE_PCT = 30.0
#: Largest offset target accepted [steps/min, either way].
MAX_OFFSET_SPM = 50.0


_TARGET_LIKE = re.compile(r"^\s*[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+)\s*[A-Za-z%]*\s*$")


def _looks_like_target(text: str) -> bool:
    """True for text meant as a cadence target rather than a plan ("5%", "+5 pct", "170x"; not a file)."""
    return bool(_TARGET_LIKE.match(text)) and not os.path.exists(text)


class _Goal:
    """The target as a function of coaching time."""

    def __init__(self, text: str | None):
        self.text = text
        self.target = None
        self.plan = None
        self.tempo_map = None
        if text is None:
            return
        try:
            self.target = parse_target(text)
        except ParameterError as not_a_target:
            try:
                self.plan = load_plan(text)
            except ParameterError:
                if _looks_like_target(text):
                    raise not_a_target from None   # "5%": what is wrong with it as a target, not "no plan"
                raise
        if self.target is not None and self.target.kind == "absolute":
            check_cadence(self.target.value, "target")
        if self.target is not None and self.target.kind == "percent" and abs(self.target.value) > MAX_RELATIVE_PCT:
            raise ParameterError(f"target {text!r}: a change of more than {MAX_RELATIVE_PCT:g}% of the baseline "
                                 "is not a cadence goal (retraining moves 5-10%)")
        if self.target is not None and self.target.kind == "offset" and abs(self.target.value) > MAX_OFFSET_SPM:
            raise ParameterError(f"target {text!r}: an offset of more than {MAX_OFFSET_SPM:g} steps/min "
                                 "is not a cadence goal")

    @property
    def needs_baseline(self) -> bool:
        if self.target is not None:
            return self.target.relative
        return self.plan is not None and self.plan.needs_baseline

    def resolve(self, baseline_spm: float | None) -> None:
        if self.plan is not None:
            self.tempo_map = self.plan.resolve(baseline_spm)
        elif self.target is not None:
            # a relative goal over an extreme baseline stays a cadence a runner can hold
            spm = min(max(self.target.resolve(baseline_spm), MIN_CADENCE_SPM), MAX_CADENCE_SPM)
            from stepsound.coach.plans import constant_map

            self.tempo_map = constant_map(spm)

    def at(self, t_s: float) -> tuple[float, bool]:
        return self.tempo_map.target_at(t_s)


class Coach:
    """Turns engine events into metronome commands and cues.

    Parameters
    ----------
    config : CoachConfig
    sample_rate : int [Hz]
    metronome : object, optional
        Anything with ``set_tempo(spm)``, ``enable(on)`` and
        ``trigger_cue(kind)`` (a :class:`stepsound.cue.metronome.Metronome`);
        None: decisions are only logged.
    grader : object, optional
        The engine's grader (kept for future use; the coach does not change
        it, so a replay grades steps exactly as ``analyze`` does).

    Notes
    -----
    Feed every :class:`~stepsound.engine.Step` to :meth:`on_step` and every
    :class:`~stepsound.engine.CadenceTick` to :meth:`on_tick`, in order, from
    one thread (the session's main thread).
    """

    def __init__(self, config: CoachConfig, sample_rate: int, metronome=None, grader=None):
        config.validate()
        self.config = config
        self.sample_rate = int(sample_rate)
        self.metronome = metronome
        self.grader = grader
        self.goal = _Goal(config.target)
        self.cues: list[Cue] = []
        self.phase = "warmup"
        self.baseline_spm: float | None = None
        self.baseline_impact_db: float | None = None
        self.target_spm: float | None = None
        self.on_target: bool | None = None
        self.coach_start_sample: int | None = None
        self._first_step: int | None = None
        self._warm_spm: list[float] = []
        self._warm_energy: list[float] = []
        self._heavy = deque(maxlen=config.heavy_window)
        self._last_soft: int | None = None
        self._metronome_on = False
        self._plan_audible = True
        self._off_since: int | None = None
        self._on_since: int | None = None
        self._set_spm: float | None = None
        self.recent_heavy = deque(maxlen=50)
        self._avg = deque(maxlen=max(1, int(round(config.average_s / 0.25))))
        if self.goal.tempo_map is None and self.goal.text is not None and not self.goal.needs_baseline:
            self.goal.resolve(None)

    # -- helpers -------------------------------------------------------------
    def _cue(self, sample: int, kind: str, sound: str | None = None) -> None:
        self.cues.append(Cue(sample, sample / self.sample_rate, kind, self.target_spm))
        if sound and self.metronome is not None:
            self.metronome.trigger_cue(sound)

    def _metronome(self, sample: int, on: bool) -> None:
        if on == self._metronome_on:
            return
        self._metronome_on = on
        if self.metronome is not None:
            if on and self.target_spm is not None:
                self.metronome.set_tempo(self.target_spm)
            self.metronome.enable(on)
        self._cue(sample, "metronome_on" if on else "metronome_off")

    @property
    def metronome_on(self) -> bool:
        return self._metronome_on

    @property
    def coaching(self) -> bool:
        return self.phase == "coaching"

    # -- events ---------------------------------------------------------------
    def on_step(self, step: Step) -> None:
        """Consume one graded step."""
        if step.extra:
            return
        if self._first_step is None:
            self._first_step = step.onset_sample
        self.recent_heavy.append(bool(step.heavy))
        if self.phase == "warmup":
            if step.smoothed_spm is not None:
                self._warm_spm.append(step.smoothed_spm)
            self._warm_energy.append(step.features.get("energy_db", float("nan")))
            return
        self._heavy.append(bool(step.heavy))
        cfg = self.config
        if cfg.cues == "none" or sum(self._heavy) < cfg.heavy_count:
            return
        cooldown = int(cfg.soft_cooldown_s * self.sample_rate)
        if self._last_soft is None or step.detect_sample - self._last_soft >= cooldown:
            self._last_soft = step.detect_sample
            self._heavy.clear()
            self._cue(step.detect_sample, "land_softer", "land_softer")

    def on_tick(self, tick: CadenceTick) -> None:
        """Consume one display tick (the coach's clock)."""
        if self.phase == "warmup":
            self._maybe_end_warmup(tick)
        self._coach(tick)

    def _maybe_end_warmup(self, tick: CadenceTick) -> None:
        cfg = self.config
        absolute = self.goal.tempo_map is not None
        warm_done = (self._first_step is not None
                     and tick.sample - self._first_step >= cfg.warmup_s * self.sample_rate
                     and len(self._warm_spm) >= 10)
        if warm_done:
            self.baseline_spm = float(np.median(self._warm_spm))
            energies = np.array(self._warm_energy, dtype=float)
            energies = energies[np.isfinite(energies)]
            if energies.size:
                self.baseline_impact_db = float(np.median(energies))
        if absolute and self.coach_start_sample is None:
            # an absolute target starts cueing at once (landing feedback waits for the warm-up)
            self.coach_start_sample = tick.sample
            self._start_cadence_coaching(tick)
        if warm_done:
            if self.goal.text is not None and self.goal.tempo_map is None:
                self.goal.resolve(self.baseline_spm)
            if self.coach_start_sample is None and self.goal.tempo_map is not None:
                self.coach_start_sample = tick.sample
                self._start_cadence_coaching(tick)
            self.phase = "coaching"
            self._cue(tick.sample, "baseline")

    def _start_cadence_coaching(self, tick: CadenceTick) -> None:
        self.target_spm, self._plan_audible = self.goal.at(0.0)
        if self.config.cues == "always" and self._plan_audible:
            self._metronome(tick.sample, True)

    def _coach(self, tick: CadenceTick) -> None:
        if self.goal.tempo_map is None or self.coach_start_sample is None:
            return
        cfg = self.config
        t = (tick.sample - self.coach_start_sample) / self.sample_rate
        target, audible = self.goal.at(t)
        if self.target_spm is None or abs(target - self.target_spm) >= 0.05:
            self.target_spm = target
            if self.metronome is not None:
                self.metronome.set_tempo(target)
            if self._set_spm is None or abs(target - self._set_spm) >= 1.0:
                self._set_spm = target
                self._cue(tick.sample, "tempo")
        if cfg.cues == "always":
            self._metronome(tick.sample, audible)
            self._update_on_target(tick, act=False)
        elif cfg.cues == "off-target":
            self._update_on_target(tick, act=True)

    def _update_on_target(self, tick: CadenceTick, act: bool) -> None:
        cfg = self.config
        if tick.spm is None:
            self._avg.clear()
        else:
            self._avg.append(tick.spm)
        if tick.spm is None or self.target_spm is None or len(self._avg) < self._avg.maxlen // 2:
            self._off_since = self._on_since = None
            return
        # decide on the last few seconds' mean cadence, not one noisy display value
        dev_pct = 100.0 * (float(np.mean(self._avg)) - self.target_spm) / self.target_spm
        if abs(dev_pct) > cfg.band_pct:
            self._on_since = None
            if self._off_since is None:
                self._off_since = tick.sample
            if (self.on_target is not False
                    and tick.sample - self._off_since >= cfg.off_hold_s * self.sample_rate):
                self.on_target = False
                if act:
                    self._cue(tick.sample, "speed_up" if dev_pct < 0 else "slow_down",
                              "speed_up" if dev_pct < 0 else "slow_down")
                    self._metronome(tick.sample, True)
        elif abs(dev_pct) <= cfg.band_pct / 2.0:
            self._off_since = None
            if self._on_since is None:
                self._on_since = tick.sample
            if (self.on_target is not True
                    and tick.sample - self._on_since >= cfg.on_hold_s * self.sample_rate):
                was_off = self.on_target is False
                self.on_target = True
                if act:
                    if was_off:
                        self._cue(tick.sample, "on_target", "on_target")
                    self._metronome(tick.sample, False)
        else:
            # inside the band but not inside half of it: hold the current state
            self._off_since = None
            self._on_since = None

    def status(self) -> dict:
        """What a display shows about the coaching state."""
        heavy_share = (sum(self.recent_heavy) / len(self.recent_heavy)) if self.recent_heavy else None
        return {
            "phase": self.phase,
            "target_spm": self.target_spm,
            "baseline_spm": self.baseline_spm,
            "on_target": self.on_target,
            "metronome_on": self._metronome_on,
            "heavy_share": heavy_share,
            "last_cue": self.cues[-1].kind if self.cues else None,
        }
