"""What the live dashboard shows: a session's status turned into a snapshot.

:class:`SnapshotBuilder` runs on the session's main thread: it takes the
status dict the terminal display gets too, decides the cue word, keeps the
cadence trace of the last minutes, and returns the small dict that
:meth:`stepsound.web.state.LiveState.publish` freezes for the server.
"""
from __future__ import annotations

import collections
import html
import json
import math
import os
import queue
import threading
import time
import urllib.parse

from stepsound.coach.words import CUE_WORDS, cue_code
from stepsound.coach.words import finite_or_none as _num
from stepsound.web.server import Response, Stream, static_file
from stepsound.web.state import Control, LiveState

__all__ = ["CUE_WORDS", "LiveApp", "SnapshotBuilder"]


class SnapshotBuilder:
    """Builds dashboard snapshots from session status dicts (main thread).

    Parameters
    ----------
    band_pct : float [%]
        The on-target band, ± percent of the target (as the coach uses it).
    source : str
        ``"live"`` or the replayed file's name.
    cues_mode : str
        The session's ``--cues``.
    profile : str or None
        Runner profile in use (heel/forefoot shown when set).
    trace_s : float [seconds]
        How much of the cadence trace a snapshot carries.
    trace_step_s : float [seconds]
        One trace point per this much session time.
    cue_hold_s : float [seconds]
        How long a "land softer" cue stays the word shown.
    """

    def __init__(self, *, band_pct: float = 3.0, source: str = "live", cues_mode: str = "always",
                 profile: str | None = None, trace_s: float = 300.0, trace_step_s: float = 2.0,
                 cue_hold_s: float = 6.0):
        self.band_pct = float(band_pct)
        self.source = source
        self.cues_mode = cues_mode
        self.profile = profile
        self.trace_step_s = float(trace_step_s)
        self.cue_hold_s = float(cue_hold_s)
        self._trace: collections.deque = collections.deque(maxlen=max(2, int(math.ceil(trace_s / trace_step_s))))
        self._next_trace_s = 0.0

    def cue(self, st: dict) -> str:
        """The cue code for a status (a key of :data:`CUE_WORDS`)."""
        return cue_code(st, band_pct=self.band_pct, hold_s=self.cue_hold_s)

    def build(self, st: dict) -> dict:
        """The snapshot of one status.

        Parameters
        ----------
        st : dict
            The session's status: ``elapsed_s`` [s], ``cadence_spm``,
            ``target_spm``, ``baseline_spm``, ``trend_spm`` [steps/min],
            ``steps``, ``heavy_share`` (0-1), ``phase``, ``on_target``,
            ``metronome_on``, ``last_cue`` and ``last_cue_time_s`` [s],
            ``cues_paused``, ``xruns``, ``last_steps`` (step records) and
            ``ended``; missing keys read as unknown.

        Returns
        -------
        dict
            Keys: ``state`` ("running"/"ended"), ``elapsed_s`` [s],
            ``cadence_spm``, ``target_spm``, ``diff_spm`` (cadence - target),
            ``band_spm`` (half-width of the on-target band), ``baseline_spm``,
            ``trend_spm`` [steps/min], ``cue`` (a key of :data:`CUE_WORDS`) and
            ``cue_word``, ``phase``, ``on_target``, ``metronome_on``,
            ``cues_paused``, ``steps``, ``heavy_share`` (0-1), ``xruns``,
            ``last_steps`` (``time_s`` [s], ``impact_db`` [dB re the runner's
            baseline], ``heavy``, ``side``, ``strike``), ``trace`` (``[t_s,
            cadence_spm, target_spm]`` every ``trace_step_s``), ``session``.
        """
        elapsed = _num(st.get("elapsed_s")) or 0.0
        cad = _num(st.get("cadence_spm"))
        target = _num(st.get("target_spm"))
        if cad is not None and elapsed >= self._next_trace_s:
            self._trace.append((round(elapsed, 1), round(cad, 1), None if target is None else round(target, 1)))
            self._next_trace_s = (math.floor(elapsed / self.trace_step_s) + 1) * self.trace_step_s
        code = self.cue(st)
        last_steps = []
        for s in st.get("last_steps") or ():
            last_steps.append({"time_s": _num(s.get("time_s")), "impact_db": _num(s.get("impact_db")),
                               "heavy": bool(s.get("heavy")), "side": s.get("side"),
                               "strike": s.get("strike"),
                               "strike_confidence": _num(s.get("strike_confidence"))})
        return {
            "state": "ended" if st.get("ended") else "running",
            "elapsed_s": round(elapsed, 2),
            "cadence_spm": cad,
            "target_spm": target,
            "diff_spm": None if cad is None or target is None else cad - target,
            "band_spm": None if target is None else target * self.band_pct / 100.0,
            "baseline_spm": _num(st.get("baseline_spm")),
            "trend_spm": _num(st.get("trend_spm")),
            "cue": code,
            "cue_word": CUE_WORDS[code],
            "phase": st.get("phase"),
            "on_target": st.get("on_target"),
            "metronome_on": bool(st.get("metronome_on")),
            "cues_paused": bool(st.get("cues_paused")),
            "steps": int(st.get("steps") or 0),
            "heavy_share": _num(st.get("heavy_share")),
            "xruns": int(st.get("xruns") or 0),
            "last_steps": last_steps,
            "trace": list(self._trace),
            "session": {"source": self.source, "cues_mode": self.cues_mode, "band_pct": self.band_pct,
                        "profile": self.profile},
        }


class LiveApp:
    """The routes of ``run --web``: the dashboard, its push channel, its API.

    Parameters
    ----------
    state : stepsound.web.state.LiveState
        What the session publishes.
    keepalive_s : float [seconds]
        A comment line on an idle event stream this often (proxies and
        phones drop silent connections).

    Routes
    ------
    ``GET /``
        The dashboard page.
    ``GET /api/state``
        The latest snapshot as JSON (503 before the first one).
    ``GET /api/events``
        Server-sent events: every snapshot as it is published (a slow client
        gets the newest, never a backlog), ``event: end`` when the session ends.
    ``POST /api/control``
        ``{"action": "pause_cues" | "resume_cues"}`` or
        ``{"action": "nudge_target", "delta_spm": 1 | -1}``; 202 when queued
        for the session.
    ``GET /static/NAME``
        The page's own script, style and icon.
    """

    def __init__(self, state, *, keepalive_s: float = 5.0):
        self.state = state
        self.keepalive_s = float(keepalive_s)
        self._stopping = threading.Event()

    def close(self) -> None:
        """End every event stream (the server is closing)."""
        self._stopping.set()

    def handle(self, req):
        if req.path == "/" and req.method in ("GET", "HEAD"):
            return Response.html(_page("live.html", req))
        if req.path.startswith("/static/") and req.method in ("GET", "HEAD"):
            return static_file(req.path[len("/static/"):])
        if req.path == "/api/state" and req.method in ("GET", "HEAD"):
            frame = self.state.latest()
            if frame is None:
                return Response.json({"error": "the session has not started yet"}, 503)
            return Response(200, frame.body, "application/json")
        if req.path == "/api/events" and req.method == "GET":
            return Stream(self._events)
        if req.path == "/api/control":
            if req.method != "POST":
                return Response(405, b'{"error":"use POST"}\n', "application/json", {"Allow": "POST"})
            return self._control(req)
        return Response.text("not found", 404)

    def _control(self, req):
        if not req.headers.get("content-type", "").split(";")[0].strip() == "application/json":
            return Response.json({"error": "send JSON"}, 415)
        try:
            doc = json.loads(req.body.decode("utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            delta = doc.get("delta_spm", 0.0)
            if isinstance(delta, bool) or not isinstance(delta, (int, float)):
                raise ValueError("delta_spm must be a number")
            control = Control(str(doc.get("action")), float(delta))
            if self.state.closed:
                return Response.json({"error": "the session has ended"}, 409)
            self.state.request(control)
        except (ValueError, UnicodeDecodeError) as exc:
            return Response.json({"error": str(exc)}, 400)
        except queue.Full:
            return Response.json({"error": "too many requests waiting; try again"}, 503)
        return Response.json({"queued": control.action}, 202)

    def _events(self, write) -> None:
        write(b"retry: 1000\n\n")
        seq = 0
        quiet_since = time.monotonic()
        while not self._stopping.is_set():
            frame = self.state.wait_newer(seq, 0.5)
            if frame is not None:
                write(b"id: %d\ndata: " % frame.seq + frame.body + b"\n\n")
                seq = frame.seq
                quiet_since = time.monotonic()
            elif self.state.closed:
                write(b"event: end\ndata: {}\n\n")
                return
            elif time.monotonic() - quiet_since >= self.keepalive_s:
                write(b": keep-alive\n\n")
                quiet_since = time.monotonic()


def _page(name: str, req) -> str:
    """A page of ``static/`` with its tokens filled in (HTML-escaped)."""
    server = req.server
    with open(os.path.join(os.path.dirname(__file__), "static", name), encoding="utf-8") as fh:
        text = fh.read()
    q = "?" + urllib.parse.urlencode({"token": server.token}) if server.token else ""
    return (text.replace("{{csrf}}", html.escape(server.csrf))
                .replace("{{token}}", html.escape(server.token or ""))
                .replace("{{q}}", html.escape(q)))


class LiveDashboard:
    """The web side of one running session; every method runs on the session's main thread.

    Parameters
    ----------
    address : stepsound.web.server.WebAddress
    band_pct : float [%]
        The coach's on-target band.
    source : str
        ``"live"`` or the replayed file.
    cues_mode : str
    profile : str or None
    interval_s : float [seconds]
        Least wall-clock time between two published snapshots (0.1: ten a second).

    Notes
    -----
    The session calls :meth:`service` from its main loop (never from the
    audio callback): when a snapshot is due it builds and publishes one, and
    it carries out the runner's requests (pause/resume the cues, nudge the
    target) on the coach.  Publishing never waits for a browser.
    """

    def __init__(self, address, *, band_pct: float = 3.0, source: str = "live", cues_mode: str = "always",
                 profile: str | None = None, interval_s: float = 0.1):
        from stepsound.web.server import WebServer

        self.state = LiveState()
        self.builder = SnapshotBuilder(band_pct=band_pct, source=source, cues_mode=cues_mode, profile=profile)
        self.server = WebServer(address, LiveApp(self.state), command="run")
        self.interval_s = float(interval_s)
        self._next = 0.0
        self.published = 0
        self.controls_applied = 0

    def start(self) -> "LiveDashboard":
        """Bind and serve (StepsoundError in one line if the address cannot be used)."""
        self.server.start()
        return self

    def announce(self, say, qr_out=None) -> None:
        """Tell the runner where to look: the URL(s) through ``say``; a QR code on ``qr_out`` off loopback."""
        from stepsound.web.server import print_qr

        urls = self.server.urls()
        for url in urls:
            say(f"live dashboard: {url}")
        if self.server.token is not None:
            say("the link holds an access token: anyone with it can see this session and pause its cues")
            if qr_out is not None and urls:
                print_qr(urls[0], qr_out)

    def service(self, status, coach=None, sample: int = 0) -> None:
        """Apply waiting requests to ``coach`` and publish a snapshot if one is due.

        Parameters
        ----------
        status : callable
            Returns the session's status dict (called only when a snapshot is due).
        coach : stepsound.coach.coach.Coach, optional
        sample : int
            The stream's sample clock now (when a request is carried out).
        """
        changed = False
        for control in self.state.take_controls():
            changed |= self._apply(control, coach, sample)
        now = time.monotonic()
        if changed or now >= self._next:
            # on a fixed schedule (not "interval after the last"): loops that wake every 46 or 50 ms
            # still publish 1/interval_s a second on average
            self._next = max(self._next + self.interval_s, now)
            self.state.publish(self.builder.build(status()))
            self.published += 1

    def _apply(self, control, coach, sample: int) -> bool:
        if coach is None:
            return False
        if control.action in ("pause_cues", "resume_cues"):
            done = coach.pause_cues(sample, control.action == "pause_cues")
        else:
            done = coach.nudge_target(sample, control.delta_spm)
        self.controls_applied += bool(done)
        return bool(done)

    def finish(self, status: dict) -> None:
        """Publish the last snapshot (state "ended") and end every event stream."""
        st = dict(status)
        st["ended"] = True
        self.state.publish(self.builder.build(st))
        self.state.close()

    def close(self, grace_s: float = 0.5) -> None:
        """Stop the server (giving open pages up to ``grace_s`` seconds to get the end of the session)."""
        self.state.close()
        self.server.close(grace_s=grace_s)
