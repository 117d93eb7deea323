"""``stepsound analyze``: steps, cadence and landings of recordings, offline."""
from __future__ import annotations

import argparse
import os
import sys

from stepsound.analyze import (INTERRUPTED, analyze_files, format_summary, write_analyses_json, write_csv)
from stepsound.audio.files import DEFAULT_BLOCK_SIZE, find_audio_files
from stepsound.errors import AudioFileError, ParameterError, StepsoundError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="FILE|FOLDER", help="recordings or folders of recordings")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (- for stdout)")
    p.add_argument("--csv", metavar="PATH", help="write the per-step table as CSV (- for stdout)")
    p.add_argument("--plot", metavar="PATH.png", help="plot cadence and per-step impact "
                   "(several files: PATH-<name>.png each)")
    p.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE, metavar="N",
                   help=f"samples per block fed to the engine (default {DEFAULT_BLOCK_SIZE}; results do not change)")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="parallel workers (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no human summary, no progress bar")
    p.add_argument("--profile", metavar="NAME", help="runner profile from `stepsound calibrate`: "
                   "heel/forefoot per step (and its learned heavy threshold)")
    p.add_argument("--heavy-db", type=float, metavar="DB", help="impact over the runner's baseline that "
                   "makes a step heavy (default: the profile's, else 6)")


def _check_options(args) -> None:
    """Usage errors of ``analyze``, found before any work."""
    if args.block_size < 1:
        raise ParameterError(f"--block-size={args.block_size} must be a positive number of samples")
    if args.jobs is not None and args.jobs < 1:
        raise ParameterError(f"--jobs={args.jobs} must be a positive number of workers (default: all cores)")
    if args.json == "-" and args.csv == "-":
        raise ParameterError("--json - and --csv - would both write to standard output; send one to a file")


def _write_outputs(args, paths: list, results: list, errors: list) -> list[str]:
    """Write ``--json``, ``--csv`` and ``--plot``, each independently of the others' failure.

    Returns
    -------
    failures : list of str
        One message per output that could not be written.
    """
    done = [a for a in results if a is not None]
    failures: list[str] = []

    def attempt(write, *a, **kw):
        try:
            write(*a, **kw)
        except StepsoundError as exc:
            failures.append(str(exc))

    if args.json:
        items = [a if a is not None else {"file": p, "error": e} for a, p, e in zip(results, paths, errors)]
        attempt(write_analyses_json, items, args.json, single=len(paths) == 1 and results[0] is not None)
    if args.csv:
        attempt(write_csv, done, args.csv)
    if args.plot and done:
        from stepsound.report.plot import plot_analysis

        for a in done:
            out = args.plot
            if len(paths) > 1:
                stem, ext = os.path.splitext(args.plot)
                out = f"{stem}-{os.path.splitext(os.path.basename(a.file))[0]}{ext or '.png'}"
            attempt(plot_analysis, a, out)
    return failures


def run(args) -> int:
    _check_options(args)
    paths = find_audio_files(args.paths)
    if not paths:
        raise AudioFileError(f"{', '.join(args.paths)}: no audio files found")
    from stepsound.engine import EngineFactory

    factory = EngineFactory(heavy_db=args.heavy_db, profile=args.profile)
    factory.grader()  # a bad profile or threshold fails here, once
    progress = _Progress(enabled=not args.quiet and sys.stderr.isatty(), total=len(paths))
    jobs = min(args.jobs or os.cpu_count() or 1, len(paths))
    with progress:
        results, errors, interrupted = analyze_files(paths, block_size=args.block_size, engine_factory=factory,
                                                     jobs=jobs, progress=progress)
    for err in errors:
        if err and err is not INTERRUPTED:
            print(f"stepsound: error: {err}", file=sys.stderr)
    for a in results:
        if a is not None and a.warning:
            print(f"stepsound: warning: {a.warning}", file=sys.stderr)
    if not args.quiet and not (args.json == "-" or args.csv == "-"):
        for a in results:
            if a is not None:
                print(format_summary(a))
    failures = _write_outputs(args, paths, results, errors)
    for msg in failures:
        print(f"stepsound: error: {msg}", file=sys.stderr)
    if interrupted:
        raise KeyboardInterrupt
    return 1 if any(errors) or failures else 0


class _Progress:
    """A rich progress bar on stderr (only on a terminal)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total
        self._bar = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("analysing", total=self.total)
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False

    def advance(self):
        if self._bar is not None:
            self._bar.advance(self._task)

    def file_progress(self, seconds: float):
        if self._bar is not None:
            self._bar.update(self._task, description=f"analysing ({seconds:.0f} s of audio)")
