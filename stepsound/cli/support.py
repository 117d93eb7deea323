"""Option types and option groups shared by the command modules."""
from __future__ import annotations

import argparse

from stepsound.errors import ParameterError
from stepsound.units import parse_duration_s


def duration_arg(text: str) -> float:
    """argparse type: a duration with units ("250ms", "45min") [seconds]."""
    try:
        return parse_duration_s(text)
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def latency_arg(text: str):
    """argparse type: PortAudio latency, 'high', 'low' or a duration [seconds]."""
    if text in ("high", "low"):
        return text
    return duration_arg(text)


def add_aliased_option(parser: argparse.ArgumentParser, name: str, old_names: tuple[str, ...], **kwargs) -> None:
    """Add option ``name`` and, hidden from ``--help``, older spellings that still work.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    name : str
        The option as documented, e.g. ``"--volume"``.
    old_names : tuple of str
        Former names kept so that scripts using them do not break.
    **kwargs
        As for :meth:`argparse.ArgumentParser.add_argument`; ``dest`` is required.
    """
    parser.add_argument(name, **kwargs)
    if old_names:
        hidden = {k: v for k, v in kwargs.items() if k in ("dest", "type", "metavar", "choices")}
        parser.add_argument(*old_names, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **hidden)


def add_duplex_arguments(group) -> None:
    """The options that choose a duplex audio stream (``run``, ``calibrate-latency``)."""
    group.add_argument("--input-device", metavar="ID|NAME", help="microphone (default: the system's; see `stepsound devices`)")
    group.add_argument("--output-device", metavar="ID|NAME", help="speaker or headphones (default: the system's)")
    group.add_argument("--sample-rate", type=int, metavar="HZ", help="default: the input device's")
    group.add_argument("--latency", type=latency_arg, default="high", metavar="high|low|SECONDS",
                       help="stream latency: high is robust on busy machines (default high); a measured round "
                            "trip is stored per setting")
    group.add_argument("--block-size", type=int, default=0, metavar="N", help="frames per callback (0: PortAudio decides)")



def open_store(db: str | None):
    """The session database named by ``--db`` (None: the default one; ``"none"``: no database).

    Returns
    -------
    stepsound.store.SessionStore or None
    """
    from stepsound.store import SessionStore

    if db == "none":
        return None
    return SessionStore(db)


def metronome_settings(args: argparse.Namespace):
    """The metronome options shared by ``render`` and ``metronome``.

    Returns
    -------
    stepsound.cue.metronome.MetronomeSettings
    """
    from stepsound.cue.metronome import MetronomeSettings

    return MetronomeSettings(plan=args.plan, spm=args.spm, baseline_spm=args.baseline_spm, sound=args.sound,
                             level_db=args.level_db, accent_every=args.accent_every,
                             accent_sound=args.accent_sound)
