"""``stepsound history`` and ``stepsound report``: past sessions from the database."""
from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import io
import json
import os
import sys

import numpy as np

from stepsound.atomic import output_file
from stepsound.cli.support import Command
from stepsound.errors import ParameterError, StepsoundError
from stepsound.report.plot import save_figure
from stepsound.store import SessionStore, default_db_path


def _when(ts) -> str:
    if ts is None:
        return "?"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _trend(values: list) -> float | None:
    """Least-squares slope per session of the non-missing values (None if < 3)."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(pts) < 3:
        return None
    x = np.array([p[0] for p in pts], float)
    y = np.array([p[1] for p in pts], float)
    return float(np.polyfit(x, y, 1)[0])


def _rounded(obj, digits: int = 3):
    """``obj`` with every float rounded to ``digits`` decimals (lists and dicts followed)."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v, digits) for v in obj]
    return obj


# -- history -----------------------------------------------------------------------------

def add_history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="PATH", help="session database (default: in the user data dir)")
    p.add_argument("--limit", type=int, default=30, metavar="N", help="most recent N sessions (default 30)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run_history(args) -> int:
    if args.limit < 1:
        raise ParameterError(f"--limit={args.limit} must be >= 1")
    if os.path.exists(args.db or default_db_path()):
        store = SessionStore(args.db)
        try:
            rows = store.sessions(args.limit)
        finally:
            store.close()
    else:
        rows = []        # no database yet: nothing to list, and nothing created
    cad_trend = _trend([r["median_cadence_spm"] for r in rows])
    heavy_trend = _trend([None if r["heavy_share"] is None else 100 * r["heavy_share"] for r in rows])
    if args.json:
        keep = ("id", "started_at", "status", "source", "duration_s", "target", "steps", "median_cadence_spm",
                "heavy_share", "baseline_spm")
        print(json.dumps(_rounded({"sessions": [{k: r[k] for k in keep} for r in rows],
                                   "trend": {"cadence_spm_per_session": cad_trend,
                                             "heavy_pct_per_session": heavy_trend}}), indent=1))
        return 0
    if not rows:
        print("no sessions yet (stepsound run ... records one)")
        return 0
    print(f"{'id':>4}  {'when':16}  {'status':11}  {'min':>6}  {'steps':>6}  {'cadence':>8}  {'heavy':>6}  target")
    for r in rows:
        minutes = "" if r["duration_s"] is None else f"{r['duration_s'] / 60:.1f}"
        cad = "" if r["median_cadence_spm"] is None else f"{r['median_cadence_spm']:.1f}"
        heavy = "" if r["heavy_share"] is None else f"{100 * r['heavy_share']:.1f}%"
        print(f"{r['id']:>4}  {_when(r['started_at']):16}  {r['status']:11}  {minutes:>6}  {r['steps'] or 0:>6}  "
              f"{cad:>8}  {heavy:>6}  {r['target'] or '-'}")
    if cad_trend is not None:
        print(f"trend over these sessions: cadence {cad_trend:+.2f} steps/min per session, "
              f"heavy landings {heavy_trend:+.2f} points per session" if heavy_trend is not None else
              f"trend over these sessions: cadence {cad_trend:+.2f} steps/min per session")
    return 0


# -- report ------------------------------------------------------------------------------

def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", help="session id (see `stepsound history`), or 'last'")
    p.add_argument("-o", "--output", required=True, metavar="PATH.png|PATH.html", help="report file")
    p.add_argument("--db", metavar="PATH", help="session database (default: in the user data dir)")


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
    ax1.set_title(f"session {doc['session']['id']} — {_when(doc['session']['started_at'])} — "
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


def session_figure(doc: dict, fmt: str = "png", *, dpi: int = 110) -> bytes:
    """The report figure of one session, as image bytes (for ``stepsound serve`` and other callers).

    Parameters
    ----------
    doc : dict
        A session as :meth:`stepsound.store.SessionStore.load` returns it.
    fmt : {"png", "svg"}
    dpi : int
        Resolution of a PNG [dots per inch].

    Returns
    -------
    bytes
    """
    fig, plt = _figure(doc)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()


def run_report(args) -> int:
    store = SessionStore(args.db, create=False)
    try:
        if args.session == "last":
            rows = store.sessions(1)
            if not rows:
                raise StepsoundError(f"{store.path}: no sessions yet")
            sid = rows[-1]["id"]
        else:
            try:
                sid = int(args.session)
            except ValueError:
                raise ParameterError(f"SESSION={args.session!r} must be a session id or 'last'") from None
        doc = store.load(sid)
    finally:
        store.close()
    ext = os.path.splitext(args.output)[1].lower()
    if ext not in (".png", ".html", ".htm", ".pdf", ".svg"):
        raise ParameterError(f"{args.output}: the report must be .png, .svg, .pdf or .html")
    fig, plt = _figure(doc)
    if ext in (".html", ".htm"):
        try:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110)
        finally:
            plt.close(fig)
        _write_html(args.output, doc, base64.b64encode(buf.getvalue()).decode())
    else:
        save_figure(fig, args.output)
    print(f"report of session {sid} written to {args.output}", file=sys.stderr)
    return 0


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
<p>{html.escape(_when(doc['session']['started_at']))} — {html.escape(str(doc['file']))} — status
{html.escape(str(doc['session']['status']))}. Coaching feedback, not a diagnosis: landing loudness is compared
with this runner's own baseline only.</p>
<img alt="cadence and landings" src="data:image/png;base64,{png_b64}" style="width:100%">
<h2>Summary</h2><table>{rows}</table>
<h2>Cues</h2><table><tr><th>time [s]</th><th>cue</th><th>target [steps/min]</th></tr>{cues}</table>
</body></html>"""
    with output_file(path) as fh:
        fh.write(page)


history_command = Command(add_history_arguments, run_history)
report_command = Command(add_report_arguments, run_report)
