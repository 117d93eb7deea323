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


def big_number(text: str) -> str:
    """Render digits and '-' as 5-line block glyphs (each glyph doubled in width)."""
    rows = []
    for r in range(5):
        rows.append("  ".join("".join(ch * 2 for ch in _GLYPHS.get(c, _GLYPHS[" "])[r]) for c in text))
    return "\n".join(rows)


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def status_line(st: dict) -> str:
    """One-line summary of a session status (plain display, logs)."""
    cad = "--" if st.get("cadence_spm") is None else f"{st['cadence_spm']:.0f}"
    parts = [f"{_fmt_time(st.get('elapsed_s', 0))}", f"cadence {cad} spm"]
    if st.get("target_spm") is not None:
        parts.append(f"target {st['target_spm']:.0f}")
    parts.append(st.get("phase", ""))
    if st.get("heavy_share") is not None:
        parts.append(f"heavy {100 * st['heavy_share']:.0f}%")
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

    def _render(self, st: dict):
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        cad = st.get("cadence_spm")
        target = st.get("target_spm")
        colour = "white"
        if cad is not None and target is not None:
            off = abs(cad - target) / target * 100
            colour = "green" if off <= 3 else ("yellow" if off <= 6 else "red")
        big = Text(big_number("---" if cad is None else f"{cad:3.0f}"), style=f"bold {colour}")
        info = Table.grid(padding=(0, 2))
        info.add_column(justify="right", style="dim")
        info.add_column()
        info.add_row("steps/min", "unknown" if cad is None else f"{cad:.1f}")
        info.add_row("target", "—" if target is None else f"{target:.0f} ({st.get('phase', '')})")
        trend = st.get("trend_spm")
        if trend is not None:
            arrow = "↑" if trend > 0.5 else ("↓" if trend < -0.5 else "→")
            info.add_row("trend", f"{arrow} {trend:+.1f} spm / 30 s")
        hs = st.get("heavy_share")
        info.add_row("heavy landings", "—" if hs is None else f"{100 * hs:.0f}% of last 50")
        info.add_row("metronome", "on" if st.get("metronome_on") else "off")
        info.add_row("last cue", st.get("last_cue") or "—")
        info.add_row("elapsed", _fmt_time(st.get("elapsed_s", 0)))
        info.add_row("steps", str(st.get("steps", 0)))
        info.add_row("xruns", str(st.get("xruns", 0)))
        last = st.get("last_steps") or []
        if last:
            info.add_row("last steps", "  ".join(
                f"{s.get('side') or '?'}{'!' if s.get('heavy') else ''}{s.get('impact_db', 0):+.0f}dB" for s in last))
        grid = Table.grid(padding=(0, 4))
        grid.add_row(big, info)
        return Panel(grid, title="stepsound", subtitle="Ctrl-C to stop", border_style=colour)
