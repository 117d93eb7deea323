"""The ``stepsound`` command line: one command, several subcommands.

Each subcommand is a module of this package exposing ``add_arguments(parser)``
and ``run(args) -> int``: it parses options, builds the library's settings
objects and calls the library (no argparse Namespace goes below this package).
This file only wires them together and turns errors into one line on stderr:

* exit 0: success; 1: runtime error (bad file, device lost, ...);
* 2: usage error; 130: stopped cleanly by Ctrl-C.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from stepsound import __version__
from stepsound.errors import ParameterError, StepsoundError

#: (subcommand, module, one-line help).  Modules are imported lazily so that
#: ``stepsound analyze`` never pays for sounddevice or matplotlib.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("analyze", "stepsound.cli.analyze", "detect steps and cadence in recordings (offline)"),
    ("metronome", "stepsound.cli.metronome", "play a cadence or a plan live through an audio device"),
    ("render", "stepsound.cli.render", "write a cue track (WAV/FLAC/OGG/MP3) of a cadence or a plan"),
    ("plans", "stepsound.cli.plans", "list the built-in cadence plans, or show one"),
    ("devices", "stepsound.cli.devices", "list audio devices"),
    ("run", "stepsound.cli.run", "live coaching session: listen, coach, cue (or replay a recording)"),
    ("calibrate-latency", "stepsound.cli.latency",
     "measure the speaker → microphone round trip (so the session never hears itself)"),
    ("history", "stepsound.cli.history", "list past sessions with trends"),
    ("report", "stepsound.cli.report", "plot one session (PNG/SVG/PDF/HTML)"),
    ("calibrate", "stepsound.cli.calibrate", "learn a runner's heel vs forefoot landing signature"),
    ("profiles", "stepsound.cli.profiles", "list, show or delete runner profiles"),
]


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # pragma: no cover - exercised via main()
        command = self.prog.partition(" ")[2]          # "stepsound run" -> "run"
        raise _UsageError(f"stepsound: error: {command + ': ' if command else ''}{message}")


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser (imports every subcommand module)."""
    parser = _Parser(prog="stepsound", description="Real-time audio cadence and footstrike metronome.")
    parser.add_argument("--version", action="version", version=f"stepsound {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name, help_text in SUBCOMMANDS:
        module_name, _, attr = module_name.partition(":")
        module = importlib.import_module(module_name)
        if attr:
            module = getattr(module, attr)
        p = sub.add_parser(name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".")
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


#: A value that starts with "-" and a digit but is not a plain number ("-5s", "-3%"): argparse would
#: take it for an option.  Plain negative numbers ("-3", "-0.5") argparse already reads as values.
_SIGNED_QUANTITY = re.compile(r"^-\.?\d")
_PLAIN_NEGATIVE = re.compile(r"^-\d+$|^-\d*\.\d+$")


def _attach_signed_values(argv: list[str]) -> list[str]:
    """``--target -3%`` → ``--target=-3%``, ``--warmup -5s`` → ``--warmup=-5s``.

    So that a negative quantity reaches the option's own check (and its clear
    message) instead of argparse's "expected one argument".
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if arg.startswith("--") and "=" not in arg and _SIGNED_QUANTITY.match(nxt) \
                and not _PLAIN_NEGATIVE.match(nxt):
            out.append(f"{arg}={nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def _say(message: str) -> None:
    """Print an error on stderr as exactly one line (user text can hold line breaks)."""
    print(" ".join(str(message).splitlines()), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (never raises for user errors)."""
    try:
        parser = build_parser()
        args = parser.parse_args(_attach_signed_values(sys.argv[1:] if argv is None else list(argv)))
        if getattr(args, "_module", None) is None:
            parser.print_help(sys.stderr)
            return 2
        return int(args._module.run(args) or 0)
    except _UsageError as exc:
        _say(str(exc))
        return 2
    except ParameterError as exc:
        _say(f"stepsound: error: {exc}")
        return 2
    except StepsoundError as exc:
        _say(f"stepsound: error: {exc}")
        return 1
    except KeyboardInterrupt:
        print("stepsound: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("stepsound: error: out of memory", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error worth a message
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except OSError as exc:
        # the system refused (standard output on a full disk, a device gone): one line, no traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _say(f"stepsound: error: {where}{exc.strerror or exc}")
        return 1
    except Exception as exc:  # a bug: still one line for the user, the traceback on request
        if os.environ.get("STEPSOUND_TRACEBACK"):
            raise
        _say(f"stepsound: internal error: {type(exc).__name__}: {exc} "
             "(a bug: please report it; STEPSOUND_TRACEBACK=1 shows the details)")
        return 1


def _divert_native_stderr() -> None:
    """Keep what C libraries print (PortAudio's "Expression ... failed", decoders) off the terminal.

    Python's ``sys.stderr`` keeps the terminal (a duplicate of file
    descriptor 2); descriptor 2 itself, where C code writes, goes to
    ``$STEPSOUND_NATIVE_LOG`` (default: nowhere).  stepsound reports every
    problem it meets in one line of its own.
    """
    target = os.environ.get("STEPSOUND_NATIVE_LOG") or os.devnull
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        sys.stderr = open(saved, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                          errors="backslashreplace", closefd=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass   # no usable stderr: nothing to protect


def entry() -> None:
    """Console-script entry point (also ``python -m stepsound``)."""
    _divert_native_stderr()
    sys.exit(main())
