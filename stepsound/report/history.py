"""Past sessions from the database: history with trends, and one session's report."""
from __future__ import annotations

import json
import os

import numpy as np

from stepsound.atomic import output_file
from stepsound.errors import ParameterError, StepsoundError
from stepsound.store import SessionStore, default_db_path


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
        rows = store.sessions(limit)
    finally:
        store.close()
    for r in rows:
        r["heel_share"] = _heel_share(r.get("summary_json"))
    return rows


def _heel_share(summary_json) -> float | None:
    """Share of heel-first landings among the labelled ones of a stored summary (None without a profile)."""
    try:
        counts = json.loads(summary_json).get("strike_counts") if summary_json else None
        heel, fore = int(counts["heel"]), int(counts["forefoot"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return heel / (heel + fore) if heel + fore else None


def history_trends(rows: list[dict]) -> dict:
    """Least-squares trends over sessions: ``cadence_spm_per_session`` and ``heavy_pct_per_session``
    (None with fewer than 3 values)."""
    return {"cadence_spm_per_session": _trend([r["median_cadence_spm"] for r in rows]),
            "heavy_pct_per_session": _trend([None if r["heavy_share"] is None else 100 * r["heavy_share"]
                                             for r in rows])}


# -- report ------------------------------------------------------------------------------

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
    """Write one session's report (PNG, SVG, PDF or a self-contained HTML page), atomically.

    The figure is :func:`stepsound.report.session.session_figure`, the page
    :func:`stepsound.report.session.session_html`.
    """
    from stepsound.atomic import atomic_path
    from stepsound.report.session import session_figure, session_html

    ext = os.path.splitext(path)[1].lower()
    if ext not in REPORT_FORMATS:
        raise ParameterError(f"{path}: the report must be .png, .svg, .pdf or .html")
    if ext in (".html", ".htm"):
        page = session_html(doc)
        with output_file(path) as fh:
            fh.write(page)
        return
    fig = session_figure(doc)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext[1:])
    except OSError as exc:
        raise StepsoundError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
