"""Live display of a session, readable from a treadmill (about 2 m away).

On a terminal: a full-screen panel (rich) with the cadence in big block
digits, the target and trend, the share of heavy landings, the last steps,
elapsed time and xrun count, refreshed 5 times a second.  Elsewhere (a pipe,
a dumb terminal, ``--plain``): one status line every second on stderr.
``--no-display``: nothing.
"""
from __future__ import annotations

import sys
import time

_GLYPHS = {
    "0": ["███", "█ █", "█ █", "█ █", "███"],
    "1": [" █ ", "██ ", " █ ", " █ ", "███"],
    "2": ["███", "  █", "███", "█  ", "███"],
    "3": ["███", "  █", "███", "  █", "███"],
    "4": ["█ █", "█ █", "███", "  █", "  █"],
    "5": ["███", "█  ", "███", "  █", "███"],
    "6": ["███", "█  ", "███", "█ █", "███"],
    "7": ["███", "  █", "  █", "  █", "  █"],
    "8": ["███", "█ █", "███", "█ █", "███"],
    "9": ["███", "█ █", "███", "  █", "███"],
    "-": ["   ", "   ", "███", "   ", "   "],
    " ": ["   ", "   ", "   ", "   ", "   "],
}


def big_number(text: str, scale: int = 1) -> str:
    """Render digits and '-' as block glyphs ``5 * scale`` lines high (each glyph pixel ``2 * scale`` wide)."""
    scale = max(1, int(scale))
    rows = []
    for r in range(5):
        row = (" " * (2 * scale)).join("".join(ch * 2 * scale for ch in _GLYPHS.get(c, _GLYPHS[" "])[r])
                                       for c in text)
        rows.extend([row] * scale)
    return "\n".join(rows)


def digit_scale(width: int, height: int, digits: int = 3, beside: int = 0) -> int:
    """The largest glyph scale whose digits fit a terminal ``width`` x ``height`` [characters], leaving
    room for the panel's border, the cue word and, when ``beside`` > 0, that many columns next to them."""
    scale = 1
    while True:
        s = scale + 1
        w = digits * 6 * s + (digits - 1) * 2 * s + 4 + beside
        h = 5 * s + 6
        if w > width or h > height:
            return scale
        scale = s


#: Columns the information table needs beside the digits.
INFO_COLUMNS = 46


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


_STRIKE_WORD = {"heel": "heel", "forefoot": "fore", "uncertain": "?"}


def step_label(step: dict) -> str:
    """One step for the display: side, heel/forefoot (with a profile), loudness, ``HEAVY``."""
    parts = [{"L": "left", "R": "right"}.get(step.get("side"), "?")]
    if step.get("strike"):
        parts.append(_STRIKE_WORD.get(step["strike"], step["strike"]))
    impact = step.get("impact_db")
    if impact is not None:
        parts.append(f"{impact:+.0f} dB")
    if step.get("heavy"):
        parts.append("HEAVY")
    return " ".join(parts)


def status_line(st: dict) -> str:
    """One-line summary of a session status (plain display, logs)."""
    cad = "--" if st.get("cadence_spm") is None else f"{st['cadence_spm']:.0f}"
    parts = [f"{_fmt_time(st.get('elapsed_s', 0))}", f"cadence {cad} spm"]
    if st.get("target_spm") is not None:
        parts.append(f"target {st['target_spm']:.0f}")
    parts.append(st.get("phase", ""))
    if st.get("heavy_share") is not None:
        parts.append(f"heavy {100 * st['heavy_share']:.0f}%")
    if st.get("heel_share") is not None:
        parts.append(f"heel-first {100 * st['heel_share']:.0f}%")
    parts.append(f"steps {st.get('steps', 0)}")
    if st.get("xruns"):
        parts.append(f"xruns {st['xruns']}")
    return "  ".join(p for p in parts if p)


class LiveDisplay:
    """Session display; :meth:`update` is called from the main thread (≥ 4 Hz).

    Parameters
    ----------
    mode : {"auto", "rich", "plain", "none"}
    """

    def __init__(self, mode: str = "auto"):
        if mode == "auto":
            mode = "rich" if sys.stderr.isatty() and sys.stdout.isatty() else "plain"
        self.mode = mode
        self._live = None
        self._last_plain = 0.0

    def __enter__(self):
        if self.mode == "rich":
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(stderr=True), refresh_per_second=5, screen=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None
        return False

    def update(self, st: dict) -> None:
        if self.mode == "none":
            return
        if self.mode == "plain":
            now = time.monotonic()
            if now - self._last_plain >= 1.0:
                self._last_plain = now
                print(status_line(st), file=sys.stderr, flush=True)
            return
        if self._live is not None:
            self._live.update(self._render(st))

    def _render(self, st: dict, width: int | None = None, height: int | None = None):
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        from stepsound.coach.words import CUE_MARKS, CUE_WORDS, cue_code

        if width is None or height is None:
            size = self._live.console.size if self._live is not None else None
            width, height = (size.width, size.height) if size is not None else (80, 24)
        cad = st.get("cadence_spm")
        target = st.get("target_spm")
        code = cue_code(st)
        colour = {"on_target": "green", "speed_up": "yellow", "slow_down": "yellow",
                  "land_softer": "red", "paused": "blue"}.get(code, "white")
        beside = width >= 3 * 6 * 2 + 8 + INFO_COLUMNS + 8     # the table beside the digits, or below
        scale = digit_scale(width, height - (0 if beside else 16), beside=INFO_COLUMNS if beside else 0)
        big = Text(big_number("---" if cad is None else f"{cad:3.0f}", scale), style=f"bold {colour}")
        mark = CUE_MARKS.get(code, "")
        word = Text(f"{mark} {CUE_WORDS[code]}".strip(), style=f"bold reverse {colour}")
        info = Table.grid(padding=(0, 2))
        info.add_column(justify="right", style="dim")
        info.add_column()
        info.add_row("steps/min", "unknown" if cad is None else f"{cad:.1f}")
        if target is not None and cad is not None:
            info.add_row("target", f"{target:.0f} ({cad - target:+.0f} spm, {st.get('phase', '')})")
        else:
            info.add_row("target", "—" if target is None else f"{target:.0f} ({st.get('phase', '')})")
        trend = st.get("trend_spm")
        if trend is not None:
            arrow = "↑" if trend > 0.5 else ("↓" if trend < -0.5 else "→")
            info.add_row("trend", f"{arrow} {trend:+.1f} spm / 30 s")
        hs = st.get("heavy_share")
        info.add_row("heavy landings", "—" if hs is None else f"{100 * hs:.0f}% of last 50")
        if st.get("heel_share") is not None:
            info.add_row("heel / forefoot", f"{100 * st['heel_share']:.0f}% heel-first, "
                                            f"{100 - 100 * st['heel_share']:.0f}% forefoot (last 50)")
        info.add_row("metronome", "on" if st.get("metronome_on") else "off")
        info.add_row("last cue", (st.get("last_cue") or "—").replace("_", " "))
        info.add_row("elapsed", _fmt_time(st.get("elapsed_s", 0)))
        info.add_row("steps", str(st.get("steps", 0)))
        info.add_row("audio glitches (xruns)", str(st.get("xruns", 0)))
        last = st.get("last_steps") or []
        if last:
            info.add_row("last steps", "\n".join(step_label(x) for x in last[-4:]))
        grid = Table.grid(padding=(0, 4))
        if beside:
            grid.add_row(Group(big, Text(""), word), info)
            body = grid
        else:
            body = Group(big, Text(""), word, Text(""), info)
        return Panel(body, title="stepsound", subtitle="Ctrl-C to stop", border_style=colour)
