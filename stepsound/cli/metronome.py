"""``stepsound metronome``: play a constant cadence or a plan live through an audio device.

The main thread shows the current target, the time left and any xruns on
stderr; Ctrl-C stops cleanly (exit code 130).  The playing is
:func:`stepsound.cue.live.play_metronome`.
"""
from __future__ import annotations

import math
import sys

from stepsound.cli.support import add_aliased_option, metronome_settings
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


def run(args) -> int:
    """``stepsound metronome``."""
    from stepsound.cue.live import play_metronome

    tty = sys.stderr.isatty()
    last_print = [-math.inf]

    def started(label: str, sample_rate: int) -> None:
        print(f"stepsound: playing {label} at {sample_rate} Hz; Ctrl-C stops", file=sys.stderr)

    def status(st) -> None:
        if args.quiet or not (tty or st.elapsed_s - last_print[0] >= 10.0):
            return
        last_print[0] = st.elapsed_s
        line = (f"target {st.target_spm:5.1f} spm  elapsed {format_duration(st.elapsed_s)}"
                f"  left {format_duration(st.left_s) if math.isfinite(st.left_s) else '--'}  clicks {st.clicks}"
                f"  xruns {st.xruns}")
        print(("\r" + line + "   ") if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    try:
        done = play_metronome(
            metronome_settings(args), output_device=args.output_device, sample_rate=args.sample_rate,
            block_size=args.block_size, latency=args.latency, latency_ms=args.latency_ms,
            duration_s=parse_duration_s(args.duration, allow_zero=False) if args.duration else math.inf,
            on_start=started, on_status=status)
    except KeyboardInterrupt as exc:
        if tty and not args.quiet:
            print(file=sys.stderr)
        if exc.args and isinstance(exc.args[0], dict):
            print(f"stepsound: stopped after {format_duration(exc.args[0]['elapsed_s'])}; {exc.args[0]['stats']}",
                  file=sys.stderr)
        raise
    if tty and not args.quiet:
        print(file=sys.stderr)
    print(f"stepsound: done after {format_duration(done['elapsed_s'])}; {done['stats']}", file=sys.stderr)
    return 0
