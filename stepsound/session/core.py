"""``stepsound run``: the live coaching session (and its replay from a file).

Threads and data flow::

    audio thread (PortAudio callback, or the replay loop)          main thread
    ───────────────────────────────────────────────────          ───────────
    metronome.render_into(out)  ─┐                                  │
    out → output history ring    │ ref = out delayed by round trip  │
    engine.process(mic, ref) ────┴→ events → bounded SPSC queue ───→ coach → metronome commands
    mic → recorder ring  ─────────────────────────────────────────→ FLAC writer
                                                                     display, session database

The callback takes no lock, prints nothing and raises nothing (the device
wrapper zeroes the output and counts problems); events are handed over
through a bounded queue whose overflows are counted.  The replay path calls
the very same :meth:`SessionCore.audio_block`, so ``run --input-file X
--fast`` and ``analyze X`` find the same steps.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import math
import os
import sys
import time

import numpy as np

from stepsound.analyze import summarize, write_json
from stepsound.coach.coach import CUE_MODES, Coach, CoachConfig
from stepsound.engine import CadenceTick, Engine, Step, StepOnsetEvent
from stepsound.errors import AudioDeviceError, AudioFileError, ParameterError, StepsoundError, StoreError
from stepsound.grade.impact import LandingGrader
from stepsound.cue.metronome import Metronome
from stepsound.cue.sounds import CLICK_SOUNDS
from stepsound.store import SessionStore
from stepsound.cli.support import add_duplex_arguments, duration_arg
from stepsound.echo.path import EchoPathTracker
from stepsound.audio.rings import SampleRing, SpscQueue
from stepsound.echo.roundtrip import (RoundTripRefused, describe, device_pair, latency_key, measure_round_trip,
                                 probe_sequence)

FLUSH_S = 2.0
#: The reference runs this much ahead of the measured round trip [seconds].
REF_EARLY_S = 0.003
#: Length of each sweep a live session plays at its start to measure its own round trip [seconds].
PROBE_SWEEP_S = 0.35


class SessionCore:
    """The audio path of a session: metronome out, detector in.

    Parameters
    ----------
    sample_rate : int [Hz]
    coach_config : CoachConfig
    grader : LandingGrader, optional
    sound : str
        Metronome sound.
    level_db : float [dBFS]
        Metronome level.
    leak_ref_delay : int or None [samples]
        Live duplex only: feed the detector our own output delayed by this
        many samples (the measured round trip, a little early) so it never
        counts our own clicks.  None: no acoustic path (replays).
    echo_cancel : bool
        With ``leak_ref_delay``: also subtract our own output from the
        microphone with an adaptive echo canceller (:mod:`stepsound.echo._aec`)
        before detection and grading.  Experimental (off by default).
    echo_response : np.ndarray, optional
        Measured output → microphone response (lag 0 = output sample) that
        starts the echo canceller.
    probe_db : float, optional [dBFS]
        With the echo canceller: play three sweep probes at this level over the
        first ~3 s (mixed with the metronome) and take the round trip and
        echo path of *this* stream from them (``echo_tracker.probe_result``).
    max_block : int [samples]
        Largest block :meth:`audio_block` will be given.

    Notes
    -----
    :meth:`audio_block` runs on the audio thread: it renders the metronome
    into ``out``, runs the engine on ``mic`` and queues the events.
    Everything else runs on the main thread.
    """

    def __init__(self, sample_rate: int, coach_config: CoachConfig, *, grader=None, sound: str = "woodblock",
                 level_db: float = -6.0, leak_ref_delay: int | None = None, echo_response=None,
                 echo_cancel: bool = False, probe_db: float | None = None, max_block: int = 8192):
        self.sample_rate = int(sample_rate)
        self.grader = grader if grader is not None else LandingGrader()
        self.engine = Engine(self.sample_rate, grader=self.grader)
        self.metronome = Metronome(self.sample_rate, sound=sound, level_db=level_db, accent_every=0)
        self.coach = Coach(coach_config, self.sample_rate, self.metronome, self.grader)
        self.events = SpscQueue()
        self.sample = 0
        self.leak_ref_delay = leak_ref_delay
        self._max_block = int(max_block)
        self.aec = None
        self.echo_tracker = None
        self._probe = None
        if leak_ref_delay is not None:
            size = 1
            while size < leak_ref_delay + 2 * self._max_block + self.sample_rate:
                size *= 2   # room for the delay to grow by up to a second
            self._hist = np.zeros(size, np.float32)
            self._ref = np.zeros(self._max_block, np.float32)
            if echo_cancel:
                from stepsound.echo._aec import EchoCanceller

                round_trip = leak_ref_delay + int(round(REF_EARLY_S * self.sample_rate))
                self.aec = EchoCanceller(self.sample_rate, 0, max_block=self._max_block)
                self.aec.set_delay(round_trip - self.aec.pre_samples)
                self._clean = np.zeros(self._max_block, np.float32)
                starts, length = (), 0
                if probe_db is not None:     # sweeps at the start, mixed into what we play
                    self._probe, starts, length = probe_sequence(self.sample_rate, 3, probe_db, PROBE_SWEEP_S,
                                                                 fade_s=0.04)  # no sharp onset to take for a step
                self.echo_tracker = EchoPathTracker(self.sample_rate, self.aec, probe_starts=starts,
                                                    probe_length=length)
                if echo_response is not None:   # measured response, lag 0 = output sample
                    self.echo_tracker.set_reference(np.asarray(echo_response), round_trip)
                    self.aec.load(self.aec.delay, *self.echo_tracker._spectra)

        self._out_mono = np.zeros(self._max_block, np.float32)

    @property
    def measuring(self) -> bool:
        """True while the session's own sweep probes are being played or judged (main thread)."""
        tracker = self.echo_tracker
        return bool(tracker is not None and tracker.probe_starts and tracker.probe_result is None)

    # -- audio thread ---------------------------------------------------------
    def audio_block(self, mic: np.ndarray, out: np.ndarray | None) -> None:
        """Render cues into ``out`` (if any) and detect steps in ``mic``.

        Parameters
        ----------
        mic : np.ndarray [shape=(n,), float32]
        out : np.ndarray [shape=(n,) or (n, channels), float32] or None
        """
        n = len(mic)
        if n > self._max_block:
            for start in range(0, n, self._max_block):
                self.audio_block(mic[start:start + self._max_block],
                                 None if out is None else out[start:start + self._max_block])
            return
        if out is not None:
            self.metronome.render_into(out, self.sample)
        else:
            self.metronome.render_into(self._out_mono[:n], self.sample)
        if self._probe is not None and self.sample < len(self._probe):
            m = min(n, len(self._probe) - self.sample)
            target = self._out_mono[:n] if out is None else out
            seg = self._probe[self.sample:self.sample + m]
            if target.ndim == 1:
                target[:m] += seg
            else:
                target[:m] += seg[:, None]
        ref = None
        if self.leak_ref_delay is not None:
            played = self._out_mono[:n] if out is None else (out if out.ndim == 1 else out[:, 0])
            size = len(self._hist)
            pos = self.sample % size
            first = min(n, size - pos)
            self._hist[pos:pos + first] = played[:first]
            self._hist[:n - first] = played[first:n]
            ref = self._ref[:n]
            delay = self.leak_ref_delay
            start = (self.sample - delay) % size
            first = min(n, size - start)
            ref[:first] = self._hist[start:start + first]
            ref[first:n] = self._hist[:n - first]
            if self.sample < delay:
                ref[:min(n, delay - self.sample)] = 0.0
        if self.aec is not None:
            played = self._out_mono[:n] if out is None else (out if out.ndim == 1 else out[:, 0])
            if not played.flags.c_contiguous:
                played = self._out_mono[:n]
                played[:] = out[:, 0]
            clean = self._clean[:n]
            mic = np.ascontiguousarray(mic)
            self.aec.process(mic, played, clean)
            self.echo_tracker.push(mic, played)
            mic = clean
            if not self.aec.failing:
                # our output is gone from what the detector hears: nothing left to veto (a veto after
                # every click would only blank steps); while the canceller has no path, or its path
                # no longer removes the echo, the detector's own leak suppression stands in
                ref[:] = 0.0
        for ev in self.engine.process(mic, ref):
            self.events.put(ev)
        self.sample += n


class SessionLog:
    """Main-thread bookkeeping: steps, ticks and cues, flushed to the database.

    Memory stays flat: records are written to the database every
    ``FLUSH_S`` seconds and only the last few steps are kept for the display.
    """

    def __init__(self, core: SessionCore, store: SessionStore | None, session_id: int | None):
        self.core = core
        self.store = store
        self.session_id = session_id
        self.sample_rate = core.sample_rate
        self._steps: list = []
        self._ticks: list = []
        self._cues_sent = 0
        self.n_steps = 0
        self.last_steps = collections.deque(maxlen=6)
        self.cadence_spm = None
        self._recent_ticks = collections.deque(maxlen=200)
        self._last_flush = time.monotonic()
        self.keep_all = store is None
        self.all_steps: list = []
        self.all_ticks: list = []
        self.clicks: list = []      # output samples of the audible beats and cues played

    def pump(self) -> None:
        """Hand queued engine events to the coach and the log."""
        coach = self.core.coach
        played = self.core.metronome.read_clicks()
        if len(played):
            self.clicks.extend(int(v) for v in played.sample[played.audible])
        # while the session's own sweep probes measure the round trip, the coach waits (no click may
        # sound before the canceller knows where our clicks arrive)
        coaching = self.core.measuring is False
        for ev in self.core.events.drain():
            if isinstance(ev, Step):
                if coaching:
                    coach.on_step(ev)
                rec = ev.to_dict()
                self._steps.append(rec)
                if not ev.extra:
                    self.n_steps += 1
                self.last_steps.append(rec)
            elif isinstance(ev, CadenceTick):
                if coaching:
                    coach.on_tick(ev)
                self.cadence_spm = ev.spm
                self._ticks.append((round(ev.time_s, 3), None if ev.spm is None else round(ev.spm, 2)))
                self._recent_ticks.append((ev.time_s, ev.spm))
            elif isinstance(ev, StepOnsetEvent):
                pass

    def trend_spm(self) -> float | None:
        """Cadence change over the last 30 s [steps/min]."""
        pts = [(t, v) for t, v in self._recent_ticks if v is not None]
        if len(pts) < 20:
            return None
        now = pts[-1][0]
        old = [v for t, v in pts if now - t >= 25.0]
        if not old:
            return None
        return pts[-1][1] - old[-1]

    def flush(self, force: bool = False) -> None:
        """Write pending records to the database (every FLUSH_S, or now)."""
        now = time.monotonic()
        if not force and now - self._last_flush < FLUSH_S and len(self._steps) < 512 and len(self._ticks) < 2048:
            return
        self._last_flush = now
        cues = [c.to_dict() for c in self.core.coach.cues[self._cues_sent:]]
        steps, ticks = self._steps, self._ticks
        self._steps, self._ticks = [], []
        if self.keep_all:
            self.all_steps += steps
            self.all_ticks += ticks
            self._cues_sent += len(cues)
            return
        try:
            self.store.append(self.session_id, steps, ticks, cues)
        except StoreError:
            # keep them for the next try (or the final JSON) and re-raise
            self._steps, self._ticks = steps + self._steps, ticks + self._ticks
            raise
        self._cues_sent += len(cues)

    def document(self, source: str, duration_s: float, extra: dict) -> dict:
        """The session as the ``--json`` document (steps, cadence, summary, cues)."""
        if self.keep_all:
            steps = self.all_steps + self._steps
            ticks = self.all_ticks + self._ticks
        else:
            doc = self.store.load(self.session_id)
            steps = doc["steps"] + self._steps
            ticks = [(c["time_s"], c["spm"]) for c in doc["cadence"]] + self._ticks
        grader = self.core.grader
        summary = summarize(steps, [v for _, v in ticks], grader.heavy_db,
                            1000.0 * self.core.engine.latency_samples / self.sample_rate)
        coach = self.core.coach
        summary.update({
            "baseline_spm": None if coach.baseline_spm is None else round(coach.baseline_spm, 2),
            "final_target_spm": None if coach.target_spm is None else round(coach.target_spm, 2),
            "cues_given": sum(1 for c in coach.cues if c.kind in ("speed_up", "slow_down", "on_target", "land_softer")),
            "clicks_played": len(self.clicks),
        })
        summary.update(extra)
        return {
            "schema": 1,
            "file": source,
            "sample_rate": self.sample_rate,
            "duration_s": round(duration_s, 4),
            "steps": steps,
            "cadence": [{"time_s": t, "spm": v} for t, v in ticks],
            "cues": [c.to_dict() for c in coach.cues],
            "clicks_s": [round(c / self.sample_rate, 5) for c in self.clicks],
            "summary": summary,
        }

    def status(self, elapsed_s: float, xruns: int) -> dict:
        st = dict(self.core.coach.status())
        st.update({"cadence_spm": self.cadence_spm, "elapsed_s": elapsed_s, "xruns": xruns,
                   "steps": self.n_steps, "last_steps": list(self.last_steps), "trend_spm": self.trend_spm()})
        return st


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


def _coach_config(args) -> CoachConfig:
    return CoachConfig(target=args.target, cues=args.cues, warmup_s=args.warmup, band_pct=args.band)


def _grader(args):
    """The landing grader: a profile's learned heavy threshold unless --heavy-db is given."""
    return LandingGrader(heavy_db=args.heavy_db, profile=getattr(args, "profile", None) or None)


def _open_store(args) -> SessionStore | None:
    if args.db == "none":
        return None
    return SessionStore(args.db)


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


def run_replay(args, store) -> int:
    """``--input-file X``: the live engine on a recording, as fast as possible
    (``--fast``) or paced in real time by an output stream that plays the
    recording mixed with the cues."""
    from stepsound.audio.files import FileSource

    source = FileSource(args.input_file, block_size=args.block_size or 1024)
    rate = source.info.sample_rate
    core = SessionCore(rate, _coach_config(args), grader=_grader(args), sound=args.sound, level_db=args.volume)
    player = None if args.fast else PacedPlayer(rate, args.output_device, args.latency)
    return _drive(args, store, core, source, player)


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


def _drive(args, store, core: SessionCore, source, player: PacedPlayer | None) -> int:
    rate = core.sample_rate
    session_id = store.begin(source=os.path.abspath(args.input_file), sample_rate=rate, target=args.target,
                             cues_mode=args.cues, profile=getattr(args, "profile", None),
                             recording=args.output_file) if store else None
    log = SessionLog(core, store, session_id)
    writer = _Writer(args.output_file, rate) if args.output_file else None
    outcome = _Outcome()
    limit = None if args.duration is None else int(args.duration * rate)
    display = _display(args)
    out = np.zeros(max(args.block_size or 1024, 1), np.float32)
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
                    raise AudioFileError(f"{args.input_file}: contains non-finite (NaN/inf) samples")
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
            if core.engine.detector.nonfinite_count:
                raise AudioFileError(f"{args.input_file}: contains non-finite (NaN/inf) samples")
    except (KeyboardInterrupt, Exception) as exc:  # noqa: B902 - every end of a session is recorded
        outcome.record(exc)
    finally:
        if writer is not None:
            writer.close()
            if writer.failed:
                outcome.status, outcome.code = "failed", 1
                outcome.message = writer.failed
    extra = {} if player is None else {"xruns": player.stats.xruns, "replay_underflows": player.underflows,
                                       "device_sample_rate": player.device_rate}
    return _finish(args, store, log, core, outcome, done / rate, time.monotonic() - t0,
                   player.stats.xruns if player else 0, extra)


def _finish(args, store, log: SessionLog, core: SessionCore, outcome: _Outcome, duration_s: float,
            wall_s: float, xruns: int = 0, extra: dict | None = None) -> int:
    """Save everything (database, JSON), print the summary; return the exit code."""
    log.pump()
    extra = dict(extra or {})
    extra.update({"status": outcome.status, "events_dropped": core.events.dropped})
    try:
        log.flush(force=True)
    except StoreError as exc:
        outcome.status, outcome.code = "failed", 1
        outcome.message = outcome.message or str(exc)
    doc = log.document(os.path.abspath(args.input_file) if args.input_file else "live", duration_s, extra)
    if store is not None:
        try:
            store.finish(log.session_id, status=outcome.status, duration_s=duration_s, summary=doc["summary"],
                         baseline_spm=core.coach.baseline_spm, message=outcome.message)
        except StoreError as exc:
            outcome.code = outcome.code or 1
            outcome.message = outcome.message or str(exc)
    if args.json:
        try:
            write_json(doc, args.json)
        except StepsoundError as exc:
            outcome.code = outcome.code or 1
            outcome.message = outcome.message or str(exc)
    s = doc["summary"]
    if not args.quiet and args.json != "-":
        cad = "unknown" if s["median_cadence_spm"] is None else f"{s['median_cadence_spm']:.1f} steps/min"
        name = f"session #{log.session_id}" if log.session_id else "session"
        lines = [f"{name} {outcome.status}: "
                 f"{duration_s:.1f} s of audio in {wall_s:.1f} s, {s['steps']} steps, median cadence {cad}"]
        if s.get("baseline_spm") is not None:
            lines.append(f"  baseline {s['baseline_spm']:.1f} steps/min, final target "
                         f"{'—' if s['final_target_spm'] is None else format(s['final_target_spm'], '.1f')}")
        if s.get("heavy_share") is not None:
            lines.append(f"  heavy landings {100 * s['heavy_share']:.1f}%, cues given: {s['cues_given']}")
        if xruns:
            lines.append(f"  audio problems (xruns): {xruns}")
        print("\n".join(lines), file=sys.stderr if args.json == "-" else sys.stdout)
    if outcome.message:
        print(f"stepsound: {'error: ' if outcome.code == 1 else ''}{outcome.message}", file=sys.stderr)
    return outcome.code


def _display(args):
    from stepsound.session.display import LiveDisplay

    if args.no_display:
        return LiveDisplay("none")
    if args.fast:
        return LiveDisplay("none")
    return LiveDisplay("auto")


def run_live(args, store) -> int:
    """A live session: microphone in, cues out, through one duplex stream."""
    from stepsound.audio import device

    stats = device.StreamStats()
    sample_rate = args.sample_rate or device.default_sample_rate(args.input_device, "input")
    leak_delay, response = _leak_delay(args, store, sample_rate)
    probe = args.echo_cancel and args.round_trip_ms is None
    core = SessionCore(sample_rate, _coach_config(args), grader=_grader(args), sound=args.sound,
                       level_db=args.volume, leak_ref_delay=leak_delay, echo_cancel=args.echo_cancel,
                       echo_response=response, probe_db=min(args.volume, -12.0) - 6.0 if probe else None)
    if probe and not args.quiet:
        print("stepsound: measuring the round trip with three rising tones at the start (keep running)",
              file=sys.stderr)
    rec = _Writer(args.record, sample_rate) if args.record else None
    rec_ring = SampleRing(sample_rate * 20) if rec else None

    def callback(indata, outdata, frames, time_info, status):
        mic = indata[:, 0]
        core.audio_block(mic, outdata[:, 0])
        if outdata.shape[1] > 1:
            outdata[:, 1:] = outdata[:, :1]
        if rec_ring is not None:
            rec_ring.push(mic)

    session_id = store.begin(source="live", sample_rate=sample_rate, target=args.target, cues_mode=args.cues,
                             profile=getattr(args, "profile", None), recording=args.record) if store else None
    log = SessionLog(core, store, session_id)
    outcome = _Outcome()
    display = _display(args)
    drain_buf = np.zeros(sample_rate * 20, np.float32)
    t0 = time.monotonic()
    try:
        stream = device.open_stream(
            callback, sample_rate=sample_rate, output_channels=1, input_channels=1,
            device=device_pair((args.input_device, args.output_device)),
            block_size=args.block_size or 0, latency=args.latency, stats=stats)
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
                if core.echo_tracker is not None:
                    judged = core.echo_tracker.probe_result is not None
                    core.echo_tracker.update()
                    if not judged and core.echo_tracker.probe_result is not None:
                        _probe_done(args, store, core, sample_rate)
                log.pump()
                if rec_ring is not None:
                    n = rec_ring.pop_into(drain_buf)
                    rec.write(drain_buf[:n])
                    if rec.failed:
                        raise StepsoundError(rec.failed)
                log.flush()
                elapsed = core.sample / sample_rate
                display.update(log.status(elapsed, stats.xruns))
                if args.duration is not None and elapsed >= args.duration:
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
                 "path_moves": core.echo_tracker.moves, "erle_db": round(core.aec.echo_return_loss_db, 1),
                 "probe": None if core.echo_tracker.probe_result is None else {
                     k: v for k, v in core.echo_tracker.probe_result.items() if k != "response"}},
             "startup_flags": stats.startup_flags,
             "leak_ref_shift_samples": core.engine.detector._core.ref_shift_samples,
             "round_trip_changes": core.engine.detector._core.shift_changes}
    return _finish(args, store, log, core, outcome, core.sample / sample_rate, time.monotonic() - t0,
                   stats.xruns, extra)


def _leak_delay(args, store, sample_rate: int):
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
    key = latency_key(args.input_device, args.output_device, sample_rate, args.latency)
    response = None
    if args.round_trip_ms is not None:
        rt = args.round_trip_ms / 1000.0
    elif args.echo_cancel:
        rt = store.get_setting(key) if store is not None else None
        rt = 0.04 if rt is None else rt
    else:
        if not args.quiet:
            print("stepsound: measuring the speaker → microphone round trip (3 s of rising tones)...",
                  file=sys.stderr)
        try:
            res = measure_round_trip(sample_rate, (args.input_device, args.output_device), args.latency,
                                     args.block_size or 0, level_db=min(args.volume, -12.0))
            rt, response = res["round_trip_s"], res["response"]
            if store is not None:
                store.set_setting(key, rt)
            if not args.quiet:
                print(f"stepsound: {describe(res)}", file=sys.stderr)
        except AudioDeviceError as exc:
            if not isinstance(exc, RoundTripRefused) and "could not hear" not in str(exc):
                raise
            rt = store.get_setting(key) if store is not None else None
            fallback = "the one measured earlier" if rt is not None else "40 ms"
            print(f"stepsound: {exc}; using {fallback}", file=sys.stderr)
            rt = 0.04 if rt is None else rt
    # a little early: the detector's hold covers the late side
    return max(0, int(round((rt - REF_EARLY_S) * sample_rate))), response


def _probe_done(args, store, core: SessionCore, sample_rate: int) -> None:
    """The session's own sweep probes were judged: say so, store a clean round trip, move the detector's
    reference to it (main thread)."""
    res = core.echo_tracker.probe_result
    if "error" in res:
        print(f"stepsound: {res['error']}; learning the round trip from the metronome's clicks", file=sys.stderr)
        return
    core.leak_ref_delay = max(0, res["round_trip_samples"] - int(round(REF_EARLY_S * sample_rate)))
    if store is not None:
        store.set_setting(latency_key(args.input_device, args.output_device, sample_rate, args.latency),
                          res["round_trip_s"])
    if not args.quiet:
        print(f"stepsound: {describe(res)}", file=sys.stderr)


# ----------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("coaching")
    g.add_argument("--target", metavar="SPM|+N%|PLAN", help="172 (steps/min), +5%% (over the warm-up baseline), "
                   "or a plan file / preset (see `stepsound plans`); default: measure only")
    g.add_argument("--cues", choices=CUE_MODES, default="always",
                   help="metronome always on, only when off target, or never (default: always)")
    g.add_argument("--warmup", type=duration_arg, default=60.0, metavar="DURATION",
                   help="warm-up that measures the baseline (default 60s)")
    g.add_argument("--band", type=float, default=3.0, metavar="PCT", help="on-target band, ± percent (default 3)")
    g.add_argument("--heavy-db", type=float, default=None, metavar="DB",
                   help="a landing this far above your baseline is heavy (default: the profile's, else 6)")
    g.add_argument("--profile", metavar="NAME", help="runner profile (heel/forefoot calibration)")
    g.add_argument("--sound", choices=CLICK_SOUNDS, default="woodblock", help="metronome sound")
    g.add_argument("--volume", type=float, default=-6.0, metavar="DBFS", help="metronome level (default -6 dBFS)")
    a = p.add_argument_group("audio")
    add_duplex_arguments(a)
    a.add_argument("--round-trip-ms", type=float, metavar="MS",
                   help="output→input round trip (default: measured at the start with sweep probes)")
    a.add_argument("--echo-cancel", action=argparse.BooleanOptionalAction, default=True,
                   help="subtract our own clicks and cues from the microphone before steps are detected and "
                        "graded (the echo path measured with sweeps at the start and followed from the clicks; "
                        "default on)")
    r = p.add_argument_group("replay")
    r.add_argument("--input-file", metavar="FILE", help="run the live engine on a recording instead of the microphone")
    r.add_argument("--fast", action="store_true", help="with --input-file: as fast as possible, no audio device")
    r.add_argument("--output-file", metavar="PATH", help="write the input mixed with the cues (WAV/FLAC)")
    o = p.add_argument_group("output")
    o.add_argument("--record", metavar="PATH.flac", help="save the microphone input")
    o.add_argument("--db", metavar="PATH", help="session database (default: in the user data dir; 'none' to skip)")
    o.add_argument("--json", metavar="PATH", help="write the session as JSON (- for stdout)")
    o.add_argument("--duration", type=duration_arg, metavar="DURATION", help="end the session after this long")
    o.add_argument("--no-display", action="store_true", help="no live display (scripted use)")
    o.add_argument("--quiet", action="store_true", help="no summary at the end")


def run(args) -> int:
    if args.fast and not args.input_file:
        raise ParameterError("--fast needs --input-file")
    if args.block_size < 0:
        raise ParameterError(f"--block-size={args.block_size} must be >= 0")
    if args.record and args.input_file:
        raise ParameterError("--record saves the microphone; with --input-file use --output-file")
    if args.output_file and not args.input_file:
        raise ParameterError("--output-file writes a replay's mix; live, use --record")
    if args.duration is not None and not args.duration > 0:
        raise ParameterError(f"--duration={args.duration:g} s must be longer than 0")
    if not (math.isfinite(args.volume) and args.volume <= 0):
        raise ParameterError(f"--volume={args.volume} must be <= 0 dBFS")
    CoachConfig(target=args.target, cues=args.cues, warmup_s=args.warmup, band_pct=args.band).validate()
    if args.json and args.json != "-":
        # found out now, not after a long session
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise StepsoundError(f"{args.json}: cannot write (no writable folder {folder})")
    store = _open_store(args)
    try:
        if args.input_file:
            return run_replay(args, store)
        return run_live(args, store)
    finally:
        if store is not None:
            store.close()
