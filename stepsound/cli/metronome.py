"""``stepsound metronome``: play a constant cadence or a plan live through an audio device.

The metronome renders inside the PortAudio callback (allocation-free); the main
thread shows the current target, the time left and any xruns on stderr, and
Ctrl-C stops cleanly (exit code 130).
"""
from __future__ import annotations

import math
import sys
import time

from stepsound.cli.support import add_aliased_option
from stepsound.errors import ParameterError
from stepsound.cue.sounds import CLICK_SOUNDS
from stepsound.units import format_duration, parse_duration_s

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    """Arguments of ``stepsound metronome``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--spm", type=float, metavar="SPM", help="constant cadence [steps/min]")
    src.add_argument("--plan", metavar="FILE|PRESET", help="cadence plan: a TOML file or a preset (see `stepsound plans`)")
    parser.add_argument("--baseline-spm", type=float, metavar="SPM", help="your measured cadence, for relative plans (+5%%)")
    parser.add_argument("--duration", metavar="TIME", help="stop after this long, e.g. 20min (default: plan end / Ctrl-C)")
    add_aliased_option(parser, "--output-device", ("--device",), dest="output_device", metavar="NAME|INDEX",
                       help="output device (see `stepsound devices`)")
    parser.add_argument("--sample-rate", type=int, metavar="HZ", help="stream rate (default: the device's)")
    parser.add_argument("--block-size", type=int, default=0, metavar="FRAMES", help="callback block size (0: PortAudio chooses)")
    parser.add_argument("--latency", default="high", metavar="high|low|SECONDS", help="stream latency (default high)")
    parser.add_argument("--latency-ms", type=float, default=0.0, metavar="MS", help="play clicks this much early (measured output latency)")
    parser.add_argument("--sound", choices=CLICK_SOUNDS, help="beat sound (default: the plan's, else woodblock)")
    add_aliased_option(parser, "--volume", ("--level-db", "--volume-db"), dest="level_db", type=float, metavar="DBFS",
                       help="beat peak level [dBFS] (default: the plan's, else -6)")
    parser.add_argument("--accent-every", type=int, metavar="N", help="accent every Nth step (2: one foot)")
    parser.add_argument("--accent-sound", choices=CLICK_SOUNDS, help="sound of accented steps")
    parser.add_argument("--quiet", action="store_true", help="no status display")


def _latency_arg(text):
    if text in ("high", "low"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"--latency {text!r} must be high, low or seconds") from None
    if not (math.isfinite(value) and value >= 0):
        raise ParameterError(f"--latency {text!r} must be high, low or seconds >= 0")
    return value


def run(args) -> int:
    """``stepsound metronome``."""
    from stepsound.audio import device
    from stepsound.cue.render import metronome_from_args

    latency = _latency_arg(args.latency)
    if not (math.isfinite(args.latency_ms) and args.latency_ms >= 0):
        raise ParameterError(f"--latency-ms {args.latency_ms!r} must be >= 0")
    limit_s = parse_duration_s(args.duration, allow_zero=False) if args.duration else math.inf
    out_dev = device.resolve_device(args.output_device, "output")
    sample_rate = args.sample_rate or device.default_sample_rate(out_dev, "output")
    m, plan_s, label = metronome_from_args(
        args, sample_rate, latency_samples=int(round(args.latency_ms * 1e-3 * sample_rate))
    )
    total_s = min(plan_s, limit_s)

    render = m.render_into

    def callback(indata, outdata, frames, time_info, status):
        render(outdata)

    stream = device.open_stream(
        callback,
        sample_rate=sample_rate,
        output_channels=1,
        device=out_dev,
        block_size=args.block_size,
        latency=latency,
    )
    tty = sys.stderr.isatty()
    last_print = -math.inf
    clicks = 0
    print(f"stepsound: playing {label} at {sample_rate} Hz; Ctrl-C stops", file=sys.stderr)
    try:
        with stream:
            while True:
                time.sleep(0.1)
                clicks += int((m.read_clicks().audible).sum())
                elapsed = m.elapsed_s()
                left = total_s - elapsed
                if not args.quiet and (tty or elapsed - last_print >= 10.0):
                    last_print = elapsed
                    line = (
                        f"target {m.current_spm:5.1f} spm  elapsed {format_duration(elapsed)}"
                        f"  left {format_duration(left) if math.isfinite(left) else '--'}  clicks {clicks}"
                        f"  xruns {stream.stats.xruns}"
                    )
                    print(("\r" + line + "   ") if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
                if m.finished or left <= -0.3:  # let the last click ring out
                    if m.finished:
                        time.sleep(0.4)
                    break
    except KeyboardInterrupt:
        if tty and not args.quiet:
            print(file=sys.stderr)
        print(f"stepsound: stopped after {format_duration(m.elapsed_s())}; {stream.stats.summary()}", file=sys.stderr)
        raise
    if tty and not args.quiet:
        print(file=sys.stderr)
    print(f"stepsound: done after {format_duration(m.elapsed_s())}; {stream.stats.summary()}", file=sys.stderr)
    return 0
