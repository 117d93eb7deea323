"""Playing the metronome live through an output device (``stepsound metronome``).

The metronome renders inside the PortAudio callback (allocation-free); the
calling thread polls its click log and reports progress through a callback.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from stepsound.cue.metronome import MetronomeSettings, make_metronome
from stepsound.errors import ParameterError


@dataclass
class PlayStatus:
    """Progress of a live metronome, as reported to ``on_status``.

    Attributes
    ----------
    target_spm : float
        The cadence playing now [steps/min].
    elapsed_s, left_s : float
        Time played and left [s] (``left_s`` is inf without an end).
    clicks : int
        Audible beats so far.
    xruns : int
        Audio problems counted by the stream.
    """

    target_spm: float
    elapsed_s: float
    left_s: float
    clicks: int
    xruns: int


def check_latency(value):
    """A PortAudio latency: ``"high"``, ``"low"`` or seconds >= 0 (str or number)."""
    if value in ("high", "low"):
        return value
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"--latency {value!r} must be high, low or seconds") from None
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ParameterError(f"--latency {value!r} must be high, low or seconds >= 0")
    return seconds


def play_metronome(cues: MetronomeSettings, *, output_device=None, sample_rate: int | None = None,
                   block_size: int = 0, latency="high", latency_ms: float = 0.0, duration_s: float = math.inf,
                   on_start: Callable[[str, int], None] | None = None,
                   on_status: Callable[[PlayStatus], None] | None = None, poll_s: float = 0.1) -> dict:
    """Play a plan or cadence until its end, ``duration_s`` or Ctrl-C.

    Parameters
    ----------
    cues : MetronomeSettings
    output_device : int, str or None
        PortAudio output device (None: the system's).
    sample_rate : int or None
        Stream rate [Hz] (None: the device's).
    block_size : int
        Frames per callback (0: PortAudio decides).
    latency : str or float
        ``"high"``, ``"low"`` or seconds.
    latency_ms : float
        Play every beat this much early (measured output latency) [ms].
    duration_s : float
        Stop after this long [s].
    on_start : callable or None
        Called once with (label, sample_rate) when the stream starts.
    on_status : callable or None
        Called every ``poll_s`` with a :class:`PlayStatus` (on the calling thread).

    Returns
    -------
    dict
        ``elapsed_s``, ``clicks`` and ``stats`` (the stream's summary line).

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C, with the stream closed; ``exc.args[0]`` is the same dict.
    """
    from stepsound.audio import device

    latency = check_latency(latency)
    if not (math.isfinite(latency_ms) and latency_ms >= 0):
        raise ParameterError(f"--latency-ms {latency_ms!r} must be >= 0")
    out_dev = device.resolve_device(output_device, "output")
    sample_rate = sample_rate or device.default_sample_rate(out_dev, "output")
    m, plan_s, label = make_metronome(cues, sample_rate, latency_samples=int(round(latency_ms * 1e-3 * sample_rate)))
    total_s = min(plan_s, duration_s)
    render = m.render_into

    def callback(indata, outdata, frames, time_info, status):
        render(outdata)

    stream = device.open_stream(callback, sample_rate=sample_rate, output_channels=1, device=out_dev,
                                block_size=block_size, latency=latency)
    clicks = 0
    if on_start is not None:
        on_start(label, sample_rate)
    try:
        with stream:
            while True:
                time.sleep(poll_s)
                clicks += int((m.read_clicks().audible).sum())
                elapsed = m.elapsed_s()
                left = total_s - elapsed
                if on_status is not None:
                    on_status(PlayStatus(m.current_spm, elapsed, left, clicks, stream.stats.xruns))
                if m.finished or left <= -0.3:  # let the last click ring out
                    if m.finished:
                        time.sleep(0.4)
                    break
    except KeyboardInterrupt:
        raise KeyboardInterrupt({"elapsed_s": m.elapsed_s(), "clicks": clicks,
                                 "stats": stream.stats.summary()}) from None
    return {"elapsed_s": m.elapsed_s(), "clicks": clicks, "stats": stream.stats.summary()}
