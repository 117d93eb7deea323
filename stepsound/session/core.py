"""The coaching session's per-block work and its log (``SessionCore``, ``SessionLog``).

Threads and data flow::

    audio thread (PortAudio callback, or the replay loop)          main thread
    ───────────────────────────────────────────────────          ───────────
    metronome.render_into(out)  ─┐                                  │
    out → output history ring    │ ref = out delayed by round trip  │
    engine.process(mic, ref) ────┴→ events → bounded SPSC queue ───→ coach → metronome commands
    mic → recorder ring  ─────────────────────────────────────────→ FLAC writer
                                                                     display, session database

:mod:`stepsound.session.live` drives it live or from a recording.  The
callback takes no lock, prints nothing and raises nothing (the device
wrapper zeroes the output and counts problems); events are handed over
through a bounded queue whose overflows are counted.  The replay path calls
the very same :meth:`SessionCore.audio_block`, so ``run --input-file X
--fast`` and ``analyze X`` find the same steps.
"""
from __future__ import annotations

import collections
import time

import numpy as np

from stepsound.analyze import summarize
from stepsound.audio.rings import SpscQueue
from stepsound.coach.coach import Coach, CoachConfig
from stepsound.cue.metronome import Metronome
from stepsound.echo.path import EchoPathTracker
from stepsound.echo.roundtrip import probe_sequence
from stepsound.engine import CadenceTick, Engine, Step, StepOnsetEvent
from stepsound.errors import StoreError
from stepsound.grade.impact import LandingGrader
from stepsound.store import SessionStore

FLUSH_S = 2.0

#: The reference runs this much ahead of the measured round trip [seconds].
REF_EARLY_S = 0.003
#: Length of each sweep a live session plays at its start to measure its own round trip [seconds].
PROBE_SWEEP_S = 0.35


def session_phrases(strike_goal: str | None = None) -> dict:
    """The phrases a coaching session may speak (metronome sound name → text).

    The coaching cues and the form reminders; the ball-of-the-foot reminder
    only for a runner whose goal is a forefoot landing.
    """
    from stepsound.cue.voice import CUE_PHRASES, REMINDERS, phrase_name

    keys = list(CUE_PHRASES) + [k for k in REMINDERS if k != "ball_of_foot" or strike_goal == "forefoot"]
    return {phrase_name(k): {**CUE_PHRASES, **REMINDERS}[k] for k in keys}


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
        microphone with the echo canceller (:mod:`stepsound.echo._aec`) before
        detection and grading (the live default).  The detector's leak
        suppression then stays on behind it, with gains learned separately
        for the raw and the cancelled microphone (switched by the
        canceller's :attr:`~stepsound.echo._aec.EchoCanceller.failing`), and
        :meth:`follow_echo` keeps its reference at the canceller's arrival.
    echo_response : np.ndarray, optional
        Measured output → microphone response (lag 0 = output sample) that
        starts the echo canceller.
    probe_db : float, optional [dBFS]
        With the echo canceller: play three sweep probes at this level over the
        first ~3 s (mixed with the metronome) and take the round trip and
        echo path of *this* stream from them (``echo_tracker.probe_result``).
    max_block : int [samples]
        Largest block :meth:`audio_block` will be given.
    phrases : dict of str to np.ndarray, optional
        Spoken phrases for the metronome (:func:`stepsound.cue.voice.load_phrases`
        with :func:`session_phrases`): the coach then speaks its cues and form
        reminders (:class:`stepsound.coach.speech.Speaker`) and the metronome
        ducks under the speech.  None: tone cues.
    strike_goal : {"forefoot"} or None
        The runner's landing goal (with phrases: the ball-of-the-foot reminder).

    Notes
    -----
    :meth:`audio_block` runs on the audio thread: it renders the metronome
    into ``out``, runs the engine on ``mic`` and queues the events.
    Everything else runs on the main thread.
    """

    def __init__(self, sample_rate: int, coach_config: CoachConfig, *, grader=None, sound: str = "woodblock",
                 level_db: float = -6.0, leak_ref_delay: int | None = None, echo_response=None,
                 echo_cancel: bool = False, probe_db: float | None = None, max_block: int = 8192,
                 phrases: dict | None = None, strike_goal: str | None = None):
        self.sample_rate = int(sample_rate)
        self.grader = grader if grader is not None else LandingGrader()
        self.engine = Engine(self.sample_rate, grader=self.grader)
        # speech a little above the clicks' peak level: its energy is spread over time, a click's is not
        self.metronome = Metronome(self.sample_rate, sound=sound, level_db=level_db, accent_every=0,
                                   cue_level_db=min(level_db + 3.0, -1.0) if phrases else -6.0, phrases=phrases)
        self.speaker = None
        #: What was done to get the phrases (set by the session driver), for the summary.
        self.voice_info: dict | None = None
        if phrases:
            from stepsound.coach.speech import Speaker

            self.speaker = Speaker(self.metronome, self.sample_rate, strike_goal=strike_goal,
                                   band_pct=coach_config.band_pct)
        self.coach = Coach(coach_config, self.sample_rate, self.metronome, self.grader, speaker=self.speaker)
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

    def follow_echo(self) -> str | None:
        """Let the echo path tracker take what the audio thread copied (main thread).

        When the session's sweep probes were judged, or the tracker moved the
        canceller's path, the detector's reference of our own output moves to
        the same arrival, so that its leak veto covers what is left of our
        clicks where they now arrive.

        Returns
        -------
        str or None
            ``"probe"`` when the probes were judged by this call, ``"moved"``
            when the path moved, else None.
        """
        tracker = self.echo_tracker
        if tracker is None:
            return None
        judged = tracker.probe_result is not None
        moved = tracker.update()
        what = "probe" if not judged and tracker.probe_result is not None else ("moved" if moved else None)
        if moved and tracker.reference is not None:
            arrival = tracker.arrival_samples
            # the reference history holds the round trip plus a second of growth (sized at the start)
            limit = len(self._hist) - 2 * self._max_block
            self.leak_ref_delay = int(min(limit, max(0, arrival - int(round(REF_EARLY_S * self.sample_rate)))))
        return what

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
            # the detector's leak suppression stays on behind the canceller: it learns how loud what
            # is *left* of our clicks is (30-40 dB under them when the path is right) and counts only
            # what stands above that -- a residue is still a sharp onset where no noise hides it.
            # While the canceller fails (no path yet, or the round trip moved) the detector hears
            # our raw clicks, with the leak gain it learned for those.
            mic = clean
            self.engine.detector.set_leak_state(0 if self.aec.failing else 1)
        for ev in self.engine.process(mic, ref):
            self.events.put(ev)
        self.sample += n


class SessionLog:
    """Main-thread bookkeeping: steps, ticks and cues, flushed to the database.

    Memory stays flat: records are written to the database every
    ``FLUSH_S`` seconds and only the last few steps are kept for the display.
    The steps of the last ``HOLD_S`` seconds wait for the next flush: a
    later step may still supersede one of them (then it is marked extra, and
    no longer counted).
    """

    #: Steps younger than this (re the newest step) are not flushed yet [seconds]; longer than
    #: any refractory interval, within which a superseding step comes.
    HOLD_S = 1.0

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
                if ev.supersedes is not None:
                    self._supersede(ev.supersedes)
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

    def _supersede(self, onset_sample: int) -> None:
        """The step that began at ``onset_sample`` was a sound before a step: no step."""
        for rec in reversed(self._steps):
            if rec["onset_sample"] == onset_sample:
                if not rec["extra"]:
                    rec["extra"] = True
                    self.n_steps -= 1
                return

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
        if not force and steps:
            newest = steps[-1]["time_s"]
            k = len(steps)
            while k > 0 and steps[k - 1]["time_s"] > newest - self.HOLD_S:
                k -= 1
            steps, self._steps = steps[:k], steps[k:]
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
            "band_pct": coach.config.band_pct,
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
