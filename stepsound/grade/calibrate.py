"""``stepsound calibrate``: learn a runner's heel vs forefoot landing signature.

Two ways in, one model out (:func:`stepsound.grade.strike.fit_strike_classifier`):

* from recordings: ``stepsound calibrate --heel HEEL.wav --forefoot FORE.wav
  --name NAME`` -- the runner landed heel-first throughout one recording and
  on the forefoot throughout the other;
* live: ``stepsound calibrate --live --name NAME`` prompts for ~20 heel-first
  steps, then ~20 forefoot steps, listening through the microphone.

Either way the steps come from the very :class:`~stepsound.engine.Engine`
that ``analyze`` and live sessions use, the classifier is cross-validated on
the calibration steps and the result is shown to the runner, and the profile
is saved in the user data dir (:mod:`stepsound.grade.profiles`).

This is coaching feedback, not a diagnosis.
"""
from __future__ import annotations

import math
import time

import numpy as np

from stepsound.engine import Engine, Step
from stepsound.errors import AudioDeviceError, ParameterError
from stepsound.grade.impact import DEFAULT_HEAVY_DB, impact_level_db
from stepsound.grade.profiles import RunnerProfile, check_name
from stepsound.grade.strike import POOR_BELOW, CalibrationError, fit_strike_classifier

__all__ = ["calibration_steps", "learn_heavy_db", "make_profile", "LiveCalibration", "format_report", "report_doc",
           "check_separable", "recorded_steps", "live_calibration_steps"]

#: Calibration steps must show at least this many to learn a heavy threshold.
MIN_STEPS_FOR_HEAVY = 16


def calibration_steps(path: str, block_size: int = 65536) -> tuple[list[Step], int]:
    """The steps of one calibration recording (extra detections dropped) and its sample rate [Hz]."""
    from stepsound.analyze import analyze_file

    a = analyze_file(path, block_size=block_size)
    return [s for s in a.steps if not s.extra], a.sample_rate


def learn_heavy_db(*step_groups) -> tuple[float | None, float | None]:
    """Heavy threshold from the spread of calibration steps' loudness.

    Each group (one landing style, in time order) is detrended by a running
    median of 9 steps; the robust standard deviation (1.4826 x MAD) of the
    pooled residuals is the runner's natural step-to-step spread ``s``.
    A step is then heavy at ``3 s`` above the baseline -- beyond this
    runner's normal variation -- clipped to 3–9 dB and rounded to 0.5 dB.

    Returns
    -------
    heavy_db, spread_db : float or None [dB]
        None when fewer than :data:`MIN_STEPS_FOR_HEAVY` steps are usable.
    """
    residuals = []
    for steps in step_groups:
        loud = np.array([impact_level_db(getattr(s, "features", s)) for s in steps], float)
        loud = loud[np.isfinite(loud)]
        for i in range(len(loud)):
            lo, hi = max(0, i - 4), min(len(loud), i + 5)
            residuals.append(loud[i] - np.median(loud[lo:hi]))
    if len(residuals) < MIN_STEPS_FOR_HEAVY:
        return None, None
    r = np.asarray(residuals)
    spread = float(1.4826 * np.median(np.abs(r - np.median(r))))
    # the running median follows each step a little: undo the ~ (1 - 1/9) shrink roughly
    spread *= 9.0 / 8.0
    heavy = float(np.clip(round(2.0 * 3.0 * spread) / 2.0, 3.0, 9.0))
    return heavy, spread


def make_profile(name: str, heel_steps, forefoot_steps, *, sources=(), sample_rate=None,
                 min_confidence: float = 0.8) -> RunnerProfile:
    """Fit a runner's profile from calibration steps (raises CalibrationError on bad input)."""
    check_name(name)
    if len(heel_steps) == 0 and len(forefoot_steps) == 0:
        raise CalibrationError("no steps were heard in the calibration audio (silence?)")
    clf, report = fit_strike_classifier(heel_steps, forefoot_steps, min_confidence=min_confidence)
    heavy, spread = learn_heavy_db(heel_steps, forefoot_steps)
    return RunnerProfile(name=name, classifier=clf, report=report, heavy_db=heavy, step_spread_db=spread,
                         sources=list(sources), sample_rate=sample_rate)


def format_report(profile: RunnerProfile, path=None) -> str:
    """A short human account of a calibration."""
    r = profile.report
    lines = [
        f"runner profile {profile.name!r}: {r.n_heel} heel-first and {r.n_forefoot} forefoot steps",
        f"  self-check ({r.cv_folds}-fold cross-validation on these steps): {100 * r.cv_accuracy:.0f}% "
        f"told apart correctly ({r.verdict})",
        f"  labelled {100 * r.cv_labelled_share:.0f}% of held-out steps"
        + ("" if r.cv_labelled_accuracy is None else f", {100 * r.cv_labelled_accuracy:.0f}% of those right")
        + "; the rest would be reported as 'uncertain'",
    ]
    if profile.heavy_db is not None:
        spread = "" if profile.step_spread_db is None else \
            f" (natural step-to-step spread {profile.step_spread_db:.1f} dB)"
        lines.append(f"  heavy landing threshold learned: +{profile.heavy_db:g} dB over your usual landing{spread}")
    else:
        lines.append(f"  heavy landing threshold: default +{DEFAULT_HEAVY_DB:g} dB")
    if r.verdict == "poor":
        lines.append("  your two landings sound alike to the microphone here: move it closer to the "
                     "treadmill, reduce noise, or exaggerate each landing, then calibrate again")
    if path is not None:
        lines.append(f"  saved to {path}")
    lines.append("  (coaching feedback, not a diagnosis)")
    return "\n".join(lines)


def report_doc(profile: RunnerProfile, path) -> dict:
    return {"name": profile.name, "path": None if path is None else str(path), "heavy_db": profile.heavy_db,
            "step_spread_db": profile.step_spread_db, "calibration": profile.report.to_dict(),
            "verdict": profile.report.verdict}


# ----------------------------------------------------------------------------- live routine


class LiveCalibration:
    """The guided live calibration as a state machine fed with audio blocks.

    Phases: ``"heel"`` then ``"forefoot"`` then ``"done"``.  Each phase first
    lets ``settle_s`` of audio pass (the runner switches landing), then
    collects ``steps_per_class`` steps.

    Parameters
    ----------
    sample_rate : int [Hz]
    steps_per_class : int >= 10
    settle_s : float >= 0 [seconds]
        Audio ignored after each prompt.
    timeout_s : float > 0 [seconds]
        Longest stretch of audio without a step before giving up.

    Notes
    -----
    :meth:`feed` consumes one mono block of any size and returns the
    messages (prompts, progress) to show, in order.  Timing is on the
    audio's sample clock, so a file-fed routine behaves exactly like a live
    one.  Call from one thread.

    Raises
    ------
    CalibrationError
        From :meth:`feed`, when no step was heard for ``timeout_s``.
    """

    def __init__(self, sample_rate: int, *, steps_per_class: int = 20, settle_s: float = 5.0,
                 timeout_s: float = 30.0, engine: Engine | None = None):
        if isinstance(steps_per_class, bool) or not (int(steps_per_class) == steps_per_class
                                                     and steps_per_class >= 10):
            raise ParameterError(f"steps_per_class={steps_per_class!r} must be a whole number >= 10")
        if not (math.isfinite(settle_s) and settle_s >= 0):
            raise ParameterError(f"settle_s={settle_s!r} must be >= 0 seconds")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ParameterError(f"timeout_s={timeout_s!r} must be > 0 seconds")
        self.engine = engine if engine is not None else Engine(sample_rate)
        self.sample_rate = self.engine.sample_rate
        self.steps_per_class = int(steps_per_class)
        self.settle_samples = int(round(settle_s * self.sample_rate))
        self.timeout_samples = int(round(timeout_s * self.sample_rate))
        self.steps: dict[str, list[Step]] = {"heel": [], "forefoot": []}
        #: Keys of the spoken instructions due (``cal_heel``, ``cal_forefoot``, ``cal_done``;
        #: :data:`stepsound.cue.voice.CALIBRATION_PHRASES`), for the caller to take and play.
        self.spoken: list[str] = []
        self.phase = "heel"
        self._phase_start = 0
        self._last_step = 0
        self._started = False

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def _prompt(self) -> str:
        n = self.steps_per_class
        settle = self.settle_samples / self.sample_rate
        if self.phase == "heel":
            return (f"Phase 1 of 2: run with HEEL-FIRST landings (heel touches down first). "
                    f"Listening for {n} steps in {settle:g} s...")
        return (f"Phase 2 of 2: now land on your FOREFOOT (ball of the foot first, heel settles after). "
                f"Switch now; listening for {n} steps in {settle:g} s...")

    def feed(self, block) -> list[str]:
        """Feed one block; return the messages to show."""
        msgs: list[str] = []
        if not self._started:
            self._started = True
            msgs.append(self._prompt())
            self.spoken.append("cal_heel")
        if self.done:
            return msgs
        for ev in self.engine.process(block):
            if not isinstance(ev, Step) or self.done:
                continue
            self._last_step = ev.onset_sample
            if ev.extra or ev.onset_sample < self._phase_start + self.settle_samples:
                continue
            got = self.steps[self.phase]
            got.append(ev)
            if len(got) == 1:
                msgs.append(f"  {self.phase}: counting")
            if len(got) % 5 == 0 or len(got) == self.steps_per_class:
                msgs.append(f"  {self.phase}: {len(got)}/{self.steps_per_class} steps")
            if len(got) >= self.steps_per_class:
                if self.phase == "heel":
                    self.phase = "forefoot"
                    self._phase_start = ev.detect_sample
                    self._last_step = ev.detect_sample
                    msgs.append(self._prompt())
                    self.spoken.append("cal_forefoot")
                else:
                    self.phase = "done"
                    msgs.append("Done: you can stop running.")
                    self.spoken.append("cal_done")
        now = self.engine.sample_index
        quiet_from = max(self._last_step, self._phase_start)
        if not self.done and now - quiet_from > self.timeout_samples + self.settle_samples:
            raise CalibrationError(
                f"no steps heard for {self.timeout_samples / self.sample_rate:g} s during the {self.phase} phase: "
                "is the microphone on and near the treadmill? (`stepsound devices` lists inputs)")
        return msgs


class _InputRing:
    """Single-producer/single-consumer float32 ring from the audio callback to the main thread.

    The callback (producer) only copies into preallocated memory and bumps
    an integer counter; the main thread (consumer) reads what is new.  If the
    reader falls behind by more than the capacity, the oldest audio is lost
    and counted in :attr:`lost_samples`.
    """

    def __init__(self, capacity: int, metronome=None):
        self.metronome = metronome
        self.capacity = int(capacity)
        self.buf = np.zeros(self.capacity, dtype=np.float32)
        self.written = 0
        self.read = 0
        self.lost_samples = 0

    def callback(self, indata, outdata, frames, time_info, status):
        if self.metronome is not None:      # spoken instructions (nothing else is played)
            self.metronome.render_into(outdata[:, 0])
            if outdata.shape[1] > 1:
                outdata[:, 1:] = outdata[:, :1]
        n = frames
        pos = self.written % self.capacity
        first = min(n, self.capacity - pos)
        self.buf[pos:pos + first] = indata[:first, 0]
        if first < n:
            self.buf[:n - first] = indata[first:n, 0]
        self.written += n

    def take(self) -> np.ndarray:
        w = self.written
        avail = w - self.read
        if avail > self.capacity:
            self.lost_samples += avail - self.capacity
            self.read = w - self.capacity
            avail = self.capacity
        if avail <= 0:
            return np.empty(0, dtype=np.float32)
        pos = self.read % self.capacity
        first = min(avail, self.capacity - pos)
        out = np.concatenate([self.buf[pos:pos + first], self.buf[:avail - first]])
        self.read += avail
        return out


def _calibration_voice(voice_name: str, sample_rate: int, say):
    """A metronome holding the spoken instructions (only a chime when there is no speech engine)."""
    from stepsound.cue.metronome import Metronome
    from stepsound.cue.voice import CALIBRATION_PHRASES, load_phrases, phrase_name

    phrases, note = load_phrases({phrase_name(k): t for k, t in CALIBRATION_PHRASES.items()}, int(sample_rate),
                                 voice=voice_name)
    if note:
        say(f"note: {note}; each instruction is a chime, read it on the screen")
        return Metronome(int(sample_rate))          # the chime of the "on target" cue marks each instruction
    return Metronome(int(sample_rate), phrases=phrases, cue_level_db=-3.0)


def live_calibration_steps(*, input_device=None, sample_rate: int | None = None, steps: int = 20,
                           settle_s: float = 5.0, timeout_s: float = 30.0, say=print, voice: bool = False,
                           voice_name: str = "en-us", output_device=None) -> tuple[dict, int]:
    """Guide a runner through a live calibration and collect their steps.

    Parameters
    ----------
    input_device : int, str or None
        Microphone (None: the system's).
    sample_rate : int or None
        Input rate [Hz] (None: the device's).
    steps : int
        Steps of each landing to record.
    settle_s : float
        Time to switch landing after each prompt [s].
    timeout_s : float
        Give up after this long without a step [s].
    say : callable
        Receives each instruction and warning, one line at a time.
    voice : bool
        Also speak the instructions ("run with heel landings now", "now land on
        the ball of your foot", "done") through ``output_device``, from a duplex
        stream; the settle time then covers the phrase, so the runner's own
        speaker is never counted as a step.  Without a speech engine: a chime.
    voice_name : str
        Speech engine voice.
    output_device : int, str or None
        Speaker or headphones for ``voice`` (None: the system's).

    Returns
    -------
    (dict, int)
        ``{"heel": [Step, ...], "forefoot": [Step, ...]}`` and the stream's rate [Hz].
    """
    from stepsound.audio import device

    if sample_rate is None:
        in_dev = device.resolve_device(input_device, "input")
        sample_rate = device.default_sample_rate(in_dev, "input")
    speaker = _calibration_voice(voice_name, sample_rate, say) if voice else None   # before the stream starts
    ring = _InputRing(int(sample_rate) * 20, speaker)
    if speaker is None:
        stream = device.open_stream(ring.callback, sample_rate=sample_rate, output_channels=0, input_channels=1,
                                    device=input_device, latency="high")
    else:
        from stepsound.echo.roundtrip import device_pair

        longest = max((speaker.sound_length(k) for k in speaker.phrases), default=0)
        settle_s = max(settle_s, longest / sample_rate + 1.0)
        stream = device.open_stream(ring.callback, sample_rate=sample_rate, output_channels=1, input_channels=1,
                                    device=device_pair((input_device, output_device)), latency="high")
    routine = LiveCalibration(stream.sample_rate, steps_per_class=steps, settle_s=settle_s, timeout_s=timeout_s)

    def speak():
        if speaker is not None:
            for key in routine.spoken:
                name = f"say:{key}"
                speaker.trigger_cue(name if name in speaker.phrases else "on_target")
        routine.spoken.clear()
    last_audio = time.monotonic()
    with stream:
        while not routine.done:
            block = ring.take()
            if block.size:
                last_audio = time.monotonic()
                for msg in routine.feed(block):
                    say(msg)
                speak()
            elif time.monotonic() - last_audio > 5.0:
                raise AudioDeviceError("the input device delivers no audio (device lost or muted?)")
            else:
                for msg in routine.feed(block):
                    say(msg)
                speak()
                time.sleep(0.02)
        if speaker is not None and "say:cal_done" in speaker.phrases:
            time.sleep(speaker.sound_length("say:cal_done") / stream.sample_rate + 0.3)   # let "done" be heard
    if ring.lost_samples:
        say(f"warning: {ring.lost_samples / stream.sample_rate:.1f} s of audio were lost (machine too busy)")
    if stream.stats.xruns:
        say(f"warning: {stream.stats.summary()}")
    return routine.steps, stream.sample_rate


def check_separable(profile: RunnerProfile) -> None:
    """Refuse a calibration whose landings cannot be told apart (nothing is saved)."""
    r = profile.report
    if r.verdict == "poor":
        raise CalibrationError(
            f"calibration of {profile.name!r} not saved: the two landings were told apart in only "
            f"{100 * r.cv_accuracy:.0f}% of held-out steps (at least {100 * POOR_BELOW:.0f}% needed); move the "
            "microphone closer, reduce noise or exaggerate each landing, then calibrate again")


def recorded_steps(heel_file: str, forefoot_file: str, say=print) -> tuple[list, list, int]:
    """Steps of a heel-landing and a forefoot-landing recording.

    Returns
    -------
    (list of Step, list of Step, int)
        Heel steps, forefoot steps and the heel recording's rate [Hz].

    Raises
    ------
    CalibrationError
        A recording has no steps.
    """
    heel, rate = calibration_steps(heel_file)
    fore, rate_f = calibration_steps(forefoot_file)
    for path, got in ((heel_file, heel), (forefoot_file, fore)):
        if not got:
            raise CalibrationError(f"{path}: no steps heard (silence, or not a running recording?)")
    if rate_f != rate:
        say(f"note: the recordings have different sample rates ({rate} and {rate_f} Hz)")
    return heel, fore, rate
