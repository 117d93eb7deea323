"""One session in a runner's language: the numbers, a figure and a web page.

Public functions (also for a web server's per-session page):

* :func:`session_stats` — the numbers a runner reads: minutes, median
  cadence, baseline → target, time in the target zone, heavy share and
  threshold, heel/forefoot mix, left/right balance, warm-up and metronome
  periods, cadence distribution, per-minute splits;
* :func:`session_figure` — a matplotlib figure of them (built without pyplot,
  so it is safe to call from any thread; save it with ``fig.savefig``);
* :func:`session_html` — a self-contained HTML page (the figure inline, the
  tables with labels for people; no external resources).

``doc`` is one stored session as :meth:`stepsound.store.SessionStore.load`
returns it (or the ``run --json`` document).
"""
from __future__ import annotations

import base64
import html
import io
import math
import os

import numpy as np

from stepsound.report.numbers import heavy_counts, strike_counts, target_at, target_changes, zone_time
from stepsound.units import format_when

import stepsound.report.plot  # noqa: F401 -- quiets matplotlib's warning about glyphs a font lacks

__all__ = ["session_stats", "session_figure", "session_html", "CUE_LABELS", "format_clock"]

#: Cue kinds as a runner reads them.
CUE_LABELS = {
    "baseline": "warm-up done: baseline measured",
    "metronome_on": "metronome on",
    "metronome_off": "metronome off",
    "tempo": "new target",
    "speed_up": "speed up",
    "slow_down": "slow down",
    "on_target": "on target",
    "land_softer": "land softer",
    "remind_quick_light": "reminder: quick, light steps",
    "remind_under_hips": "reminder: land under your hips, soft bent knee",
    "remind_ball_of_foot": "reminder: land on the ball of your foot",
}
#: The cues drawn on the figure (the others are state changes shown as shading).
_MARKED = ("speed_up", "slow_down", "on_target", "land_softer")
#: Default on-target band when the session did not store one [± %].
DEFAULT_BAND_PCT = 3.0


def format_clock(seconds: float | None) -> str:
    """``754.2`` → ``"12:34"`` (minutes:seconds; hours when needed)."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(round(max(0.0, seconds)))
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _periods(cues: list, on: str, off: str, end_s: float) -> list[tuple[float, float]]:
    spans, since = [], None
    for c in cues:
        if c["kind"] == on and since is None:
            since = float(c["time_s"])
        elif c["kind"] == off and since is not None:
            spans.append((since, float(c["time_s"])))
            since = None
    if since is not None:
        spans.append((since, max(end_s, since)))
    return spans


def session_stats(doc: dict) -> dict:
    """The numbers of one session, for people.

    Parameters
    ----------
    doc : dict
        A stored session (``SessionStore.load``) or a ``run --json`` document.

    Returns
    -------
    dict
        ``duration_s``, ``steps``, ``median_cadence_spm``, ``baseline_spm``,
        ``target_spm`` (the last target), ``band_pct``, ``time_in_zone_share``
        (share of the coached time with a known cadence within the band of the
        target; None without a target), ``time_in_zone_s``, ``heavy_share``,
        ``heavy_threshold_db``, ``strike`` (counts ``heel``/``forefoot``/
        ``uncertain`` and ``heel_share``/``forefoot_share`` of the labelled
        ones; None without a profile), ``left_right`` (``left``/``right``
        step counts, ``timing_asymmetry_pct``, ``loudness_asymmetry_db``),
        ``warmup`` ((start_s, end_s) or None), ``metronome`` (list of
        (start_s, end_s)), ``distribution`` (``edges_spm``, ``counts``),
        ``minutes`` (per-minute splits: ``minute`` (1-based), ``steps``,
        ``median_cadence_spm``, ``heavy_share``, ``heel_share``,
        ``in_zone_share``), ``cues`` (list of (time_s, label)).
    """
    summary = doc.get("summary") or {}
    steps = [s for s in doc.get("steps") or [] if not s.get("extra")]
    cues = list(doc.get("cues") or [])
    ticks = [(float(c["time_s"]), c["spm"]) for c in doc.get("cadence") or []]
    duration = doc.get("duration_s")
    if duration is None:
        duration = max([t for t, _ in ticks] + [s["time_s"] for s in steps] + [0.0])
    duration = float(duration)
    band = float(summary.get("band_pct") or DEFAULT_BAND_PCT)
    targets = target_changes(cues)
    spm = np.array([s["cadence_spm"] for s in steps if s.get("cadence_spm") is not None], float)

    # time in the target zone: display ticks (every 0.25 s) once a target is set
    in_zone = zone_time(ticks, targets, band)
    zone_by_min = in_zone["by_minute"]
    strike = strike_counts(steps)
    heavy, graded = heavy_counts(steps)

    baseline_cue = next((c for c in cues if c["kind"] == "baseline"), None)
    first_step = steps[0]["time_s"] if steps else None
    warmup = None
    if baseline_cue is not None:
        warmup = (0.0, float(baseline_cue["time_s"]))
    metronome = _periods(cues, "metronome_on", "metronome_off", duration)

    if spm.size:
        lo = math.floor(min(spm.min(), min([v for _, v in targets], default=spm.min())) / 2) * 2 - 2
        hi = math.ceil(max(spm.max(), max([v for _, v in targets], default=spm.max())) / 2) * 2 + 2
        edges = np.arange(lo, hi + 2, 2.0)
        counts, edges = np.histogram(spm, bins=edges)
        distribution = {"edges_spm": edges.tolist(), "counts": counts.tolist()}
    else:
        distribution = {"edges_spm": [], "counts": []}

    minutes = []
    n_min = int(math.ceil(duration / 60.0)) if duration > 0 else 0
    for m in range(n_min):
        in_min = [s for s in steps if m * 60 <= s["time_s"] < (m + 1) * 60]
        cad = [s["cadence_spm"] for s in in_min if s.get("cadence_spm") is not None]
        lab = [s.get("strike") for s in in_min if s.get("strike") in ("heel", "forefoot")]
        zone = zone_by_min.get(m)
        minutes.append({
            "minute": m + 1,
            "steps": len(in_min),
            "median_cadence_spm": float(np.median(cad)) if cad else None,
            "heavy_share": _share(*heavy_counts(in_min)),
            "heel_share": (lab.count("heel") / len(lab)) if lab else None,
            "in_zone_share": (sum(zone) / len(zone)) if zone else None,
        })

    sides = [s.get("side") for s in steps]
    return {
        "duration_s": duration,
        "steps": len(steps),
        "first_step_s": first_step,
        "median_cadence_spm": float(np.median(spm)) if spm.size else None,
        "baseline_spm": summary.get("baseline_spm"),
        "target_spm": targets[-1][1] if targets else summary.get("final_target_spm"),
        "band_pct": band,
        "time_in_zone_share": in_zone["in_zone_share"],
        "time_in_zone_s": in_zone["in_zone_s"] if in_zone["coached_s"] else None,
        "heavy_share": _share(heavy, graded),
        "heavy_threshold_db": summary.get("heavy_threshold_db"),
        "strike": strike,
        "left_right": {"left": sides.count("L"), "right": sides.count("R"),
                       "timing_asymmetry_pct": summary.get("timing_asymmetry_pct"),
                       "loudness_asymmetry_db": summary.get("loudness_asymmetry_db")},
        "warmup": warmup,
        "metronome": metronome,
        "distribution": distribution,
        "minutes": minutes,
        "targets": targets,
        "cues": [(float(c["time_s"]), CUE_LABELS.get(c["kind"], c["kind"].replace("_", " "))) for c in cues],
    }


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def _spm(x) -> str:
    return "—" if x is None else f"{x:.0f}"


def summary_lines(st: dict, compact: bool = False) -> list[tuple[str, str]]:
    """(label, value) pairs of the headline numbers, in reading order (``compact``: short, for the figure)."""
    rows = [("Time", format_clock(st["duration_s"]) + " min"),
            ("Steps", str(st["steps"])),
            ("Median cadence", f"{_spm(st['median_cadence_spm'])} steps/min")]
    if st["baseline_spm"] is not None or st["target_spm"] is not None:
        rows.append(("Baseline → target", f"{_spm(st['baseline_spm'])} → {_spm(st['target_spm'])} steps/min"))
    if st["time_in_zone_share"] is not None:
        rows.append((f"In target zone (± {st['band_pct']:g} %)",
                     f"{_pct(st['time_in_zone_share'])} of the time ({format_clock(st['time_in_zone_s'])} min)"))
    if st["heavy_share"] is not None:
        thr = st["heavy_threshold_db"]
        if compact:
            extra = "" if thr is None else f" (over +{thr:g} dB)"
        else:
            extra = "" if thr is None else f" (louder than +{thr:g} dB over your usual landing)"
        rows.append(("Heavy landings", _pct(st["heavy_share"]) + extra))
    sk = st["strike"]
    if sk is not None:
        rows.append(("Landings", f"heel-first {_pct(sk['heel_share'])}, forefoot {_pct(sk['forefoot_share'])}, "
                     f"{sk['uncertain']} not sure"))
    lr = st["left_right"]
    if lr["left"] + lr["right"]:
        txt = f"{lr['left']} L / {lr['right']} R steps"
        if lr["timing_asymmetry_pct"] is not None:
            txt += f", step time L−R {lr['timing_asymmetry_pct']:+.1f} %"
        if lr["loudness_asymmetry_db"] is not None and not compact:
            txt += f", loudness L−R {lr['loudness_asymmetry_db']:+.1f} dB"
        rows.append(("Left/right balance", txt))
    return rows


def _title(doc: dict) -> str:
    sess = doc.get("session") or {}
    parts = [f"Session {sess['id']}" if sess.get("id") is not None else "Session"]
    if sess.get("started_at") is not None:
        parts.append(format_when(sess["started_at"], unknown="start time unknown"))
    if doc.get("file"):
        parts.append("live" if doc["file"] == "live" else os.path.basename(str(doc["file"])))
    return " — ".join(parts)


def session_figure(doc: dict):
    """A figure of one session for a runner.

    Parameters
    ----------
    doc : dict
        A stored session (``SessionStore.load``) or a ``run --json`` document.

    Returns
    -------
    matplotlib.figure.Figure
        Headline numbers on top; cadence over time [min] with the target zone,
        warm-up and metronome periods and the cues; every landing's impact
        with the heavy threshold (heel/forefoot marked with a profile); the
        cadence distribution; per-minute median cadence.  Made without
        pyplot (thread-safe, nothing to close); ``fig.savefig(path)`` writes it.
    """
    from matplotlib.figure import Figure

    st = session_stats(doc)
    fig = Figure(figsize=(12, 9.5), dpi=100)
    fig.suptitle(_title(doc), fontsize=14, fontweight="bold", x=0.02, ha="left")
    if not st["steps"]:
        fig.text(0.5, 0.55, "No steps in this session", ha="center", va="center", fontsize=28, color="0.35")
        fig.text(0.5, 0.45, f"{format_clock(st['duration_s'])} min recorded; nothing that sounded like a "
                            "footstep was heard", ha="center", va="center", fontsize=13, color="0.35")
        return fig
    lines = summary_lines(st, compact=True)
    half = (len(lines) + 1) // 2
    for col, chunk in enumerate((lines[:half], lines[half:])):
        for i, (label, value) in enumerate(chunk):
            y = 0.935 - i * 0.024
            fig.text(0.02 + col * 0.48, y, label + ":", fontsize=10.5, color="0.35")
            fig.text(0.175 + col * 0.48, y, value, fontsize=10.5, fontweight="bold")
    top = 0.935 - half * 0.024 - 0.02
    gs = fig.add_gridspec(3, 4, left=0.07, right=0.98, bottom=0.06, top=top, hspace=0.55, wspace=0.35,
                          height_ratios=[3, 2, 2])
    ax_cad = fig.add_subplot(gs[0, :3])
    ax_dist = fig.add_subplot(gs[0, 3], sharey=ax_cad)
    ax_imp = fig.add_subplot(gs[1, :3], sharex=ax_cad)
    ax_min = fig.add_subplot(gs[2, :3])
    ax_mix = fig.add_subplot(gs[1:, 3])

    steps = [s for s in doc["steps"] if not s.get("extra")]
    end_min = st["duration_s"] / 60.0
    # -- cadence over time
    if st["warmup"] is not None:
        ax_cad.axvspan(st["warmup"][0] / 60, st["warmup"][1] / 60, color="0.85", lw=0, label="warm-up")
    for i, (a, b) in enumerate(st["metronome"]):
        ax_cad.axvspan(a / 60, b / 60, color="tab:orange", alpha=0.10, lw=0, label="metronome on" if i == 0 else None)
    targets = st["targets"]
    if targets:
        tx = [t / 60 for t, _ in targets] + [end_min]
        ty = [v for _, v in targets] + [targets[-1][1]]
        band = st["band_pct"] / 100.0
        ax_cad.fill_between(tx, [v * (1 - band) for v in ty], [v * (1 + band) for v in ty], step="post",
                            color="tab:green", alpha=0.15, lw=0, label=f"target zone ± {st['band_pct']:g} %")
        ax_cad.step(tx, ty, where="post", color="tab:green", lw=1.4, label="target")
    ts = [s["time_s"] / 60 for s in steps if s.get("cadence_spm") is not None]
    ax_cad.plot(ts, [s["cadence_spm"] for s in steps if s.get("cadence_spm") is not None], ".", color="0.65",
                ms=2.5, label="each step")
    ax_cad.plot([c["time_s"] / 60 for c in doc["cadence"]],
                [np.nan if c["spm"] is None else c["spm"] for c in doc["cadence"]], "-", color="tab:blue", lw=1.8,
                label="cadence (as shown live)")
    for c in doc.get("cues") or []:
        if c["kind"] in _MARKED:
            colour = "tab:red" if c["kind"] == "land_softer" else "tab:purple"
            ax_cad.axvline(c["time_s"] / 60, color=colour, lw=0.8, alpha=0.7)
            ax_cad.annotate(CUE_LABELS[c["kind"]], (c["time_s"] / 60, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(2, -4), textcoords="offset points", fontsize=8, color=colour, rotation=90,
                            va="top")
    ax_cad.set_ylabel("cadence [steps/min]")
    ax_cad.set_xlim(0, max(end_min, 1e-3))
    ax_cad.grid(alpha=0.3)
    ax_cad.legend(loc="lower right", fontsize=8, ncol=3)
    ax_cad.set_title("Cadence", fontsize=11, loc="left")
    # -- distribution
    d = st["distribution"]
    if d["counts"]:
        e = np.array(d["edges_spm"])
        total_min = max(1, sum(d["counts"]))
        ax_dist.barh(e[:-1], np.array(d["counts"]) / total_min * 100, height=np.diff(e), align="edge",
                     color="tab:blue", alpha=0.7)
        if targets:
            v = targets[-1][1]
            ax_dist.axhspan(v * (1 - st["band_pct"] / 100), v * (1 + st["band_pct"] / 100), color="tab:green",
                            alpha=0.15, lw=0)
    ax_dist.set_xlabel("% of steps")
    ax_dist.set_title("Cadence spread", fontsize=11, loc="left")
    ax_dist.grid(alpha=0.3)
    ax_dist.tick_params(labelleft=False)
    # -- landings
    thr = st["heavy_threshold_db"]
    kinds = (("heel", "s", "tab:brown", "heel-first"), ("forefoot", "^", "tab:cyan", "forefoot"),
             ("uncertain", "o", "0.6", "not sure"), (None, "o", "tab:green", "landing"))
    for strike, marker, colour, label in kinds:
        pts = [(s["time_s"] / 60, s["impact_db"]) for s in steps
               if s.get("impact_db") is not None and s.get("strike") == strike and not s.get("heavy")]
        if pts:
            ax_imp.plot(*zip(*pts), marker, ms=3, color=colour, label=label, ls="none")
    heavy = [(s["time_s"] / 60, s["impact_db"]) for s in steps if s.get("heavy") and s.get("impact_db") is not None]
    if heavy:
        ax_imp.plot(*zip(*heavy), "v", ms=6, color="tab:red", label="heavy", ls="none")
    ax_imp.axhline(0, color="0.4", lw=0.8)
    if thr is not None:
        ax_imp.axhline(thr, color="tab:red", lw=1.0, ls="--")
        ax_imp.annotate(f"heavy above +{thr:g} dB", (0.0, thr), xycoords=("axes fraction", "data"),
                        xytext=(3, -10), textcoords="offset points", fontsize=8, color="tab:red")
    ax_imp.set_ylabel("landing loudness\n[dB over your usual]")
    ax_imp.set_xlabel("time [min]")
    ax_imp.grid(alpha=0.3)
    ax_imp.legend(loc="lower right", fontsize=8, ncol=5)
    ax_imp.set_title("Landings", fontsize=11, loc="left")
    # -- per-minute splits
    mins = st["minutes"]
    xs = [m["minute"] for m in mins]
    med = [np.nan if m["median_cadence_spm"] is None else m["median_cadence_spm"] for m in mins]
    ax_min.bar(xs, med, color="tab:blue", alpha=0.7, width=0.8)
    finite = [v for v in med if np.isfinite(v)]
    if finite:
        lo = min(finite + [v for _, v in targets]) - 5
        hi = max(finite + [v for _, v in targets]) + 5
        ax_min.set_ylim(lo, hi)
    for m, v in zip(mins, med):
        if np.isfinite(v):
            ax_min.annotate(f"{v:.0f}", (m["minute"], v), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 1), textcoords="offset points")
    ax_min.set_xlabel("minute")
    ax_min.set_ylabel("median cadence\n[steps/min]")
    ax_min.set_title("Minute by minute", fontsize=11, loc="left")
    ax_min.grid(alpha=0.3, axis="y")
    if len(xs) <= 30:
        ax_min.set_xticks(xs)
    # -- landing mix
    sk = st["strike"]
    heavy_n = sum(bool(s.get("heavy")) for s in steps)
    labels, values, colours = ["soft enough", "heavy"], [len(steps) - heavy_n, heavy_n], ["tab:green", "tab:red"]
    ax_mix.set_title("Landing mix", fontsize=11, loc="left")
    if sk is not None:
        labels = ["heel-first", "forefoot", "not sure"]
        values = [sk["heel"], sk["forefoot"], sk["uncertain"]]
        colours = ["tab:brown", "tab:cyan", "0.7"]
    keep = [(lab, v, c) for lab, v, c in zip(labels, values, colours) if v > 0]
    if keep:
        ax_mix.pie([v for _, v, _ in keep], labels=[f"{lab}\n{v}" for lab, v, _ in keep],
                   colors=[c for _, _, c in keep], startangle=90, counterclock=False,
                   wedgeprops={"width": 0.45}, textprops={"fontsize": 9})
    ax_mix.set_aspect("equal")
    return fig


def session_png(doc: dict, dpi: int = 100) -> bytes:
    """The figure of :func:`session_figure` as PNG bytes."""
    buf = io.BytesIO()
    session_figure(doc).savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def session_html(doc: dict) -> str:
    """A self-contained HTML page of one session (figure inline, tables for people).

    Parameters
    ----------
    doc : dict
        A stored session (``SessionStore.load``) or a ``run --json`` document.

    Returns
    -------
    str
        The whole page (UTF-8 text, no external resources).
    """
    st = session_stats(doc)
    esc = html.escape
    title = _title(doc)
    img = base64.b64encode(session_png(doc, dpi=100)).decode()
    sess = doc.get("session") or {}
    status = sess.get("status")
    status_txt = {"complete": "", "running": " (still running)", "interrupted": " (stopped early)",
                  "failed": " (ended by a problem)"}.get(status, "")
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
             "<style>body{font-family:system-ui,sans-serif;max-width:1150px;margin:1.5em auto;padding:0 1em;"
             "color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:3px 12px;text-align:left;"
             "border-bottom:1px solid #ddd}th{color:#555;font-weight:normal}td.n{text-align:right}"
             "img{width:100%;height:auto}.note{color:#666;font-size:.9em}.empty{font-size:1.6em;color:#666}"
             "</style></head><body>",
             f"<h1>{esc(title)}{esc(status_txt)}</h1>"]
    if not st["steps"]:
        parts.append(f"<p class='empty'>No steps in this session.</p><p>{esc(format_clock(st['duration_s']))} min "
                     "recorded; nothing that sounded like a footstep was heard.</p></body></html>")
        return "".join(parts)
    parts.append("<table>" + "".join(f"<tr><th>{esc(k)}</th><td><b>{esc(v)}</b></td></tr>"
                                     for k, v in summary_lines(st)) + "</table>")
    parts.append(f"<img alt='cadence, landings and minute-by-minute splits' src='data:image/png;base64,{img}'>")
    # per-minute splits
    rows = []
    for m in st["minutes"]:
        rows.append(f"<tr><td class='n'>{m['minute']}</td><td class='n'>{m['steps']}</td>"
                    f"<td class='n'>{esc(_spm(m['median_cadence_spm']))}</td>"
                    f"<td class='n'>{esc(_pct(m['in_zone_share']))}</td>"
                    f"<td class='n'>{esc(_pct(m['heavy_share']))}</td>"
                    + (f"<td class='n'>{esc(_pct(m['heel_share']))}</td>" if st["strike"] is not None else "")
                    + "</tr>")
    parts.append("<h2>Minute by minute</h2><table><tr><th>minute</th><th>steps</th><th>median cadence "
                 "[steps/min]</th><th>in target zone</th><th>heavy landings</th>"
                 + ("<th>heel-first</th>" if st["strike"] is not None else "") + "</tr>" + "".join(rows) + "</table>")
    # periods and cues
    events = []
    if st["warmup"] is not None:
        events.append((st["warmup"][1], "warm-up done: baseline measured"
                       + (f" ({st['baseline_spm']:.0f} steps/min)" if st["baseline_spm"] else "")))
    for t, label in st["cues"]:
        if label.startswith("warm-up done"):
            continue
        events.append((t, label))
    if events:
        parts.append("<h2>What happened</h2><table><tr><th>time [min:s]</th><th></th></tr>"
                     + "".join(f"<tr><td class='n'>{esc(format_clock(t))}</td><td>{esc(lab)}</td></tr>"
                               for t, lab in sorted(events, key=lambda e: e[0])) + "</table>")
    parts.append("<p class='note'>Coaching feedback, not a diagnosis: landing loudness is compared with this "
                 "runner's own usual landing only, and heel/forefoot with this runner's own calibration.</p>")
    parts.append("</body></html>")
    return "".join(parts)
