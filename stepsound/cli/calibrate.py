"""``stepsound calibrate``: learn a runner's heel vs forefoot landing signature (from files or live)."""
from __future__ import annotations

import argparse
import json
import sys

from stepsound.cli.support import add_aliased_option, duration_arg
from stepsound.errors import ParameterError
from stepsound.grade.calibrate import (check_separable, format_report, live_calibration_steps, make_profile,
                                       recorded_steps, report_doc)
from stepsound.grade.profiles import check_name, save_profile


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", metavar="NAME", help="runner profile to create or replace (letters, digits, _ - .)")
    p.add_argument("--heel", metavar="FILE", help="recording of heel-first landings")
    p.add_argument("--forefoot", metavar="FILE", help="recording of forefoot landings")
    p.add_argument("--live", action="store_true", help="guided calibration through the microphone")
    add_aliased_option(p, "--input-device", ("--device",), dest="input_device", metavar="ID|NAME",
                       help="input device for --live (index or part of its name)")
    p.add_argument("--sample-rate", type=int, metavar="HZ", help="input sample rate for --live "
                   "(default: the device's)")
    p.add_argument("--steps", type=int, default=20, metavar="N",
                   help="steps of each landing to record with --live (default 20; more is better)")
    p.add_argument("--settle", type=duration_arg, default=5.0, metavar="DURATION",
                   help="time to switch landing after each prompt with --live (default 5s)")
    p.add_argument("--timeout", type=duration_arg, default=30.0, metavar="DURATION",
                   help="give up after this long without a step with --live (default 30s)")
    p.add_argument("--min-confidence", type=float, default=0.8, metavar="P",
                   help="probability a landing label needs, below which it is 'uncertain' (default 0.8)")
    p.add_argument("--json", metavar="PATH", help="also write the calibration result as JSON (- for stdout)")
    p.add_argument("--force", action="store_true", help="replace an existing profile of that name without asking")


def _may_replace(name: str, force: bool) -> None:
    """Before any work: an existing profile is replaced only with ``--force`` or a yes on a terminal."""
    from stepsound.grade.profiles import profile_path

    path = profile_path(name)
    if force or not path.exists():
        return
    if sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty():
        print(f"a profile named {name!r} exists ({path}); replace it once calibrated? [y/N] ",
              end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer in ("y", "yes"):
            return
        raise ParameterError(f"profile {name!r} kept; choose another --name, or --force to replace it")
    raise ParameterError(f"a profile named {name!r} exists ({path}); add --force to replace it, "
                         "or choose another --name")


def run(args) -> int:
    if not args.name:
        raise ParameterError("--name NAME is required (the runner profile to create)")
    check_name(args.name)
    files = args.heel is not None or args.forefoot is not None
    if args.live and files:
        raise ParameterError("use either --live or --heel/--forefoot recordings, not both")
    if not args.live and not (args.heel and args.forefoot):
        raise ParameterError("give both --heel FILE and --forefoot FILE, or --live")
    if args.steps < 10:
        raise ParameterError(f"--steps={args.steps} must be at least 10")
    _may_replace(args.name, args.force)
    say_stream = sys.stderr

    def say(msg: str) -> None:
        print(msg, file=say_stream, flush=True)

    if args.live:
        steps, rate = live_calibration_steps(input_device=args.input_device, sample_rate=args.sample_rate,
                                             steps=args.steps, settle_s=args.settle, timeout_s=args.timeout,
                                             say=say)
        heel, fore, sources = steps["heel"], steps["forefoot"], ["live"]
    else:
        heel, fore, rate = recorded_steps(args.heel, args.forefoot, say)
        sources = [args.heel, args.forefoot]
    profile = make_profile(args.name, heel, fore, sources=sources, sample_rate=rate,
                           min_confidence=args.min_confidence)
    check_separable(profile)
    if args.json:
        # the JSON is written in full first and put in place only once the profile is saved:
        # a failed --json leaves no profile saved, a failed save no JSON
        from stepsound.atomic import output_file
        from stepsound.grade.profiles import profile_path

        with output_file(args.json) as fh:
            json.dump(report_doc(profile, profile_path(args.name)), fh, indent=1, allow_nan=False)
            fh.write("\n")
            fh.flush()
            path = save_profile(profile)
    else:
        path = save_profile(profile)
    if args.json != "-":
        print(format_report(profile, path))
    return 0
