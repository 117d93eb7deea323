"""The hand-over between a running session and the web server threads.

The session's main thread calls :meth:`LiveState.publish` a few times a
second with a small dict; it is serialised there, once, into an immutable
:class:`Frame` (bytes), and the server threads only ever read the latest
frame.  Nothing the server does can make ``publish`` wait for a client: a
server thread holds the lock only to look at ``_frame`` or to start waiting,
never while it reads from or writes to a socket.  The audio callback does
not know this module exists.

The other direction -- the runner's taps on the phone (pause the cues, nudge
the target) -- goes through a bounded queue that the session's main loop
drains with :meth:`LiveState.take_controls`; a full queue refuses the
request (the server answers 503) instead of growing.
"""
from __future__ import annotations

import json
import math
import queue
import threading
from dataclasses import dataclass

__all__ = ["Control", "Frame", "LiveState", "CONTROL_ACTIONS", "MAX_NUDGE_SPM"]

#: What a page may ask of the session.
CONTROL_ACTIONS = ("pause_cues", "resume_cues", "nudge_target")
#: Largest change of the target one nudge may ask for [steps/min, either way].
MAX_NUDGE_SPM = 1.0


@dataclass(frozen=True)
class Frame:
    """One published snapshot.

    Attributes
    ----------
    seq : int
        1, 2, 3 ... in publishing order (the SSE event id).
    body : bytes
        The snapshot as compact UTF-8 JSON, ``seq`` included.
    """

    seq: int
    body: bytes


@dataclass(frozen=True)
class Control:
    """A request from a page, carried out by the session's main loop.

    Attributes
    ----------
    action : str
        One of :data:`CONTROL_ACTIONS`.
    delta_spm : float [steps/min]
        For ``nudge_target``: the change asked for (-1 or +1).
    """

    action: str
    delta_spm: float = 0.0


def clean(obj, digits: int = 3):
    """``obj`` made JSON-safe: floats rounded, NaN and infinities → None, tuples → lists.

    Parameters
    ----------
    obj : object
        Nested dicts, lists and tuples of str, int, float, bool and None.
    digits : int
        Decimals kept on floats.
    """
    if isinstance(obj, float):
        return round(obj, digits) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v, digits) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):   # a numpy scalar
        return clean(obj.item(), digits)
    return obj


class LiveState:
    """The latest snapshot of a session, for the web server threads.

    Parameters
    ----------
    max_controls : int
        Requests from pages that may wait for the session's main loop; more
        are refused (:meth:`request` raises ``queue.Full``).

    Notes
    -----
    One writer (the session's main thread: :meth:`publish`,
    :meth:`take_controls`, :meth:`close`), any number of readers (server
    threads: :meth:`latest`, :meth:`wait_newer`, :meth:`request`).
    """

    def __init__(self, max_controls: int = 32):
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self._controls: queue.Queue = queue.Queue(maxsize=int(max_controls))

    # -- session side -----------------------------------------------------------------
    def publish(self, snapshot: dict) -> Frame:
        """Make ``snapshot`` the state every page and ``/api/state`` see.

        Parameters
        ----------
        snapshot : dict
            JSON-able values (see :func:`clean`); a ``seq`` key is added.

        Returns
        -------
        Frame
        """
        doc = clean(snapshot)
        with self._cond:
            seq = 1 if self._frame is None else self._frame.seq + 1
        doc["seq"] = seq
        body = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
        frame = Frame(seq, body)
        with self._cond:
            self._frame = frame
            self._cond.notify_all()
        return frame

    def close(self) -> None:
        """The session is over: streams send their last frame and end."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take_controls(self) -> list[Control]:
        """Every request waiting since the last call (oldest first); never blocks."""
        out = []
        while True:
            try:
                out.append(self._controls.get_nowait())
            except queue.Empty:
                return out

    # -- server side ------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def latest(self) -> Frame | None:
        """The newest frame, or None before the first :meth:`publish`."""
        return self._frame

    def wait_newer(self, seq: int, timeout: float) -> Frame | None:
        """The newest frame if it is newer than ``seq``, waiting up to ``timeout`` seconds for one.

        Frames published meanwhile are skipped: a slow reader gets the newest,
        never a backlog.  Returns None on timeout, or at once when closed and
        nothing newer is there.
        """
        with self._cond:
            if (self._frame is None or self._frame.seq <= seq) and not self._closed:
                self._cond.wait(timeout)
            frame = self._frame
        if frame is None or frame.seq <= seq:
            return None
        return frame

    def request(self, control: Control) -> None:
        """Queue a page's request for the session's main loop.

        Raises
        ------
        ValueError
            Not a known action, or a nudge that is not ±1 step/min at most.
        queue.Full
            Too many requests waiting.
        """
        if control.action not in CONTROL_ACTIONS:
            raise ValueError(f"unknown action {control.action!r}")
        if control.action == "nudge_target" and not (
                math.isfinite(control.delta_spm) and 0 < abs(control.delta_spm) <= MAX_NUDGE_SPM):
            raise ValueError(f"a nudge is at most ±{MAX_NUDGE_SPM:g} steps/min")
        self._controls.put_nowait(control)
