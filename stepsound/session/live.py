"""Driving a coaching session: live through one duplex stream, or replayed from a recording.

:func:`run_session` is the library's entry point (``stepsound run`` parses its
options into a :class:`SessionSettings` and calls it).  Both paths feed the
same :class:`~stepsound.session.core.SessionCore`, so a replay with
``fast=True`` finds the steps ``analyze`` finds.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from stepsound.analyze import write_json
from stepsound.audio.rings import SampleRing
from stepsound.coach.coach import CoachConfig
from stepsound.echo.roundtrip import RoundTripRefused, describe, device_pair, latency_key, measure_round_trip
from stepsound.errors import AudioDeviceError, AudioFileError, ParameterError, StepsoundError, StoreError
from stepsound.grade.impact import LandingGrader
from stepsound.session.core import REF_EARLY_S, SessionCore, SessionLog
from stepsound.store import SessionStore


def _stderr(message: str) -> None:
    print(f"stepsound: {message}", file=sys.stderr)


@dataclass
class SessionSettings:
    """Everything a session needs besides its database.

    Parameters
    ----------
    coach : CoachConfig
        Target, cue mode, warm-up [s] and on-target band [%].
    heavy_db : float or None
        A landing this far above the runner's baseline is heavy [dB]; None: the
        profile's learned threshold, else the grader's default.
    profile : str or None
        Runner profile name (heel/forefoot calibration).
    sound : str
        Metronome sound (one of ``stepsound.cue.sounds.CLICK_SOUNDS``).
    volume_db : float
        Metronome level [dBFS], <= 0.
    input_device, output_device : int, str or None
        PortAudio devices (None: the system's default).
    sample_rate : int or None
        Stream rate [Hz] (None: the input device's).
    latency : str or float
        PortAudio latency: ``"high"``, ``"low"`` or seconds.
    block_size : int
        Frames per callback, or per replayed block; 0: PortAudio decides (1024 in a replay).
    round_trip_ms : float or None
        Output → input round trip [ms]; None: measured (sweep probes).
    echo_cancel : bool
        Remove our own output from the microphone before detection and grading.
    input_file : str or None
        Replay this recording instead of listening to the microphone.
    fast : bool
        With ``input_file``: as fast as possible, no audio device.
    output_file : str or None
        With ``input_file``: write the recording mixed with the cues (WAV/FLAC).
    record : str or None
        Live: save the microphone input (FLAC/WAV).
    json : str or None
        Write the session document as JSON ("-": standard output).
    duration_s : float or None
        End the session after this long [s].
    display : str
        ``"auto"`` (terminal panel when the terminal can show one) or ``"none"``.
    quiet : bool
        No progress notes (warnings are still given).
    voice : bool
        Speak the coaching cues and form reminders (offline text-to-speech,
        :mod:`stepsound.cue.voice`); tone cues when no speech engine is installed.
    voice_name : str
        Speech engine voice (e.g. ``"en-us"``).
    strike_goal : {"forefoot"} or None
        The runner's landing goal (with ``voice``: the ball-of-the-foot reminder).
    web : stepsound.web.server.WebAddress or None
        Serve the live dashboard there (None: no web page).
    speed : float or None
        With ``input_file``: replay at this multiple of real time, paced by the
        clock, without an audio device (a dashboard demo; tests).
    """

    coach: CoachConfig = field(default_factory=CoachConfig)
    heavy_db: float | None = None
    profile: str | None = None
    sound: str = "woodblock"
    volume_db: float = -6.0
    input_device: int | str | None = None
    output_device: int | str | None = None
    sample_rate: int | None = None
    latency: str | float = "high"
    block_size: int = 0
    round_trip_ms: float | None = None
    echo_cancel: bool = True
    input_file: str | None = None
    fast: bool = False
    output_file: str | None = None
    record: str | None = None
    json: str | None = None
    duration_s: float | None = None
    display: str = "auto"
    quiet: bool = False
    voice: bool = False
    voice_name: str = "en-us"
    strike_goal: str | None = None
    web: object = None
    speed: float | None = None

    def validate(self) -> None:
        """Refuse contradictory or impossible settings (ParameterError) before anything starts."""
        if self.fast and not self.input_file:
            raise ParameterError("--fast needs --input-file")
        if self.block_size < 0:
            raise ParameterError(f"--block-size={self.block_size} must be >= 0")
        if self.record and self.input_file:
            raise ParameterError("--record saves the microphone; with --input-file use --output-file")
        if self.output_file and not self.input_file:
            raise ParameterError("--output-file writes a replay's mix; live, use --record")
        if self.speed is not None:
            if not self.input_file:
                raise ParameterError("--speed needs --input-file")
            if self.fast:
                raise ParameterError("--speed and --fast: choose one (--fast is as fast as possible)")
            if not (math.isfinite(self.speed) and 0 < self.speed <= 1000):
                raise ParameterError(f"--speed={self.speed:g} must be a multiple of real time between 0 and 1000")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ParameterError(f"--duration={self.duration_s:g} s must be longer than 0")
        if not (math.isfinite(self.volume_db) and self.volume_db <= 0):
            raise ParameterError(f"--volume={self.volume_db} must be <= 0 dBFS")
        self.coach.validate()
        if self.strike_goal not in (None, "forefoot"):
            raise ParameterError(f"--strike-goal {self.strike_goal!r}: the goal can only be 'forefoot'")
        if self.strike_goal and not self.profile:
            raise ParameterError("--strike-goal needs --profile: heel and forefoot landings are told apart only "
                                 "after `stepsound calibrate`")
        if self.json and self.json != "-":
            # found out now, not after a long session
            folder = os.path.dirname(os.path.abspath(self.json))
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                raise StepsoundError(f"{self.json}: cannot write (no writable folder {folder})")


@dataclass
class SessionResult:
    """How a session ended.

    Attributes
    ----------
    document : dict
        The session as saved (``summary``, ``steps``, ``cadence``, ``cues``, ...).
    status : str
        ``"complete"``, ``"interrupted"`` or ``"failed"``.
    exit_code : int
        0, 1 (failed) or 130 (Ctrl-C).
    message : str or None
        One line for the user when the session did not simply complete.
    session_id : int or None
        Its row in the session database.
    duration_s, wall_s : float
        Audio processed and wall-clock time taken [s].
    xruns : int
        Audio problems counted by the stream.
    """

    document: dict
    status: str
    exit_code: int
    message: str | None
    session_id: int | None
    duration_s: float
    wall_s: float
    xruns: int


class _Writer:
    """A FLAC/WAV writer that never loses what it wrote (closes cleanly on errors)."""

    def __init__(self, path: str, sample_rate: int, channels: int = 1):
        import soundfile as sf

        self.path = path
        self.failed: str | None = None
        try:
            self.f = sf.SoundFile(path, "w", samplerate=sample_rate, channels=channels)
        except Exception as exc:  # soundfile raises several types for bad paths/formats
            raise AudioFileError(f"{path}: cannot create ({exc})") from None

    def write(self, x: np.ndarray) -> None:
        if self.failed:
            return
        try:
            self.f.write(x)
        except Exception as exc:  # disk full, I/O error
            self.failed = f"{self.path}: writing stopped ({exc}); what was written is kept"

    def close(self) -> None:
        try:
            self.f.close()
        except Exception as exc:
            self.failed = self.failed or f"{self.path}: could not be finalized ({exc})"


# ----------------------------------------------------------------------------- running


def _grader(s: SessionSettings) -> LandingGrader:
    """The landing grader: a profile's learned heavy threshold unless ``heavy_db`` is given."""
    return LandingGrader(heavy_db=s.heavy_db, profile=s.profile or None)


def run_session(settings: SessionSettings, store: SessionStore | None = None,
                say: Callable[[str], None] = _stderr) -> SessionResult:
    """Run one coaching session to its end (duration, end of the recording, Ctrl-C or an error).

    Parameters
    ----------
    settings : SessionSettings
    store : SessionStore or None
        Where the session is saved as it goes (None: nowhere).
    say : callable
        Receives one-line notes and warnings for the runner (default: standard error).

    Returns
    -------
    SessionResult
        Whatever stopped it, the session so far is saved and returned.

    Raises
    ------
    ParameterError
        Invalid settings (nothing was started).
    StepsoundError
        The audio could not be opened (nothing was recorded; a database row is
        closed as failed).
    """
    settings.validate()
    if settings.input_file:
        return _run_replay(settings, store, say)
    return _run_live(settings, store, say)


class _Outcome:
    """How a session ended: status for the database, exit code, one-line message."""

    def __init__(self):
        self.status = "complete"
        self.message: str | None = None
        self.code = 0

    def record(self, exc: BaseException) -> None:
        """Turn what stopped the session into a status (the session is saved either way)."""
        if isinstance(exc, KeyboardInterrupt):
            self.status, self.code, self.message = "interrupted", 130, "stopped by Ctrl-C; the session so far is saved"
        elif isinstance(exc, StepsoundError):
            self.status, self.code, self.message = "failed", 1, str(exc)
        else:  # a bug: the session is saved anyway, and the user gets one line
            self.status, self.code = "failed", 1
            self.message = f"internal error: {type(exc).__name__}: {exc} (a bug: please report it)"


def _run_replay(s: SessionSettings, store, say) -> SessionResult:
    """``--input-file X``: the live engine on a recording, as fast as possible
    (``--fast``) or paced in real time by an output stream that plays the
    recording mixed with the cues."""
    from stepsound.audio.files import FileSource

    source = FileSource(s.input_file, block_size=s.block_size or 1024)
    rate = source.info.sample_rate
    phrases, voice_info = _phrases(s, rate, say)
    core = SessionCore(rate, s.coach, grader=_grader(s), sound=s.sound, level_db=s.volume_db, phrases=phrases,
                       strike_goal=s.strike_goal)
    core.voice_info = voice_info
    dash = _dashboard(s, os.path.basename(s.input_file), say)
    try:
        player = None if s.fast or s.speed else PacedPlayer(rate, s.output_device, s.latency)
        return _drive(s, store, core, source, player, say, dash)
    finally:
        if dash is not None:
            dash.close()


def _dashboard(s: SessionSettings, source: str, say):
    """The live web page of the session, serving (None without ``s.web``); its URL told through ``say``."""
    if s.web is None:
        return None
    from stepsound.web.live import LiveDashboard

    dash = LiveDashboard(s.web, band_pct=s.coach.band_pct, source=source, cues_mode=s.coach.cues,
                         profile=s.profile).start()
    dash.announce(say, qr_out=sys.stderr)
    return dash


class PacedPlayer:
    """Plays blocks to an output device in real time; :meth:`write` waits for room.

    The stream runs at the device's own rate (a mismatch with the audio
    server's rate makes it underrun); blocks at another rate are converted
    by a streaming linear-interpolation resampler (fine for listening to a
    replay; nothing is measured on this path).  The callback only copies
    from a ring buffer; underflows before the end are counted.
    """

    def __init__(self, sample_rate: int, output_device=None, latency="high", ahead_s: float = 0.3):
        from stepsound.audio import device

        self.sample_rate = int(sample_rate)
        self.stats = device.StreamStats()
        self.device_rate = int(device.default_sample_rate(output_device, "output"))
        self.ring = SampleRing(int(self.device_rate * 2 * ahead_s) + 8192)
        self.ahead = int(self.device_rate * ahead_s)
        self.underflows = 0
        self.finishing = False
        self.started = False
        self._step = self.sample_rate / self.device_rate
        self._phase = 0.0
        self._prev = 0.0

        def callback(indata, outdata, frames, time_info, status):
            got = self.ring.pop_into(outdata[:, 0])
            if got < frames:
                outdata[got:, 0] = 0.0
                if not self.finishing:
                    self.underflows += 1
            if outdata.shape[1] > 1:
                outdata[:, 1:] = outdata[:, :1]

        self.stream = device.open_stream(callback, sample_rate=self.device_rate, output_channels=1,
                                         device=output_device, latency=latency, stats=self.stats)

    def __enter__(self):
        return self   # the stream starts once `ahead_s` of audio is queued (no start-up underflow)

    def __exit__(self, *exc):
        self.finishing = True
        if not self.stream.active and self.ring.available() and exc[0] is None:
            self.stream.start()
        deadline = time.monotonic() + 2.0
        while self.ring.available() and time.monotonic() < deadline and exc[0] is None:
            time.sleep(0.01)
        self.stream.close()
        return False

    def _convert(self, x: np.ndarray) -> np.ndarray:
        if self.device_rate == self.sample_rate:
            return x
        # positions of the output samples within [prev, x[0], x[1], ...]
        ext = np.concatenate([[self._prev], x])
        pos = np.arange(self._phase, len(x), self._step)
        self._phase = pos[-1] + self._step - len(x) if len(pos) else self._phase - len(x)
        self._prev = float(x[-1]) if len(x) else self._prev
        i = pos.astype(np.int64)
        frac = pos - i
        return (ext[i] * (1.0 - frac) + ext[np.minimum(i + 1, len(ext) - 1)] * frac).astype(np.float32)

    def write(self, x: np.ndarray) -> None:
        """Queue a block (at ``sample_rate``); waits while more than ``ahead_s`` is queued."""
        y = self._convert(x)
        if not self.started and self.ring.available() + len(y) > self.ahead:
            self.started = True
            self.stream.start()
        while self.ring.available() > self.ahead:
            if not self.stream.active:
                raise AudioDeviceError("the audio device stopped (lost or disconnected); the session so far is saved")
            time.sleep(0.005)
        self.ring.push(y)


#: Summary keys of a live session that have no meaning in a replay (given as null there).
LIVE_ONLY_KEYS = {"recording_overflow_samples": None, "leak_gains_db": None, "leak_ref_delay_samples": None,
                  "echo_cancel": None, "leak_ref_shift_samples": None, "round_trip_changes": None}


def _drive(s: SessionSettings, store, core: SessionCore, source, player: PacedPlayer | None,
           say, dash=None) -> SessionResult:
    rate = core.sample_rate
    writer = _Writer(s.output_file, rate) if s.output_file else None   # before the session row: a bad path
    session_id = store.begin(source=os.path.abspath(s.input_file), sample_rate=rate, target=s.coach.target,
                             cues_mode=s.coach.cues, profile=s.profile,
                             recording=s.output_file) if store else None  # leaves no "running" session behind
    log = SessionLog(core, store, session_id)
    outcome = _Outcome()
    limit = None if s.duration_s is None else int(s.duration_s * rate)
    display = _display(s)
    out = np.zeros(max(s.block_size or 1024, 1), np.float32)
    mix = np.zeros_like(out)
    t0 = time.monotonic()
    done = 0
    try:
        with display, (player or contextlib.nullcontext()):
            for block in source.blocks():
                if limit is not None and done >= limit:
                    break
                if limit is not None and done + len(block) > limit:
                    block = block[:limit - done]
                n = len(block)
                if core.engine.detector.nonfinite_count:
                    raise AudioFileError(f"{s.input_file}: contains non-finite (NaN/inf) samples")
                core.audio_block(block, out[:n])
                if writer is not None or player is not None:
                    np.add(block, out[:n], out=mix[:n])
                    np.clip(mix[:n], -1.0, 1.0, out=mix[:n])
                    if writer is not None:
                        writer.write(mix[:n])
                    if player is not None:
                        player.write(mix[:n])
                done += n
                log.pump()
                log.flush()
                if display.mode != "none":
                    display.update(log.status(done / rate, player.stats.xruns if player else 0))
                if s.speed:         # paced by the clock, no device
                    ahead = t0 + done / rate / s.speed - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                if dash is not None:
                    dash.service(lambda: log.status(done / rate, player.stats.xruns if player else 0),
                                 core.coach, core.sample)
            if core.engine.detector.nonfinite_count:
                raise AudioFileError(f"{s.input_file}: contains non-finite (NaN/inf) samples")
    except (KeyboardInterrupt, Exception) as exc:  # noqa: B902 - every end of a session is recorded
        outcome.record(exc)
    finally:
        if writer is not None:
            writer.close()
            if writer.failed:
                outcome.status, outcome.code = "failed", 1
                outcome.message = writer.failed
    # the live keys are there in every session document (null where they do not apply to a replay)
    extra = {**LIVE_ONLY_KEYS,
             "xruns": player.stats.xruns if player else 0,
             "startup_flags": player.stats.startup_flags if player else 0,
             "replay_underflows": player.underflows if player else None,
             "device_sample_rate": player.device_rate if player else None}
    if source.warning:
        say(f"warning: {source.warning}")
    return _finish(s, store, log, core, outcome, done / rate, time.monotonic() - t0,
                   player.stats.xruns if player else 0, extra, dash)


def _finish(s: SessionSettings, store, log: SessionLog, core: SessionCore, outcome: _Outcome, duration_s: float,
            wall_s: float, xruns: int = 0, extra: dict | None = None, dash=None) -> SessionResult:
    """Save everything (database, JSON); the result for the caller to report."""
    log.pump()
    extra = dict(extra or {})
    extra.update({"status": outcome.status, "events_dropped": core.events.dropped,
                  "voice": core.voice_info})
    try:
        log.flush(force=True)
    except StoreError as exc:
        outcome.status, outcome.code = "failed", 1
        outcome.message = outcome.message or str(exc)
    doc = log.document(os.path.abspath(s.input_file) if s.input_file else "live", duration_s, extra)
    if store is not None:
        try:
            store.finish(log.session_id, status=outcome.status, duration_s=duration_s, summary=doc["summary"],
                         baseline_spm=core.coach.baseline_spm, message=outcome.message)
        except StoreError as exc:
            outcome.code = outcome.code or 1
            outcome.message = outcome.message or str(exc)
    if s.json:
        try:
            write_json(doc, s.json)
        except StepsoundError as exc:
            outcome.code = outcome.code or 1
            outcome.message = outcome.message or str(exc)
    if dash is not None:
        dash.finish(log.status(duration_s, xruns))
    return SessionResult(document=doc, status=outcome.status, exit_code=outcome.code, message=outcome.message,
                         session_id=log.session_id, duration_s=duration_s, wall_s=wall_s, xruns=xruns)


def _phrases(s: SessionSettings, sample_rate: int, say):
    """The session's spoken phrases, rendered (or taken from the cache) before any audio starts.

    Returns
    -------
    (dict or None, dict or None)
        Phrases for :class:`SessionCore` (None: tone cues), and what was done
        for the session's summary (``engine``, ``phrases``, ``rendered``,
        ``cached``, ``render_s``; ``note`` when the cues fell back to tones).
    """
    if not s.voice:
        return None, None
    from stepsound.cue.voice import RenderStats, find_engine, load_phrases
    from stepsound.session.core import session_phrases

    stats = RenderStats()
    engine = find_engine()
    phrases, note = load_phrases(session_phrases(s.strike_goal), sample_rate, voice=s.voice_name, engine=engine,
                                 stats=stats)
    if note:
        say(f"{note}; the cues are tones")
    return phrases, {"engine": engine.version if engine else None, "phrases": len(phrases or ()),
                     "rendered": stats.rendered, "cached": stats.cached, "render_s": round(stats.seconds, 3),
                     **({"note": note} if note else {})}


def _display(s: SessionSettings):
    from stepsound.session.display import LiveDisplay

    if s.fast:
        return LiveDisplay("none")
    return LiveDisplay(s.display)


def _run_live(s: SessionSettings, store, say) -> SessionResult:
    """A live session: microphone in, cues out, through one duplex stream."""
    from stepsound.audio import device

    stats = device.StreamStats()
    sample_rate = s.sample_rate or device.default_sample_rate(s.input_device, "input")
    dash = _dashboard(s, "live", say)     # a busy port is said before the round trip is measured
    try:
        leak_delay, response = _leak_delay(s, store, sample_rate, say)
        probe = s.echo_cancel and s.round_trip_ms is None
        phrases, voice_info = _phrases(s, sample_rate, say)     # rendered before the stream starts
        core = SessionCore(sample_rate, s.coach, grader=_grader(s), sound=s.sound,
                           level_db=s.volume_db, leak_ref_delay=leak_delay, echo_cancel=s.echo_cancel,
                           echo_response=response, probe_db=min(s.volume_db, -12.0) - 6.0 if probe else None,
                           phrases=phrases, strike_goal=s.strike_goal)
        core.voice_info = voice_info
        if probe and not s.quiet:
            say("measuring the round trip with three rising tones at the start (keep running)")
        return _run_live_stream(s, store, say, core, sample_rate, stats, dash)
    finally:
        if dash is not None:
            dash.close()


def _run_live_stream(s: SessionSettings, store, say, core: SessionCore, sample_rate: int, stats,
                     dash) -> SessionResult:
    from stepsound.audio import device

    rec = _Writer(s.record, sample_rate) if s.record else None
    rec_ring = SampleRing(sample_rate * 20) if rec else None

    def callback(indata, outdata, frames, time_info, status):
        mic = indata[:, 0]
        core.audio_block(mic, outdata[:, 0])
        if outdata.shape[1] > 1:
            outdata[:, 1:] = outdata[:, :1]
        if rec_ring is not None:
            rec_ring.push(mic)

    session_id = store.begin(source="live", sample_rate=sample_rate, target=s.coach.target,
                             cues_mode=s.coach.cues, profile=s.profile, recording=s.record) if store else None
    log = SessionLog(core, store, session_id)
    outcome = _Outcome()
    display = _display(s)
    drain_buf = np.zeros(sample_rate * 20, np.float32)
    t0 = time.monotonic()
    try:
        stream = device.open_stream(
            callback, sample_rate=sample_rate, output_channels=1, input_channels=1,
            device=device_pair((s.input_device, s.output_device)),
            block_size=s.block_size or 0, latency=s.latency, stats=stats)
    except StepsoundError:
        if rec:
            rec.close()
        if store is not None:
            store.finish(session_id, status="failed", duration_s=0.0, summary={}, message="could not open audio")
        raise
    try:
        with display, stream:
            while True:
                time.sleep(0.05)
                if core.follow_echo() == "probe":
                    _probe_done(s, store, core, sample_rate, say)
                log.pump()
                if rec_ring is not None:
                    n = rec_ring.pop_into(drain_buf)
                    rec.write(drain_buf[:n])
                    if rec.failed:
                        raise StepsoundError(rec.failed)
                log.flush()
                elapsed = core.sample / sample_rate
                display.update(log.status(elapsed, stats.xruns))
                if dash is not None:
                    dash.service(lambda: log.status(elapsed, stats.xruns), core.coach, core.sample)
                if s.duration_s is not None and elapsed >= s.duration_s:
                    break
                if not stream.active:
                    raise AudioDeviceError("the audio device stopped (lost or disconnected); the session so far is saved")
    except (KeyboardInterrupt, Exception) as exc:  # noqa: B902 - every end of a session is recorded
        outcome.record(exc)
    finally:
        if rec is not None:
            n = rec_ring.pop_into(drain_buf)
            rec.write(drain_buf[:n])
            rec.close()
            if rec.failed and outcome.code == 0:
                outcome.status, outcome.code, outcome.message = "failed", 1, rec.failed
    extra = {"xruns": stats.xruns, "recording_overflow_samples": rec_ring.overflow if rec_ring else 0,
             "leak_gains_db": [round(g, 1) for g in core.engine.detector.leak_gains_db],
             "leak_ref_delay_samples": core.leak_ref_delay,
             "echo_cancel": None if core.aec is None else {
                 "delay_samples": core.aec.delay, "arrival_samples": core.aec.delay + core.aec.pre_samples,
                 "paths_loaded": core.aec.loads,
                 "path_moves": core.echo_tracker.moves, "quick_moves": core.echo_tracker.quick_moves,
                 "fine_moves": core.echo_tracker.fine_moves, "erle_db": round(core.aec.echo_return_loss_db, 1),
                 "probe": None if core.echo_tracker.probe_result is None else {
                     k: v for k, v in core.echo_tracker.probe_result.items() if k != "response"}},
             "startup_flags": stats.startup_flags,
             "leak_ref_shift_samples": core.engine.detector._core.ref_shift_samples,
             "round_trip_changes": core.engine.detector._core.shift_changes,
             "replay_underflows": None, "device_sample_rate": None}
    return _finish(s, store, log, core, outcome, core.sample / sample_rate, time.monotonic() - t0,
                   stats.xruns, extra, dash)


def _leak_delay(s: SessionSettings, store, sample_rate: int, say):
    """Round trip to start the session with [samples] (detector reference), and a measured response.

    ``--round-trip-ms`` if given.  With the echo canceller (the default) the
    session measures its own stream's round trip with sweep probes over its
    first seconds (see :class:`SessionCore`), so this is only the first guess:
    the value stored for this device pair, rate and latency setting, else
    40 ms.  Without it the round trip is measured now, on a stream of its own
    (about 3 s; footsteps do not disturb it), and stored; a measurement that
    is refused falls back to the stored value, else 40 ms, and stores nothing.

    Returns
    -------
    (int, np.ndarray or None)
        Reference delay for the detector [samples] (the round trip, a little
        early) and the measured response (lag 0 = output sample) or None.
    """
    key = latency_key(s.input_device, s.output_device, sample_rate, s.latency)
    response = None
    if s.round_trip_ms is not None:
        rt = s.round_trip_ms / 1000.0
    elif s.echo_cancel:
        rt = store.get_setting(key) if store is not None else None
        rt = 0.04 if rt is None else rt
    else:
        if not s.quiet:
            say("measuring the speaker → microphone round trip (3 s of rising tones)...")
        try:
            res = measure_round_trip(sample_rate, (s.input_device, s.output_device), s.latency,
                                     s.block_size or 0, level_db=min(s.volume_db, -12.0))
            rt, response = res["round_trip_s"], res["response"]
            if store is not None:
                store.set_setting(key, rt)
            if not s.quiet:
                say(describe(res))
        except AudioDeviceError as exc:
            if not isinstance(exc, RoundTripRefused) and "could not hear" not in str(exc):
                raise
            rt = store.get_setting(key) if store is not None else None
            fallback = "the one measured earlier" if rt is not None else "40 ms"
            say(f"{exc}; using {fallback}")
            rt = 0.04 if rt is None else rt
    # a little early: the detector's hold covers the late side
    return max(0, int(round((rt - REF_EARLY_S) * sample_rate))), response


def _probe_done(s: SessionSettings, store, core: SessionCore, sample_rate: int, say) -> None:
    """The session's own sweep probes were judged (the core moved the detector's reference to them):
    say so and store a clean round trip (main thread)."""
    res = core.echo_tracker.probe_result
    if "error" in res:
        say(f"{res['error']}; learning the round trip from the metronome's clicks")
        return
    if store is not None:
        store.set_setting(latency_key(s.input_device, s.output_device, sample_rate, s.latency),
                          res["round_trip_s"])
    if not s.quiet:
        say(describe(res))
