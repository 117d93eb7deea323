"""``stepsound run``: the live coaching session (or its replay from a recording)."""
from __future__ import annotations

import argparse
import sys

from stepsound.cli.support import add_duplex_arguments, duration_arg, open_store
from stepsound.coach.coach import CUE_MODES, CoachConfig
from stepsound.cue.sounds import CLICK_SOUNDS
from stepsound.session.live import SessionResult, SessionSettings, run_session


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


def settings_from(args: argparse.Namespace) -> SessionSettings:
    """The session's settings from parsed options (the only place that reads them)."""
    return SessionSettings(
        coach=CoachConfig(target=args.target, cues=args.cues, warmup_s=args.warmup, band_pct=args.band),
        heavy_db=args.heavy_db, profile=args.profile or None, sound=args.sound, volume_db=args.volume,
        input_device=args.input_device, output_device=args.output_device, sample_rate=args.sample_rate,
        latency=args.latency, block_size=args.block_size, round_trip_ms=args.round_trip_ms,
        echo_cancel=args.echo_cancel, input_file=args.input_file, fast=args.fast, output_file=args.output_file,
        record=args.record, json=args.json, duration_s=args.duration,
        display="none" if args.no_display else "auto", quiet=args.quiet)


def summary_lines(result: SessionResult) -> list[str]:
    """The end-of-session summary, one fact per line."""
    s = result.document["summary"]
    cad = "unknown" if s["median_cadence_spm"] is None else f"{s['median_cadence_spm']:.1f} steps/min"
    name = f"session #{result.session_id}" if result.session_id else "session"
    lines = [f"{name} {result.status}: {result.duration_s:.1f} s of audio in {result.wall_s:.1f} s, "
             f"{s['steps']} steps, median cadence {cad}"]
    if s.get("baseline_spm") is not None:
        lines.append(f"  baseline {s['baseline_spm']:.1f} steps/min, final target "
                     f"{'—' if s['final_target_spm'] is None else format(s['final_target_spm'], '.1f')}")
    if s.get("heavy_share") is not None:
        lines.append(f"  heavy landings {100 * s['heavy_share']:.1f}%, cues given: {s['cues_given']}")
    if result.xruns:
        lines.append(f"  audio problems (xruns): {result.xruns}")
    return lines


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    settings.validate()
    store = open_store(args.db)
    try:
        result = run_session(settings, store)
    finally:
        if store is not None:
            store.close()
    if not args.quiet and args.json != "-":
        print("\n".join(summary_lines(result)), file=sys.stdout)
    if result.message:
        print(f"stepsound: {'error: ' if result.exit_code == 1 else ''}{result.message}", file=sys.stderr)
    return result.exit_code
