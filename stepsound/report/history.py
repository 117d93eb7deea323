"""Past sessions from the database: history with trends, and one session's report."""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os

import numpy as np

from stepsound.atomic import output_file
from stepsound.errors import ParameterError, StepsoundError
from stepsound.report.plot import save_figure
from stepsound.store import SessionStore, default_db_path


def format_when(ts) -> str:
    """A session's start time [s since the epoch] as local "YYYY-MM-DD HH:MM" ("?" when unknown or impossible)."""
    if ts is None:
        return "?"
    try:
        return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError, TypeError):
        return "?"


def _trend(values: list) -> float | None:
    """Least-squares slope per session of the non-missing values (None if < 3)."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(pts) < 3:
        return None
    x = np.array([p[0] for p in pts], float)
    y = np.array([p[1] for p in pts], float)
    return float(np.polyfit(x, y, 1)[0])


def round_floats(obj, digits: int = 3):
    """``obj`` with every float rounded to ``digits`` decimals (lists and dicts followed)."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    return obj


# -- history -----------------------------------------------------------------------------

def history_rows(db: str | None = None, limit: int = 30) -> list[dict]:
    """The most recent sessions of a database, oldest first (none when it does not exist yet).

    Parameters
    ----------
    db : str or None
        Session database (None: the default one). A missing database is not created.
    limit : int
        At most this many sessions.
    """
    if limit < 1:
        raise ParameterError(f"--limit={limit} must be >= 1")
    if not os.path.exists(db or default_db_path()):
        return []        # no database yet: nothing to list, and nothing created
    store = SessionStore(db)
    try:
        return store.sessions(limit)
    finally:
        store.close()


def history_trends(rows: list[dict]) -> dict:
    """Least-squares trends over sessions: ``cadence_spm_per_session`` and ``heavy_pct_per_session``
    (None with fewer than 3 values)."""
    return {"cadence_spm_per_session": _trend([r["median_cadence_spm"] for r in rows]),
            "heavy_pct_per_session": _trend([None if r["heavy_share"] is None else 100 * r["heavy_share"]
                                             for r in rows])}


# -- report ------------------------------------------------------------------------------

def _figure(doc: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [s for s in doc["steps"] if not s.get("extra")]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    ts = [s["time_s"] for s in steps if s.get("cadence_spm") is not None]
    ax1.plot(ts, [s["cadence_spm"] for s in steps if s.get("cadence_spm") is not None], ".", color="0.6", ms=3,
             label="per step")
    ax1.plot([c["time_s"] for c in doc["cadence"]],
             [np.nan if c["spm"] is None else c["spm"] for c in doc["cadence"]], "-", color="tab:blue", lw=1.8,
             label="displayed (smoothed)")
    tgt = [(c["time_s"], c["target_spm"]) for c in doc["cues"] if c.get("target_spm") is not None]
    if tgt:
        end = doc.get("duration_s") or tgt[-1][0]
        tx = [t for t, _ in tgt] + [end]
        ty = [v for _, v in tgt] + [tgt[-1][1]]
        ax1.step(tx, ty, where="post", color="tab:orange", lw=1.2, ls="--", label="target")
    on_since = None
    for c in doc["cues"]:
        if c["kind"] == "metronome_on":
            on_since = c["time_s"]
        elif c["kind"] == "metronome_off" and on_since is not None:
            ax1.axvspan(on_since, c["time_s"], color="tab:orange", alpha=0.08, lw=0)
            on_since = None
        if c["kind"] in ("speed_up", "slow_down", "on_target", "land_softer", "baseline"):
            colour = {"land_softer": "tab:red", "baseline": "0.5"}.get(c["kind"], "tab:purple")
            ax1.axvline(c["time_s"], color=colour, lw=0.8, alpha=0.7)
            ax1.annotate(c["kind"].replace("_", " "), (c["time_s"], 1.0), xycoords=("data", "axes fraction"),
                         xytext=(2, -10), textcoords="offset points", fontsize=8, color=colour, rotation=90,
                         va="top")
    if on_since is not None:
        ax1.axvspan(on_since, doc.get("duration_s") or on_since, color="tab:orange", alpha=0.08, lw=0,
                    label="metronome on")
    ax1.set_ylabel("cadence [steps/min]")
    ax1.legend(loc="lower right", fontsize=8)
    ax1.grid(alpha=0.3)
    ax1.set_title(f"session {doc['session']['id']} — {format_when(doc['session']['started_at'])} — "
                  f"{os.path.basename(str(doc['file']))}")
    normal = [(s["time_s"], s["impact_db"]) for s in steps if not s.get("heavy") and s.get("impact_db") is not None]
    heavy = [(s["time_s"], s["impact_db"]) for s in steps if s.get("heavy") and s.get("impact_db") is not None]
    if normal:
        ax2.plot(*zip(*normal), "o", ms=3, color="tab:green", label="step")
    if heavy:
        ax2.plot(*zip(*heavy), "v", ms=6, color="tab:red", label="heavy")
    ax2.axhline(0, color="0.4", lw=0.8)
    ax2.set_ylabel("impact [dB re own baseline]")
    ax2.set_xlabel("time [s]")
    ax2.grid(alpha=0.3)
    if normal or heavy:
        ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig, plt


def load_session(session, db: str | None = None) -> dict:
    """One stored session's document (summary, steps, cadence, cues).

    Parameters
    ----------
    session : int or str
        Session id, or ``"last"``.
    db : str or None
        Session database (None: the default one; it must exist).
    """
    store = SessionStore(db, create=False)
    try:
        if session == "last":
            rows = store.sessions(1)
            if not rows:
                raise StepsoundError(f"{store.path}: no sessions yet")
            sid = rows[-1]["id"]
        else:
            try:
                sid = int(session)
            except ValueError:
                raise ParameterError(f"SESSION={session!r} must be a session id or 'last'") from None
        return store.load(sid)
    finally:
        store.close()


REPORT_FORMATS = (".png", ".html", ".htm", ".pdf", ".svg")


def write_report(doc: dict, path: str) -> None:
    """Write one session's report (PNG, SVG, PDF or a self-contained HTML page), atomically."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in REPORT_FORMATS:
        raise ParameterError(f"{path}: the report must be .png, .svg, .pdf or .html")
    fig, plt = _figure(doc)
    if ext in (".html", ".htm"):
        try:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110)
        finally:
            plt.close(fig)
        _write_html(path, doc, base64.b64encode(buf.getvalue()).decode())
    else:
        save_figure(fig, path)


def _write_html(path: str, doc: dict, png_b64: str) -> None:
    s = doc["summary"]
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v))}</td></tr>"
                   for k, v in s.items())
    cues = "".join(f"<tr><td>{c['time_s']:.1f}</td><td>{html.escape(c['kind'])}</td>"
                   f"<td>{'' if c['target_spm'] is None else round(c['target_spm'], 1)}</td></tr>"
                   for c in doc["cues"])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>stepsound session {doc['session']['id']}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:2px 10px;text-align:left}}</style>
</head><body><h1>Session {doc['session']['id']}</h1>
<p>{html.escape(format_when(doc['session']['started_at']))} — {html.escape(str(doc['file']))} — status
{html.escape(str(doc['session']['status']))}. Coaching feedback, not a diagnosis: landing loudness is compared
with this runner's own baseline only.</p>
<img alt="cadence and landings" src="data:image/png;base64,{png_b64}" style="width:100%">
<h2>Summary</h2><table>{rows}</table>
<h2>Cues</h2><table><tr><th>time [s]</th><th>cue</th><th>target [steps/min]</th></tr>{cues}</table>
</body></html>"""
    with output_file(path) as fh:
        fh.write(page)
