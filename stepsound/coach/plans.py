"""Cadence plans: a TOML file (or a built-in preset) saying which cadence to cue when.

A plan is a list of segments played one after the other -- ``hold``, ``ramp``,
``steps``, ``intervals`` -- plus optional *faded feedback*: the metronome is
audible for a fraction of each cycle that falls over the run, the way
gait-retraining studies fade feedback so the new cadence is retained.
Targets are absolute (``170``) or relative to the runner's measured baseline
(``"+5%"``, ``"+4spm"``).  See the README ("Plan files") for the format.

Two stages:

* :func:`parse_plan` / :func:`load_plan` check syntax, fields, units and
  types and keep the line of every field;
* :meth:`Plan.resolve` applies a baseline and checks every cadence is within
  60–240 steps/min, giving a :class:`TempoMap`, whose :meth:`TempoMap.target_at`
  is the pure function time → (target cadence, audible).

Every error is a :class:`PlanError` (a :class:`~stepsound.errors.ParameterError`)
whose message starts with ``file:line:`` and names the field.
"""
from __future__ import annotations

import bisect
import math
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from stepsound.errors import ParameterError
from stepsound.units import Target, parse_duration_s, parse_target

__all__ = [
    "MIN_CADENCE_SPM",
    "MAX_CADENCE_SPM",
    "PlanError",
    "Plan",
    "Segment",
    "Span",
    "Feedback",
    "TempoMap",
    "parse_plan",
    "load_plan",
    "list_presets",
    "constant_map",
    "check_cadence",
]

MIN_CADENCE_SPM = 60.0
MAX_CADENCE_SPM = 240.0
#: Longest plan accepted (catches "300h" typos).
MAX_PLAN_DURATION_S = 48 * 3600.0


class PlanError(ParameterError):
    """An invalid plan.  ``line`` and ``field`` locate the problem (either may be None)."""

    def __init__(self, message: str, *, source: str = "<plan>", line: int | None = None, field: str | None = None):
        shown = source if str(source).isprintable() else repr(source)[1:-1]   # one line, whatever the name
        where = f"{shown}:{line}: " if line else f"{shown}: "
        super().__init__(where + message)
        self.source = source
        self.line = line
        self.field = field


def check_cadence(spm, what: str = "cadence_spm") -> float:
    """Return ``spm`` as float if it is within 60–240 steps/min, else raise ParameterError."""
    try:
        value = float(spm)
    except (TypeError, ValueError):
        raise ParameterError(f"{what}={spm!r} must be a number of steps per minute") from None
    if not (math.isfinite(value) and MIN_CADENCE_SPM <= value <= MAX_CADENCE_SPM):
        raise ParameterError(
            f"{what}={spm!r} must be within {MIN_CADENCE_SPM:g}-{MAX_CADENCE_SPM:g} steps/min"
        )
    return value


# --------------------------------------------------------------------------------------
# Resolved form


@dataclass(frozen=True)
class Span:
    """A stretch of the plan with a linearly changing target.

    Attributes
    ----------
    start_s, end_s : float [seconds from the plan start]
    start_spm, end_spm : float [steps/min]
        Target at ``start_s`` and (approached) at ``end_s``; equal for a hold.
    audible : bool
        Whether the metronome sounds during the span (before faded feedback).
    label : str
        Human description, e.g. ``"hold +5%"``.
    """

    start_s: float
    end_s: float
    start_spm: float
    end_spm: float
    audible: bool = True
    label: str = ""

    def spm_at(self, t_s: float) -> float:
        if self.end_s <= self.start_s or self.start_spm == self.end_spm:
            return self.start_spm
        x = min(max((t_s - self.start_s) / (self.end_s - self.start_s), 0.0), 1.0)
        return self.start_spm + (self.end_spm - self.start_spm) * x


@dataclass(frozen=True)
class Feedback:
    """Faded feedback: audible for a falling fraction of each cycle.

    The audible fraction goes linearly from ``audible_from`` at ``start_s`` to
    ``audible_to`` at ``end_s`` (then stays).  Within each cycle of
    ``cycle_s`` (counted from ``start_s``) the metronome sounds first, then is
    silent.  Before ``start_s`` it always sounds.
    """

    audible_from: float
    audible_to: float
    cycle_s: float
    start_s: float
    end_s: float

    def fraction_at(self, t_s: float) -> float:
        if t_s <= self.start_s or self.end_s <= self.start_s:
            return self.audible_from if t_s <= self.start_s else self.audible_to
        x = min((t_s - self.start_s) / (self.end_s - self.start_s), 1.0)
        return self.audible_from + (self.audible_to - self.audible_from) * x

    def audible_at(self, t_s: float) -> bool:
        if t_s < self.start_s:
            return True
        frac = self.fraction_at(t_s)
        return math.fmod(t_s - self.start_s, self.cycle_s) < frac * self.cycle_s


@dataclass(frozen=True)
class TempoMap:
    """A resolved plan: the pure function time → (target cadence, audible).

    Attributes
    ----------
    spans : tuple of Span
        Contiguous, starting at 0, ending at ``duration_s``.
    feedback : Feedback or None
    name : str
    """

    spans: tuple
    feedback: Feedback | None = None
    name: str = ""

    @property
    def duration_s(self) -> float:
        """Total length [seconds] (``inf`` for an open-ended constant tempo)."""
        return self.spans[-1].end_s if self.spans else 0.0

    def span_index(self, t_s: float) -> int:
        """Index of the span containing ``t_s`` (clamped to the first/last span)."""
        starts = [s.start_s for s in self.spans]
        return max(0, min(bisect.bisect_right(starts, t_s) - 1, len(self.spans) - 1))

    def target_at(self, t_s: float) -> tuple[float, bool]:
        """Target cadence and audibility at a time.

        Parameters
        ----------
        t_s : float [seconds from the plan start]

        Returns
        -------
        target_spm : float [steps/min]
            Clamped to the first/last target outside the plan.
        audible : bool
            False outside ``[0, duration_s)``.
        """
        span = self.spans[self.span_index(t_s)]
        spm = span.spm_at(t_s)
        audible = span.audible and 0.0 <= t_s < self.duration_s
        if audible and self.feedback is not None:
            audible = self.feedback.audible_at(t_s)
        return spm, audible


def constant_map(cadence_spm: float, duration_s: float = math.inf) -> TempoMap:
    """A TempoMap holding one cadence (``stepsound metronome --spm 170``)."""
    spm = check_cadence(cadence_spm, "cadence_spm")
    if not (duration_s > 0):
        raise ParameterError(f"duration_s={duration_s!r} must be > 0")
    return TempoMap((Span(0.0, float(duration_s), spm, spm, True, f"hold {spm:g} spm"),), None, f"{spm:g} spm")


# --------------------------------------------------------------------------------------
# Parsed (unresolved) form


@dataclass
class Segment:
    """One ``[[segment]]`` table: its type, parsed values and the line of each field."""

    type: str
    index: int  # 1-based
    values: dict
    lines: dict
    line: int | None

    def loc(self, name: str) -> int | None:
        return self.lines.get(name, self.line)


@dataclass
class Plan:
    """A parsed plan, not yet tied to a baseline cadence.

    Attributes
    ----------
    name, description : str
    segments : list of Segment
    feedback : dict or None
        Parsed ``[feedback]`` table (resolved into :class:`Feedback`).
    sound : str or None
        Metronome sound asked for by the plan (a :data:`stepsound.cue.sounds.CLICK_SOUNDS` name).
    accent_every : int >= 0
        Accent every Nth click (0: no accent).
    level_db : float or None [dBFS]
    baseline_spm : float or None
        Baseline written in the plan (the command line overrides it).
    source : str
        File name or ``preset:NAME`` (used in messages).
    """

    name: str
    description: str
    segments: list
    feedback: dict | None = None
    sound: str | None = None
    accent_every: int = 0
    level_db: float | None = None
    baseline_spm: float | None = None
    source: str = "<plan>"
    _lines: dict = field(default_factory=dict, repr=False)

    @property
    def needs_baseline(self) -> bool:
        """True when some target is relative to the baseline."""
        for seg in self.segments:
            for v in seg.values.values():
                if isinstance(v, Target) and v.relative and v is not seg.values.get("step"):
                    return True
        return False

    def duration_s(self, baseline_spm: float | None = None) -> float:
        """Total duration [seconds].

        Only a ``steps`` segment mixing absolute and relative targets depends
        on the baseline (through its number of levels); without a baseline a
        typical one (160 steps/min) is assumed for the count.
        """
        base = baseline_spm if baseline_spm is not None else (self.baseline_spm or 160.0)
        return self.resolve(base).duration_s

    def _err(self, message, line=None, field=None) -> PlanError:
        return PlanError(message, source=self.source, line=line, field=field)

    def resolve(self, baseline_spm: float | None = None) -> TempoMap:
        """Apply a baseline cadence and check every target.

        Parameters
        ----------
        baseline_spm : float or None [steps/min]
            The runner's measured cadence; needed when a target is relative.
            Defaults to the plan's own ``baseline_spm``.

        Returns
        -------
        TempoMap

        Raises
        ------
        PlanError
            A relative target without a baseline, or a cadence outside
            60–240 steps/min (the message names the line and field).
        """
        if baseline_spm is None:
            baseline_spm = self.baseline_spm
        if baseline_spm is not None:
            baseline_spm = check_cadence(baseline_spm, "baseline_spm")
        spans: list[Span] = []
        t = 0.0

        def spm(seg: Segment, key: str) -> float:
            target: Target = seg.values[key]
            if target.relative and baseline_spm is None:
                raise self._err(
                    f"segment {seg.index} field '{key}': target {target.text!r} is relative to a baseline"
                    " cadence; give one with --baseline-spm (or baseline_spm in the plan)",
                    seg.loc(key),
                    key,
                )
            value = target.resolve(baseline_spm)
            if not (MIN_CADENCE_SPM <= value <= MAX_CADENCE_SPM):
                extra = f" with baseline {baseline_spm:g} spm" if target.relative else ""
                raise self._err(
                    f"segment {seg.index} field '{key}': {target.text!r} gives {value:.1f} spm{extra},"
                    f" outside {MIN_CADENCE_SPM:g}-{MAX_CADENCE_SPM:g} steps/min",
                    seg.loc(key),
                    key,
                )
            return value

        for seg in self.segments:
            v = seg.values
            audible = v.get("audible", True)
            if seg.type == "hold":
                a = spm(seg, "target")
                d = v["duration"]
                spans.append(Span(t, t + d, a, a, audible, f"hold {v['target'].text}"))
                t += d
            elif seg.type == "ramp":
                a, b = spm(seg, "from"), spm(seg, "to")
                d = v["duration"]
                spans.append(Span(t, t + d, a, b, audible, f"ramp {v['from'].text} -> {v['to'].text}"))
                t += d
            elif seg.type == "steps":
                a, b = spm(seg, "from"), spm(seg, "to")
                step: Target = v["step"]
                step_spm = a * step.value / 100.0 if step.kind == "percent" else step.value
                if step_spm == 0 or (b - a) * step_spm < 0:
                    raise self._err(
                        f"segment {seg.index} field 'step': {step.text!r} does not go from"
                        f" {a:.1f} to {b:.1f} spm",
                        seg.loc("step"),
                        "step",
                    )
                n = max(0, math.ceil(abs(b - a) / abs(step_spm) - 1e-9))
                levels = [a + i * step_spm for i in range(n)] + [b]
                every = v["every"]
                for i, level in enumerate(levels):
                    spans.append(Span(t, t + every, level, level, audible, f"step {i + 1}/{len(levels)}"))
                    t += every
            elif seg.type == "intervals":
                on = spm(seg, "on")
                off = spm(seg, "off") if "off" in v else on
                off_audible = v.get("off_audible", "off" in v)
                for i in range(v["repeat"]):
                    spans.append(Span(t, t + v["on_duration"], on, on, True, f"interval {i + 1} on"))
                    t += v["on_duration"]
                    if v["off_duration"] > 0:
                        spans.append(Span(t, t + v["off_duration"], off, off, off_audible, f"interval {i + 1} off"))
                        t += v["off_duration"]
        # Drop zero-length spans (a 0 s hold is pointless but harmless).
        spans = [s for s in spans if s.end_s > s.start_s]
        if not spans:
            raise self._err("the plan has no time in it (every segment lasts 0 s)")
        if t > MAX_PLAN_DURATION_S:
            raise self._err(f"the plan lasts {t / 3600:.1f} h, longer than 48 h")
        fb = None
        if self.feedback is not None:
            f = self.feedback
            end = f.get("end", t)
            start = f.get("start", 0.0)
            if end > t + 1e-9:
                raise self._err(
                    f"feedback field 'end': {end:g} s is after the end of the plan ({t:g} s)",
                    self._lines.get(("feedback", "end")),
                    "end",
                )
            if start >= end:
                raise self._err(
                    f"feedback field 'start': {start:g} s must be before 'end' ({end:g} s)",
                    self._lines.get(("feedback", "start")),
                    "start",
                )
            fb = Feedback(f.get("audible_from", 1.0), f["audible_to"], f.get("cycle", 60.0), start, end)
        return TempoMap(tuple(spans), fb, self.name)

    def target_at(self, t_s: float, baseline_spm: float | None = None) -> tuple[float, bool]:
        """Shortcut for ``self.resolve(baseline_spm).target_at(t_s)``."""
        return self.resolve(baseline_spm).target_at(t_s)


# --------------------------------------------------------------------------------------
# Parsing

_HEADER_AOT = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]")
_HEADER_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
_KEY = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=""")


def _locate(text: str) -> dict:
    """Map TOML keys to 1-based line numbers by a light scan of the source.

    Keys: ``('', key)`` top level, ``(table, key)``, ``(table, i)`` for the
    header of the i-th (1-based) array-of-tables entry, ``(table, i, key)``.
    """
    where: dict = {}
    table: tuple = ("",)
    counts: dict = {}
    in_multiline = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        m = _HEADER_AOT.match(line)
        if m:
            name = m.group(1)
            counts[name] = counts.get(name, 0) + 1
            table = (name, counts[name])
            where.setdefault(table, lineno)
            continue
        m = _HEADER_TABLE.match(line)
        if m:
            table = (m.group(1),)
            where.setdefault(table, lineno)
            continue
        m = _KEY.match(line)
        if m:
            key = m.group(1) or m.group(2) or m.group(3)
            where.setdefault(table + (key,), lineno) if table != ("",) else where.setdefault(("", key), lineno)
            for q in ('"""', "'''"):
                if line.count(q) % 2 == 1:
                    in_multiline = q
    return where


_SEGMENT_FIELDS = {
    "hold": ({"target", "duration"}, {"audible", "label"}),
    "ramp": ({"from", "to", "duration"}, {"audible", "label"}),
    "steps": ({"from", "to", "step", "every"}, {"audible", "label"}),
    "intervals": ({"on", "on_duration", "off_duration", "repeat"}, {"off", "off_audible", "label"}),
}
_TARGET_FIELDS = {"target", "from", "to", "step", "on", "off"}
_DURATION_FIELDS = {"duration", "every", "on_duration", "off_duration"}
_TOP_FIELDS = {"name", "description", "sound", "accent_every", "level_db", "baseline_spm", "feedback", "segment"}
_FEEDBACK_FIELDS = {"audible_from", "audible_to", "cycle", "start", "end"}


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    """Parse and check a plan written in TOML.

    Parameters
    ----------
    text : str
        TOML source.
    source : str
        Name used in error messages (file name or ``preset:NAME``).

    Returns
    -------
    Plan

    Raises
    ------
    PlanError
        TOML syntax errors, unknown or missing fields, wrong types, bad units,
        negative or zero durations, absolute cadences outside 60–240 steps/min.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"line (\d+)", msg)
        raise PlanError(f"not valid TOML: {msg}", source=source, line=int(m.group(1)) if m else None) from None
    lines = _locate(text)

    def err(message, line=None, field=None):
        return PlanError(message, source=source, line=line, field=field)

    for key in data:
        if key not in _TOP_FIELDS:
            raise err(
                f"unknown field '{key}' (expected one of: {', '.join(sorted(_TOP_FIELDS))})",
                lines.get(("", key)) or lines.get((key,)) or lines.get((key, 1)),
                key,
            )

    def top_str(key, default):
        v = data.get(key, default)
        if v is not None and not isinstance(v, str):
            raise err(f"field '{key}' must be text, not {v!r}", lines.get(("", key)), key)
        return v

    name = top_str("name", Path(source).stem if not source.startswith("<") else "plan")
    description = top_str("description", "")
    sound = top_str("sound", None)
    if sound is not None:
        from stepsound.cue.sounds import CLICK_SOUNDS

        if sound not in CLICK_SOUNDS:
            raise err(
                f"field 'sound': {sound!r} is not a metronome sound (choose {', '.join(CLICK_SOUNDS)})",
                lines.get(("", "sound")),
                "sound",
            )
    accent_every = data.get("accent_every", 0)
    if isinstance(accent_every, bool) or not isinstance(accent_every, int) or not (0 <= accent_every <= 64):
        raise err(
            f"field 'accent_every': {accent_every!r} must be a whole number 0-64 (0: no accent)",
            lines.get(("", "accent_every")),
            "accent_every",
        )
    level_db = data.get("level_db")
    if level_db is not None:
        if isinstance(level_db, bool) or not isinstance(level_db, (int, float)) or not (-60 <= level_db <= 0):
            raise err(
                f"field 'level_db': {level_db!r} must be a number of dBFS within -60..0",
                lines.get(("", "level_db")),
                "level_db",
            )
        level_db = float(level_db)
    baseline = data.get("baseline_spm")
    if baseline is not None:
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or not (
            MIN_CADENCE_SPM <= baseline <= MAX_CADENCE_SPM
        ):
            raise err(
                f"field 'baseline_spm': {baseline!r} must be a cadence within"
                f" {MIN_CADENCE_SPM:g}-{MAX_CADENCE_SPM:g} steps/min",
                lines.get(("", "baseline_spm")),
                "baseline_spm",
            )
        baseline = float(baseline)

    raw_segments = data.get("segment")
    if raw_segments is None:
        raise err("no [[segment]] tables: a plan needs at least one segment", None, "segment")
    if not isinstance(raw_segments, list) or not all(isinstance(s, dict) for s in raw_segments):
        raise err("'segment' must be written as [[segment]] tables", lines.get(("", "segment")), "segment")
    if not raw_segments:
        raise err("no [[segment]] tables: a plan needs at least one segment", None, "segment")

    segments = []
    for i, raw in enumerate(raw_segments, start=1):
        seg_line = lines.get(("segment", i))
        seg_lines = {k[2]: ln for k, ln in lines.items() if len(k) == 3 and k[0] == "segment" and k[1] == i}

        def loc(key):
            return seg_lines.get(key, seg_line)

        typ = raw.get("type")
        if typ is None:
            raise err(
                f"segment {i}: missing field 'type' (one of {', '.join(_SEGMENT_FIELDS)})", seg_line, "type"
            )
        if not isinstance(typ, str) or typ not in _SEGMENT_FIELDS:
            raise err(
                f"segment {i} field 'type': {typ!r} is not one of {', '.join(_SEGMENT_FIELDS)}", loc("type"), "type"
            )
        required, optional = _SEGMENT_FIELDS[typ]
        for key in raw:
            if key != "type" and key not in required and key not in optional:
                raise err(
                    f"segment {i} ({typ}): unknown field '{key}' (expected"
                    f" {', '.join(sorted(required | optional))})",
                    loc(key),
                    key,
                )
        for key in sorted(required):
            if key not in raw:
                raise err(f"segment {i} ({typ}): missing field '{key}'", seg_line, key)
        values: dict = {}
        for key, v in raw.items():
            if key == "type":
                continue
            try:
                if key in _TARGET_FIELDS:
                    target = parse_target(v)
                    if key == "step":
                        if not target.relative:
                            raise ParameterError(
                                f"step {target.text!r} must be relative: '+2.5%' (of the starting cadence)"
                                " or '+4spm'"
                            )
                    elif not target.relative and not (MIN_CADENCE_SPM <= target.value <= MAX_CADENCE_SPM):
                        raise ParameterError(
                            f"{target.text!r} is outside {MIN_CADENCE_SPM:g}-{MAX_CADENCE_SPM:g} steps/min"
                        )
                    values[key] = target
                elif key in _DURATION_FIELDS:
                    allow_zero = key == "off_duration"
                    d = parse_duration_s(v, require_unit=True, allow_zero=allow_zero)
                    if d > MAX_PLAN_DURATION_S:
                        raise ParameterError(f"duration {v!r} is longer than 48 h")
                    values[key] = d
                elif key in ("audible", "off_audible"):
                    if not isinstance(v, bool):
                        raise ParameterError(f"{v!r} must be true or false")
                    values[key] = v
                elif key == "repeat":
                    if isinstance(v, bool) or not isinstance(v, int) or not (1 <= v <= 1000):
                        raise ParameterError(f"{v!r} must be a whole number 1-1000")
                    values[key] = v
                elif key == "label":
                    if not isinstance(v, str):
                        raise ParameterError(f"{v!r} must be text")
                    values[key] = v
            except ParameterError as exc:
                raise err(f"segment {i} field '{key}': {exc}", loc(key), key) from None
        segments.append(Segment(typ, i, values, seg_lines, seg_line))

    feedback = None
    if "feedback" in data:
        fb = data["feedback"]
        fb_line = lines.get(("feedback",))
        if not isinstance(fb, dict):
            raise err("'feedback' must be a [feedback] table", lines.get(("", "feedback")), "feedback")

        def floc(key):
            return lines.get(("feedback", key), fb_line)

        feedback = {}
        for key, v in fb.items():
            if key not in _FEEDBACK_FIELDS:
                raise err(
                    f"feedback: unknown field '{key}' (expected {', '.join(sorted(_FEEDBACK_FIELDS))})", floc(key), key
                )
            try:
                if key in ("audible_from", "audible_to"):
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= v <= 1.0):
                        raise ParameterError(f"{v!r} must be a fraction between 0 and 1")
                    feedback[key] = float(v)
                else:
                    feedback[key] = parse_duration_s(v, require_unit=True, allow_zero=key != "cycle")
            except ParameterError as exc:
                raise err(f"feedback field '{key}': {exc}", floc(key), key) from None
        if "audible_to" not in feedback:
            raise err("feedback: missing field 'audible_to' (fraction of time audible at the end)", fb_line, "audible_to")

    return Plan(name, description, segments, feedback, sound, accent_every, level_db, baseline, source, lines)


def _preset_dir():
    return resources.files("stepsound.coach") / "presets"


def list_presets() -> list[tuple[str, str]]:
    """Built-in presets as ``(name, one-line description)``, sorted by name."""
    out = []
    for entry in sorted(_preset_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            name = entry.name[:-5]
            plan = parse_plan(entry.read_text(encoding="utf-8"), f"preset:{name}")
            out.append((name, plan.description))
    return out


def load_plan(spec: str) -> Plan:
    """Load a plan from a TOML file path or a built-in preset name.

    Parameters
    ----------
    spec : str
        A path to a ``.toml`` file, or a preset name (``plus5``...).

    Raises
    ------
    PlanError
        Unknown preset, unreadable file or invalid plan.
    """
    path = Path(spec)
    if path.suffix.lower() == ".toml" or path.exists() or "/" in spec or "\\" in spec:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PlanError("plan file not found", source=str(spec)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(f"cannot read plan file: {exc}", source=str(spec)) from None
        return parse_plan(text, str(spec))
    preset = _preset_dir() / f"{spec}.toml"
    if re.fullmatch(r"[A-Za-z0-9_-]+", spec) and preset.is_file():
        return parse_plan(preset.read_text(encoding="utf-8"), f"preset:{spec}")
    names = ", ".join(n for n, _ in list_presets())
    raise PlanError(f"no plan file or preset named {spec!r} (presets: {names})", source=str(spec))
