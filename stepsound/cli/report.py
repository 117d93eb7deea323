"""``stepsound report``: one session's report as a figure or a web page."""
from __future__ import annotations

import argparse
import sys

from stepsound.report.history import load_session, write_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", help="session id (see `stepsound history`), or 'last'")
    p.add_argument("-o", "--output", required=True, metavar="PATH.png|PATH.html", help="report file")
    p.add_argument("--db", metavar="PATH", help="session database (default: in the user data dir)")


def run(args) -> int:
    doc = load_session(args.session, args.db)
    write_report(doc, args.output)
    print(f"report of session {doc['session']['id']} written to {args.output}", file=sys.stderr)
    return 0
