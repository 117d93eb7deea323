"""``stepsound devices``: list the audio devices PortAudio sees."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict

from stepsound.audio.device import list_devices


def add_arguments(parser) -> None:
    """Arguments of ``stepsound devices``."""
    parser.add_argument("--json", action="store_true", help="print the device list as JSON")


def run(args) -> int:
    """List audio devices (``stepsound devices``)."""
    devices = list_devices()
    if args.json:
        print(json.dumps([asdict(d) for d in devices], indent=2))
        return 0
    if not devices:
        print("no audio devices found (is an audio server running?)", file=sys.stderr)
        return 0
    for d in devices:
        mark = (">" if d.default_output else " ") + ("<" if d.default_input else " ")
        print(
            f"{mark} {d.index:3d}  {d.name}  ({d.hostapi}; in {d.max_input_channels}, out"
            f" {d.max_output_channels}; {d.default_sample_rate:g} Hz)"
        )
    print("(> default output, < default input)", file=sys.stderr)
    return 0
