"""Parsing of human-written quantities: durations and cadence targets.

Shared by the command line and the plan files, so that ``--duration 45min``,
``duration = "3min"`` and ``--min-interval 250ms`` all mean the same thing.

Examples
--------
>>> parse_duration_s("3min")
180.0
>>> parse_duration_s("1h30min")
5400.0
>>> parse_duration_s("250ms")
0.25
>>> parse_target("+5%").resolve(160.0)
168.0
>>> parse_target("170").resolve(None)
170.0
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from stepsound.errors import ParameterError

__all__ = ["parse_duration_s", "format_duration", "parse_target", "Target"]

#: Seconds per unit.  Long spellings are accepted too.
_DURATION_UNITS = {
    "ms": 0.001,
    "msec": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}

_NUMBER = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_TERM = re.compile(rf"\s*({_NUMBER})\s*([a-zA-Z]*)\s*")
_CLOCK = re.compile(r"^\s*(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)\s*$")


def parse_duration_s(text, *, require_unit: bool = False, allow_zero: bool = True) -> float:
    """Parse a duration into seconds.

    Parameters
    ----------
    text : str or int or float
        ``"90s"``, ``"3min"``, ``"250ms"``, ``"1.5h"``, compound ``"1h30min"``
        or ``"2min 30s"``, clock form ``"1:30"`` (m:s) or ``"1:02:03"``
        (h:m:s).  A bare number (``"90"``, or a Python number) is seconds
        unless ``require_unit`` is true.
    require_unit : bool
        Reject bare numbers (plan files do, so that ``duration = 3`` is not
        silently three seconds).
    allow_zero : bool
        Accept a zero duration.

    Returns
    -------
    seconds : float >= 0 [seconds]

    Raises
    ------
    ParameterError
        Unknown unit, malformed text, negative, zero (when not allowed), NaN or
        infinite values.  The message names the offending text.
    """
    if isinstance(text, bool):
        raise ParameterError(f"duration {text!r} must be a duration such as '90s' or '3min'")
    if isinstance(text, (int, float)):
        if require_unit:
            raise ParameterError(f"duration {text!r} needs a unit, e.g. '{text}s' or '{text}min'")
        value = float(text)
        source = repr(text)
    elif isinstance(text, str):
        source = repr(text)
        s = text.strip()
        if s.startswith("-"):
            raise ParameterError(f"duration {source} must not be negative")
        m = _CLOCK.match(s)
        if m:
            h, mnt, sec = m.groups()
            value = float(h or 0) * 3600.0 + float(mnt) * 60.0 + float(sec)
        else:
            if not s:
                raise ParameterError("duration '' is empty; use e.g. '90s' or '3min'")
            pos = 0
            value = 0.0
            n_terms = 0
            while pos < len(s):
                m = _TERM.match(s, pos)
                if not m or m.end() == pos:
                    raise ParameterError(
                        f"duration {source} is not understood; use e.g. '90s', '3min', '250ms', '1h30min'"
                    )
                number, unit = m.groups()
                unit_l = unit.lower()
                if unit_l == "":
                    if require_unit or n_terms > 0 or m.end() != len(s):
                        raise ParameterError(
                            f"duration {source} needs a unit (ms, s, min, h), e.g. '{number}s' or '{number}min'"
                        )
                    factor = 1.0
                elif unit_l in _DURATION_UNITS:
                    factor = _DURATION_UNITS[unit_l]
                else:
                    raise ParameterError(
                        f"duration {source} has an unknown unit {unit!r}; use ms, s, min or h"
                    )
                value += float(number) * factor
                n_terms += 1
                pos = m.end()
    else:
        raise ParameterError(f"duration {text!r} must be text such as '90s' or '3min'")
    if not math.isfinite(value):
        raise ParameterError(f"duration {source} must be finite")
    if value < 0:
        raise ParameterError(f"duration {source} must not be negative")
    if value == 0 and not allow_zero:
        raise ParameterError(f"duration {source} must be greater than zero")
    return value


def format_duration(seconds: float) -> str:
    """Format seconds as ``h:mm:ss`` or ``m:ss`` (for displays and listings)."""
    if not math.isfinite(seconds):
        return "--:--"
    total = int(round(max(seconds, 0.0)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass(frozen=True)
class Target:
    """A cadence target: absolute, or relative to a measured baseline.

    Attributes
    ----------
    kind : {'absolute', 'percent', 'offset'}
        ``absolute``: ``value`` is the cadence [steps/min];
        ``percent``: baseline × (1 + value/100);
        ``offset``: baseline + value [steps/min].
    value : float
    text : str
        The text it was parsed from (for messages).
    """

    kind: str
    value: float
    text: str

    @property
    def relative(self) -> bool:
        """True when the target needs a baseline cadence."""
        return self.kind != "absolute"

    def resolve(self, baseline_spm: float | None) -> float:
        """Return the target cadence in steps per minute.

        Raises
        ------
        ParameterError
            When the target is relative and ``baseline_spm`` is None.
        """
        if self.kind == "absolute":
            return self.value
        if baseline_spm is None:
            raise ParameterError(
                f"target {self.text!r} is relative to a baseline cadence; give one (--baseline-spm)"
            )
        if self.kind == "percent":
            return baseline_spm * (1.0 + self.value / 100.0)
        return baseline_spm + self.value

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.text


_TARGET = re.compile(rf"^\s*([+-])?\s*({_NUMBER})\s*(%|spm)?\s*$", re.IGNORECASE)


def format_when(ts, fmt: str = "%Y-%m-%d %H:%M", unknown: str = "?") -> str:
    """A time [s since the epoch] in local time as ``fmt``; ``unknown`` when missing or beyond the calendar
    (a damaged database can hold any number)."""
    import datetime

    if ts is None:
        return unknown
    try:
        return datetime.datetime.fromtimestamp(ts).strftime(fmt)
    except (ValueError, OverflowError, OSError, TypeError):
        return unknown


def parse_target(text) -> Target:
    """Parse a cadence target.

    Parameters
    ----------
    text : str or int or float
        ``"170"`` or ``"170spm"`` or ``170``: absolute cadence [steps/min].
        ``"+5%"`` / ``"-3%"``: relative to the baseline cadence.
        ``"+4"`` / ``"+4spm"``: baseline plus 4 steps/min (a sign makes it
        relative).  ``"baseline"`` (or ``"+0%"``): the baseline itself.

    Returns
    -------
    Target

    Raises
    ------
    ParameterError
        Malformed text, NaN/inf.  (Range checks happen once the target is
        resolved against a baseline.)
    """
    if isinstance(text, bool):
        raise ParameterError(f"target {text!r} must be a cadence such as 170 or '+5%'")
    if isinstance(text, (int, float)):
        value = float(text)
        if not math.isfinite(value):
            raise ParameterError(f"target {text!r} must be finite")
        return Target("absolute", value, str(text))
    if not isinstance(text, str):
        raise ParameterError(f"target {text!r} must be a cadence such as 170 or '+5%'")
    if text.strip().lower() == "baseline":
        return Target("percent", 0.0, text)
    m = _TARGET.match(text)
    if not m:
        raise ParameterError(
            f"target {text!r} is not understood; use steps/min ('170'), a percentage of the"
            " baseline ('+5%', '-3%') or an offset ('+4spm')"
        )
    sign, number, unit = m.groups()
    value = float(number) * (-1.0 if sign == "-" else 1.0)
    unit = (unit or "").lower()
    if unit == "%":
        if sign is None:
            raise ParameterError(f"target {text!r}: did you mean '+{number}%' (or '-{number}%')? "
                                 "a relative target needs a sign")
        return Target("percent", value, text)
    if sign is not None:
        return Target("offset", value, text)
    return Target("absolute", value, text)
