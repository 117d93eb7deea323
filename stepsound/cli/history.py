"""``stepsound history``: past sessions with trends."""
from __future__ import annotations

import argparse
import json

from stepsound.report.history import history_rows, history_trends, round_floats
from stepsound.units import format_when


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="PATH", help="session database (default: in the user data dir)")
    p.add_argument("--limit", type=int, default=30, metavar="N", help="most recent N sessions (default 30)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    rows = history_rows(args.db, args.limit)
    trend = history_trends(rows)
    cad_trend, heavy_trend = trend["cadence_spm_per_session"], trend["heavy_pct_per_session"]
    if args.json:
        keep = ("id", "started_at", "status", "source", "duration_s", "target", "steps", "median_cadence_spm",
                "heavy_share", "heel_share", "profile", "baseline_spm")
        print(json.dumps(round_floats({"sessions": [{k: r[k] for k in keep} for r in rows], "trend": trend}), indent=1))
        return 0
    if not rows:
        print("no sessions yet (stepsound run ... records one)")
        return 0
    print(f"{'id':>4}  {'when':16}  {'status':11}  {'min':>6}  {'steps':>6}  {'cadence':>8}  {'heavy':>6}  "
          f"{'heel':>5}  target")
    for r in rows:
        minutes = "" if r["duration_s"] is None else f"{r['duration_s'] / 60:.1f}"
        cad = "" if r["median_cadence_spm"] is None else f"{r['median_cadence_spm']:.1f}"
        heavy = "" if r["heavy_share"] is None else f"{100 * r['heavy_share']:.1f}%"
        heel = "" if r.get("heel_share") is None else f"{100 * r['heel_share']:.0f}%"
        print(f"{r['id']:>4}  {format_when(r['started_at']):16}  {r['status']:11}  {minutes:>6}  {r['steps'] or 0:>6}  "
              f"{cad:>8}  {heavy:>6}  {heel:>5}  {r['target'] or '-'}")
    if cad_trend is not None:
        print(f"trend over these sessions: cadence {cad_trend:+.2f} steps/min per session, "
              f"heavy landings {heavy_trend:+.2f} points per session" if heavy_trend is not None else
              f"trend over these sessions: cadence {cad_trend:+.2f} steps/min per session")
    return 0
