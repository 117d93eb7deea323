"""``stepsound calibrate-latency``: measure the speaker → microphone round trip and store it."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from stepsound.cli.support import add_duplex_arguments
from stepsound.echo.roundtrip import MAX_ROUND_TRIP_S, describe, latency_key, measure_round_trip
from stepsound.errors import ParameterError
from stepsound.store import SessionStore


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_duplex_arguments(p)
    p.add_argument("--sweeps", "--clicks", dest="sweeps", type=int, default=3, metavar="N",
                   help="probe sweeps to play, 2-10 (default 3)")
    p.add_argument("--volume", type=float, default=-12.0, metavar="DBFS", help="probe level (default -12 dBFS)")
    p.add_argument("--db", metavar="PATH", help="where to store it (default: the session database)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from stepsound.audio import device

    if not 2 <= args.sweeps <= 10:
        raise ParameterError(f"--sweeps={args.sweeps} must be 2-10")
    if not (np.isfinite(args.volume) and -60.0 <= args.volume <= 0.0):
        raise ParameterError(f"--volume={args.volume} must be -60..0 dBFS")
    store = SessionStore(args.db)     # a bad database fails now, before any sound
    try:
        rate = args.sample_rate or device.default_sample_rate(args.input_device, "input")
        if not args.json:
            print(f"measuring the speaker → microphone round trip: stand still for "
                  f"{0.25 + args.sweeps * (0.5 + MAX_ROUND_TRIP_S):.0f} s (rising tones)...", file=sys.stderr)
        res = measure_round_trip(rate, (args.input_device, args.output_device), args.latency, args.block_size,
                                 sweeps=args.sweeps, level_db=args.volume)
        store.set_setting(latency_key(args.input_device, args.output_device, rate, args.latency),
                          res["round_trip_s"])
    finally:
        store.close()
    if args.json:
        print(json.dumps({k: v for k, v in res.items() if k != "response"}))
    else:
        print(describe(res) + "; stored for this device pair, rate and latency")
    return 0
