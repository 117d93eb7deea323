"""Small helpers shared by the command modules (kept apart from cli.py to avoid import cycles)."""
from __future__ import annotations

from typing import Callable, NamedTuple


class Command(NamedTuple):
    """A subcommand defined by two functions, for modules that hold several commands.

    ``stepsound.cli.SUBCOMMANDS`` names it as ``"module:attribute"``.
    """

    add_arguments: Callable
    run: Callable
