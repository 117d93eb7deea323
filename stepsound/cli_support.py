"""Small helpers shared by the command modules (kept apart from cli.py to avoid import cycles)."""
from __future__ import annotations

import argparse
from typing import Callable, NamedTuple

from stepsound.errors import ParameterError
from stepsound.units import parse_duration_s


class Command(NamedTuple):
    """A subcommand defined by two functions, for modules that hold several commands.

    ``stepsound.cli.SUBCOMMANDS`` names it as ``"module:attribute"``.
    """

    add_arguments: Callable
    run: Callable


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
