"""The speaker → microphone round trip, measured with the step detector itself.

``stepsound calibrate-latency`` plays a few clicks through a duplex stream,
finds them in the input with the same detector that finds steps, and stores
the median delay per device pair and sample rate; a live session without a
stored value measures it first.  The detector then follows changes of the
round trip during a session on its own (see ``_core.StepDetector``).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from stepsound.cli_support import Command, latency_arg
from stepsound.errors import AudioDeviceError, ParameterError
from stepsound.metronome import Metronome
from stepsound.rings import SampleRing
from stepsound.store import SessionStore


def measure_round_trip(sample_rate: int, devices, latency="high", block_size: int = 0, clicks: int = 8,
                       interval_s: float = 0.5, level_db: float = -6.0) -> dict:
    """Measure the output → input round trip of a duplex device with our own detector.

    Plays ``clicks`` sharp clicks through a duplex stream, detects them in the
    input with the step detector, and takes the median delay between each
    click's output sample and its detected onset.

    Returns
    -------
    dict
        ``round_trip_s`` [seconds], ``round_trip_samples``, ``jitter_ms``
        (spread of the delays), ``clicks_heard``, ``leak_db`` (median level
        of the clicks heard back, dBFS), ``sample_rate``.

    Raises
    ------
    AudioDeviceError
        No such device, or fewer than half of the clicks heard back.
    """
    from stepsound import device
    from stepsound.detect import Detector, Onset, StepFeatures

    period_spm = 60.0 / interval_s
    met = Metronome(sample_rate, cadence_spm=period_spm, sound="click", level_db=level_db)
    total = int((clicks * interval_s + 1.5) * sample_rate)
    ring = SampleRing(total + sample_rate)
    stop_after = int(clicks * interval_s * sample_rate) - sample_rate // 20
    state = {"out": 0}

    def callback(indata, outdata, frames, time_info, status):
        if state["out"] < stop_after:
            met.render_into(outdata[:, 0], state["out"])
        state["out"] += frames
        ring.push(indata[:, 0])

    stats = device.StreamStats()
    stream = device.open_stream(callback, sample_rate=sample_rate, output_channels=1, input_channels=1,
                                device=device_pair(devices), block_size=block_size, latency=latency, stats=stats)
    with stream:
        deadline = time.monotonic() + total / sample_rate + 5.0
        while ring.written < total and time.monotonic() < deadline:
            time.sleep(0.02)
            if not stream.active:
                raise AudioDeviceError("the audio device stopped during the round-trip measurement")
    captured = np.zeros(ring.written, np.float32)
    ring.pop_into(captured)
    click_samples = [int(s) for s in met.read_clicks().sample]
    det = Detector(sample_rate)
    events = det.process(captured)
    onsets = [e for e in events if isinstance(e, Onset)]
    feats = {e.onset_sample: e for e in events if isinstance(e, StepFeatures)}
    delays, levels = [], []
    for c in click_samples:
        later = [o.onset_sample - c for o in onsets if 0 <= o.onset_sample - c < sample_rate]
        if later:
            d = min(later)
            delays.append(d)
            f = feats.get(c + d)
            if f is not None:
                levels.append(f.values["peak_db"])
    if len(delays) < max(2, len(click_samples) // 2):
        raise AudioDeviceError(
            f"could not hear its own clicks ({len(delays)} of {len(click_samples)}): speakers muted, "
            "microphone off, or headphones in use")
    delays_arr = np.array(delays, float)
    med = float(np.median(delays_arr))
    close = delays_arr[np.abs(delays_arr - med) < 0.01 * sample_rate]
    return {"round_trip_s": med / sample_rate, "round_trip_samples": int(round(med)),
            "jitter_ms": float(1000.0 * (close.max() - close.min()) / sample_rate) if close.size else None,
            "clicks_heard": len(delays), "clicks_played": len(click_samples),
            "leak_db": float(np.median(levels)) if levels else None, "sample_rate": sample_rate,
            "xruns": stats.xruns}


def device_pair(device):
    """(input, output) device spec, or None for the defaults."""
    if isinstance(device, (tuple, list)):
        return None if all(d is None for d in device) else tuple(device)
    return device


def latency_key(input_device, output_device, sample_rate: int) -> str:
    """Settings key of a measured round trip (per device pair and rate)."""
    return f"round_trip_s:{input_device or 'default'}|{output_device or 'default'}|{int(sample_rate)}"


# ----------------------------------------------------------------------------- calibrate-latency


def add_calibrate_latency_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-device", metavar="ID|NAME")
    p.add_argument("--output-device", metavar="ID|NAME")
    p.add_argument("--sample-rate", type=int, metavar="HZ")
    p.add_argument("--latency", type=latency_arg, default="high", metavar="high|low|SECONDS")
    p.add_argument("--block-size", type=int, default=0, metavar="N")
    p.add_argument("--clicks", type=int, default=8, metavar="N", help="clicks to play (default 8)")
    p.add_argument("--db", metavar="PATH", help="where to store it (default: the session database)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run_calibrate_latency(args) -> int:
    from stepsound import device

    if args.clicks < 3:
        raise ParameterError(f"--clicks={args.clicks} must be >= 3")
    rate = args.sample_rate or device.default_sample_rate(args.input_device, "input")
    res = measure_round_trip(rate, (args.input_device, args.output_device), args.latency, args.block_size,
                             clicks=args.clicks)
    store = SessionStore(args.db)
    try:
        store.set_setting(latency_key(args.input_device, args.output_device, rate), res["round_trip_s"])
    finally:
        store.close()
    if args.json:
        print(json.dumps(res))
    else:
        jit = "" if res["jitter_ms"] is None else f", spread {res['jitter_ms']:.1f} ms"
        print(f"round trip {1000 * res['round_trip_s']:.1f} ms ({res['round_trip_samples']} samples at {rate} Hz"
              f"{jit}); heard {res['clicks_heard']} of {res['clicks_played']} clicks; stored for this device pair")
    return 0


calibrate_latency_command = Command(add_calibrate_latency_arguments, run_calibrate_latency)
