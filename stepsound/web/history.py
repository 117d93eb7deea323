"""``stepsound serve``: the session history in the browser.

Pages (server-rendered HTML with inline SVG; no script needed):

* ``/`` -- trends over weeks (cadence, time in the target zone, heavy
  landings, strike mix) and the list of sessions;
* ``/session/ID`` -- one session: its numbers and the report figure
  (drawn by :func:`stepsound.report.history.write_report`, the same code
  as ``stepsound report``).

And the same as JSON for scripts: ``/api/sessions``, ``/api/session/ID``.
The database is opened read-only per request (a session may be writing to
it at the same time); finished sessions' numbers and figures are cached.
"""
from __future__ import annotations

import collections
import html
import math
import os
import re
import threading

from stepsound.errors import StepsoundError
from stepsound.report.numbers import heavy_counts, strike_counts, target_changes, zone_time
from stepsound.store import SessionStore, default_db_path
from stepsound.units import format_when
from stepsound.web.server import Response, static_file

__all__ = ["DEFAULT_BAND_PCT", "HistoryApp", "session_metrics", "weekly_trends"]

#: On-target band used for "time in the target zone" [± % of the target] (the session's default ``--band``).
DEFAULT_BAND_PCT = 3.0
#: Sessions listed and summed into the weekly trends.
MAX_SESSIONS = 500

_SESSION_PATH = re.compile(r"^/session/(\d{1,12})(/figure\.png)?$")
_API_SESSION_PATH = re.compile(r"^/api/session/(\d{1,12})$")


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def session_metrics(doc: dict, band_pct: float = DEFAULT_BAND_PCT) -> dict:
    """A session's numbers in runner terms.

    Parameters
    ----------
    doc : dict
        As :meth:`stepsound.store.SessionStore.load` returns it.
    band_pct : float [%]
        Half-width of the target zone, ± percent of the target, for a session
        that did not store its own (``summary["band_pct"]``).

    Returns
    -------
    dict
        ``id``, ``started_at`` [unix s], ``status``, ``source``, ``minutes``
        [min], ``steps``, ``median_cadence_spm``, ``baseline_spm``,
        ``final_target_spm`` [steps/min], ``target_s`` (time with a target
        set) and ``in_zone_s`` (of it, within the zone) [s],
        ``in_zone_share`` (0-1 or None), ``heavy_share`` (0-1 or None),
        ``strikes`` (counts of ``heel``, ``forefoot``, ``uncertain``),
        ``forefoot_share`` (forefoot among heel + forefoot, or None).
    """
    meta = doc["session"]
    summary = doc.get("summary") or {}
    band_pct = _num(summary.get("band_pct")) or band_pct
    steps = [s for s in doc["steps"] if not s.get("extra")]
    # the target in force: a step function through the cues that carry one
    changes = target_changes(doc["cues"])
    zone = zone_time([(c["time_s"], c["spm"]) for c in doc["cadence"]], changes, band_pct)
    strikes = strike_counts(steps) or {}
    heavy, graded = heavy_counts(steps)
    duration = _num(meta.get("duration_s")) or _num(doc.get("duration_s"))
    median = _num(meta.get("median_cadence_spm"))
    if median is None:
        median = _num(summary.get("median_cadence_spm"))
    return {
        "id": meta["id"],
        "started_at": meta.get("started_at"),
        "status": meta.get("status"),
        "source": meta.get("source"),
        "target": meta.get("target"),
        "minutes": None if duration is None else duration / 60.0,
        "steps": len(steps),
        "median_cadence_spm": median,
        "baseline_spm": _num(meta.get("baseline_spm")),
        "final_target_spm": _num(summary.get("final_target_spm")) or (changes[-1][1] if changes else None),
        "target_s": zone["coached_s"],
        "in_zone_s": zone["in_zone_s"],
        "in_zone_share": zone["in_zone_share"],
        "band_pct": band_pct,
        "heavy_share": heavy / graded if graded else _num(meta.get("heavy_share")),
        "heavy_steps": heavy,
        "graded_steps": graded,
        "strikes": {k: strikes.get(k, 0) for k in ("heel", "forefoot", "uncertain")},
        "forefoot_share": strikes.get("forefoot_share"),
    }


def _week_of(ts) -> str:
    return format_when(ts, "%G-W%V")         # ISO year and week


def weekly_trends(metrics: list[dict]) -> list[dict]:
    """Per ISO week (local time), oldest first: the sessions' numbers put together.

    Returns
    -------
    list of dict
        ``week`` ("2026-W48"), ``sessions``, ``minutes`` [min],
        ``cadence_spm`` (session medians weighted by their length) [steps/min],
        ``in_zone_share``, ``heavy_share``, ``forefoot_share`` (0-1 or None).
    """
    weeks: dict[str, dict] = {}
    for m in metrics:
        if m.get("started_at") is None:
            continue
        w = weeks.setdefault(_week_of(m["started_at"]), {
            "sessions": 0, "minutes": 0.0, "cad_w": 0.0, "cad_sum": 0.0, "zone_s": 0.0, "target_s": 0.0,
            "heavy": 0, "graded": 0, "forefoot": 0, "classified": 0})
        w["sessions"] += 1
        minutes = m.get("minutes") or 0.0
        w["minutes"] += minutes
        if m.get("median_cadence_spm") is not None:
            weight = max(minutes, 1e-3)
            w["cad_w"] += weight
            w["cad_sum"] += weight * m["median_cadence_spm"]
        w["zone_s"] += m["in_zone_s"]
        w["target_s"] += m["target_s"]
        w["heavy"] += m["heavy_steps"]
        w["graded"] += m["graded_steps"]
        w["forefoot"] += m["strikes"]["forefoot"]
        w["classified"] += m["strikes"]["forefoot"] + m["strikes"]["heel"]
    out = []
    for week in sorted(weeks):
        w = weeks[week]
        out.append({
            "week": week, "sessions": w["sessions"], "minutes": w["minutes"],
            "cadence_spm": w["cad_sum"] / w["cad_w"] if w["cad_w"] else None,
            "in_zone_share": w["zone_s"] / w["target_s"] if w["target_s"] else None,
            "heavy_share": w["heavy"] / w["graded"] if w["graded"] else None,
            "forefoot_share": w["forefoot"] / w["classified"] if w["classified"] else None,
        })
    return out


def _report_png(doc: dict) -> bytes:
    """The session's report figure as PNG, drawn by ``stepsound report``'s own public function."""
    import tempfile

    from stepsound.report.history import write_report

    with tempfile.TemporaryDirectory(prefix="stepsound-serve-") as folder:
        path = os.path.join(folder, f"session-{doc['session']['id']}.png")
        write_report(doc, path)
        with open(path, "rb") as fh:
            return fh.read()


# -- rendering ----------------------------------------------------------------------------

def _e(v) -> str:
    return html.escape(str(v))


def _when(ts) -> str:
    return format_when(ts, "%a %Y-%m-%d %H:%M")


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.0f}%"


def _f(v, digits=0, unit="") -> str:
    return "—" if v is None else f"{v:.{digits}f}{unit}"


def _strike_text(m: dict) -> str:
    s = m["strikes"]
    total = s["heel"] + s["forefoot"] + s["uncertain"]
    if not total:
        return "—"
    return f"{100 * s['heel'] / total:.0f}% heel · {100 * s['forefoot'] / total:.0f}% forefoot"


def _spark(values: list, *, label: str, fmt, lo=None, hi=None, first: str = "", last: str = "") -> str:
    """A small line chart (inline SVG) of weekly (or per-session) values; gaps where one has none."""
    w, h, pad = 320, 90, 8
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if not pts:
        return f'<figure class="spark"><figcaption>{_e(label)}</figcaption><p class="none">no data yet</p></figure>'
    vs = [v for _, v in pts]
    lo = min(vs) if lo is None else lo
    hi = max(vs) if hi is None else hi
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    n = max(len(values) - 1, 1)

    def xy(i, v):
        return pad + (w - 2 * pad) * (i / n if len(values) > 1 else 0.5), h - pad - (h - 2 * pad) * (v - lo) / (hi - lo)

    path = " ".join(f"{'M' if k == 0 else 'L'}{x:.1f} {y:.1f}" for k, (x, y) in enumerate(xy(i, v) for i, v in pts))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4"/>' for x, y in (xy(i, v) for i, v in pts))
    return (f'<figure class="spark"><figcaption>{_e(label)} <b>{_e(fmt(vs[-1]))}</b> '
            f'<span class="range">({_e(fmt(min(vs)))} – {_e(fmt(max(vs)))})</span></figcaption>'
            f'<svg viewBox="0 0 {w} {h}" role="img" aria-label="{_e(label)}"><path d="{path}"/>{dots}</svg>'
            f'<div class="axis"><span>{_e(first)}</span><span>{_e(last)}</span></div></figure>')


def _page(title: str, body: str, req) -> str:
    css = html.escape(req.url("/static/serve.css"))
    icon = html.escape(req.url("/static/icon.svg"))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="color-scheme" content="dark light"><title>{_e(title)}</title>'
            f'<link rel="icon" href="{icon}"><link rel="stylesheet" href="{css}"></head>'
            f'<body><main>{body}</main></body></html>')


class HistoryApp:
    """The routes of ``stepsound serve``.

    Parameters
    ----------
    db_path : str, optional
        Session database (default: the user's).
    band_pct : float [%]
        Target zone for "time in the target zone", ± percent of the target.
    """

    def __init__(self, db_path: str | None = None, *, band_pct: float = DEFAULT_BAND_PCT):
        self.db_path = db_path or default_db_path()
        self.band_pct = float(band_pct)
        self._lock = threading.Lock()
        self._metrics: dict = {}
        self._figures: collections.OrderedDict = collections.OrderedDict()
        self._figure_lock = threading.Lock()     # matplotlib draws one figure at a time

    # -- data ---------------------------------------------------------------------------
    def _store(self) -> SessionStore | None:
        if not os.path.exists(self.db_path):
            return None
        return SessionStore(self.db_path, create=False)

    @staticmethod
    def _key(row: dict) -> tuple:
        return (row["id"], row.get("status"), row.get("ended_at"), row.get("steps"))

    def sessions(self) -> list[dict]:
        """Every session's metrics, oldest first (finished ones cached)."""
        store = self._store()
        if store is None:
            return []
        try:
            rows = store.sessions(MAX_SESSIONS)
            out = []
            for row in rows:
                key = self._key(row)
                with self._lock:
                    m = self._metrics.get(key)
                if m is None:
                    m = session_metrics(store.load(row["id"]), self.band_pct)
                    if row.get("status") != "running":
                        with self._lock:
                            self._metrics[key] = m
                out.append(m)
            return out
        finally:
            store.close()

    def session(self, sid: int) -> tuple[dict, dict]:
        """(document, metrics) of one session; StepsoundError if there is none."""
        store = self._store()
        if store is None:
            raise StepsoundError(f"{self.db_path}: no sessions yet")
        try:
            doc = store.load(sid)
        finally:
            store.close()
        return doc, session_metrics(doc, self.band_pct)

    def figure(self, sid: int) -> bytes:
        """PNG of the session's report figure (cached for finished sessions)."""
        doc, _ = self.session(sid)
        key = self._key(doc["session"])
        with self._figure_lock:
            png = self._figures.get(key)
            if png is None:
                png = _report_png(doc)
                if doc["session"].get("status") != "running":
                    self._figures[key] = png
                    while len(self._figures) > 16:
                        self._figures.popitem(last=False)
        return png

    # -- routes --------------------------------------------------------------------------
    def handle(self, req):
        if req.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", headers={"Allow": "GET, HEAD"})
        if req.path.startswith("/static/"):
            return static_file(req.path[len("/static/"):])
        if req.path == "/":
            return Response.html(self._index(req))
        if req.path == "/api/sessions":
            ms = self.sessions()
            return Response.json({"band_pct": self.band_pct, "sessions": ms, "weeks": weekly_trends(ms)})
        m = _API_SESSION_PATH.match(req.path)
        if m:
            try:
                doc, metrics = self.session(int(m.group(1)))
            except StepsoundError as exc:
                return Response.json({"error": str(exc)}, 404)
            return Response.json({"metrics": metrics, "summary": doc.get("summary"), "cues": doc["cues"]})
        m = _SESSION_PATH.match(req.path)
        if m:
            sid = int(m.group(1))
            try:
                if m.group(2):
                    return Response(200, self.figure(sid), "image/png")
                return Response.html(self._session_page(req, sid))
            except StepsoundError as exc:
                return Response.html(_page("not found", f"<h1>Not found</h1><p>{_e(exc)}</p>"
                                           f'<p><a href="{_e(req.url("/"))}">all sessions</a></p>', req), 404)
        return Response.text("not found", 404)

    def _index(self, req) -> str:
        ms = self.sessions()
        if not ms:
            body = ("<h1>stepsound — your sessions</h1><p class='empty'>No sessions yet. "
                    "<code>stepsound run</code> records one.</p>")
            return _page("stepsound — sessions", body, req)
        weeks = weekly_trends(ms)
        spm = lambda v: f"{v:.0f} spm"  # noqa: E731
        pct = lambda v: f"{100 * v:.0f}%"  # noqa: E731
        if len(weeks) >= 2:         # trends over weeks
            series, per = weeks, "per week"
            first, last = weeks[0]["week"], weeks[-1]["week"]
            cad = [w["cadence_spm"] for w in weeks]
        else:                       # a first week: session by session
            series, per = [dict(m, cadence_spm=m["median_cadence_spm"]) for m in ms], "per session"
            first, last = (format_when(m["started_at"], "%d %b %H:%M") for m in (ms[0], ms[-1]))
            cad = [m["median_cadence_spm"] for m in ms]
        charts = "".join([
            _spark(cad, label=f"cadence {per}", fmt=spm, first=first, last=last),
            _spark([x["in_zone_share"] for x in series], label=f"time in target zone (±{self.band_pct:g}%)",
                   fmt=pct, lo=0.0, hi=1.0, first=first, last=last),
            _spark([x["heavy_share"] for x in series], label="heavy landings", fmt=pct, lo=0.0, first=first,
                   last=last),
            _spark([x["forefoot_share"] for x in series], label="forefoot landings (with a profile)", fmt=pct,
                   lo=0.0, hi=1.0, first=first, last=last),
        ])
        week_rows = "".join(
            f"<tr><td>{_e(w['week'])}</td><td>{w['sessions']}</td><td>{_f(w['minutes'], 0)}</td>"
            f"<td>{_f(w['cadence_spm'], 1)}</td><td>{_pct(w['in_zone_share'])}</td><td>{_pct(w['heavy_share'])}</td>"
            f"<td>{_pct(w['forefoot_share'])}</td></tr>" for w in reversed(weeks))
        rows = "".join(
            f"<tr><td><a href=\"{_e(req.url('/session/%d' % m['id']))}\">{_e(_when(m['started_at']))}</a></td>"
            f"<td>{_f(m['minutes'], 1)}</td><td>{m['steps']}</td><td>{_f(m['median_cadence_spm'], 1)}</td>"
            f"<td>{_e(m['target'] or '—')}</td><td>{_pct(m['in_zone_share'])}</td><td>{_pct(m['heavy_share'])}</td>"
            f"<td>{_e(_strike_text(m))}</td><td>{_e(m['status'])}</td></tr>" for m in reversed(ms))
        body = (f"<h1>stepsound — your sessions</h1>"
                f"<section class='charts' aria-label='trends per week'>{charts}</section>"
                f"<h2>Week by week</h2><div class='scroll'><table class='weeks'><thead><tr><th>week</th><th>sessions</th><th>minutes</th>"
                f"<th>cadence [steps/min]</th><th>in target zone</th><th>heavy landings</th><th>forefoot</th></tr>"
                f"</thead><tbody>{week_rows}</tbody></table></div>"
                f"<h2>Sessions</h2><div class='scroll'><table class='sessions'><thead><tr><th>when</th><th>minutes</th><th>steps</th>"
                f"<th>cadence [steps/min]</th><th>target</th><th>in target zone</th><th>heavy landings</th>"
                f"<th>strike mix</th><th>status</th></tr></thead><tbody>{rows}</tbody></table></div>"
                f"<p class='note'>Coaching feedback, not a diagnosis: landing loudness is compared with your own "
                f"usual step only.</p>")
        return _page("stepsound — sessions", body, req)

    def _session_page(self, req, sid: int) -> str:
        doc, m = self.session(sid)
        base = m["baseline_spm"]
        tgt = m["final_target_spm"]
        facts = [
            ("when", _when(m["started_at"])),
            ("length", _f(m["minutes"], 1, " min")),
            ("steps", str(m["steps"])),
            ("median cadence", _f(m["median_cadence_spm"], 1, " steps/min")),
            ("baseline → target", f"{_f(base, 0)} → {_f(tgt, 0)} steps/min"),
            (f"time in target zone (±{self.band_pct:g}%)",
             "—" if m["in_zone_share"] is None else f"{_pct(m['in_zone_share'])} of {m['target_s'] / 60:.1f} min"),
            ("heavy landings", _pct(m["heavy_share"])),
            ("strike mix", _strike_text(m)),
            ("status", m["status"]),
        ]
        dl = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts)
        src = os.path.basename(str(m["source"] or ""))
        body = (f'<p><a href="{_e(req.url("/"))}">← all sessions</a></p>'
                f"<h1>Session {m['id']} <small>{_e(src)}</small></h1><dl class='facts'>{dl}</dl>"
                f'<img class="figure" alt="cadence and landings over the session" '
                f'src="{_e(req.url("/session/%d/figure.png" % sid))}">'
                f"<p class='note'>Coaching feedback, not a diagnosis: landing loudness is compared with your own "
                f"usual step only.</p>")
        return _page(f"stepsound — session {sid}", body, req)
