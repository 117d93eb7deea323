"""A session's numbers in runner terms, shared by the report and the web history.

Pure Python over a session document (``SessionStore.load`` or a ``run --json``
document): no numpy, no plotting, so the web server can use it cheaply, and
the report and the browser never disagree about the same session.
"""
from __future__ import annotations

__all__ = ["target_changes", "target_at", "zone_time", "strike_counts", "heavy_counts"]


def target_changes(cues: list) -> list[tuple[float, float]]:
    """(time_s [s], target_spm [steps/min]) wherever the coach set or changed the target."""
    out: list[tuple[float, float]] = []
    for c in sorted(cues, key=lambda c: float(c["time_s"])):
        t = c.get("target_spm")
        if t is None:
            continue
        try:
            t = float(t)
        except (TypeError, ValueError):
            continue
        if t == t and (not out or abs(out[-1][1] - t) > 1e-9):      # NaN is no target
            out.append((float(c["time_s"]), t))
    return out


def target_at(changes: list[tuple[float, float]], t: float) -> float | None:
    """The target in force at ``t`` [s] (a step function through ``changes``), or None before the first."""
    cur = None
    for ts, v in changes:
        if ts <= t:
            cur = v
        else:
            break
    return cur


def zone_time(ticks: list, changes: list[tuple[float, float]], band_pct: float) -> dict:
    """Time with a target set, and of it within the target zone.

    Parameters
    ----------
    ticks : list of (time_s, spm or None)
        The session's display cadence ticks [s, steps/min] (every 0.25 s).
    changes : list of (time_s, target_spm)
        :func:`target_changes`.
    band_pct : float [%]
        Half-width of the zone, ± percent of the target.

    Returns
    -------
    dict
        ``tick_s`` [s] (the ticks' median spacing), ``coached_s`` and
        ``in_zone_s`` [s], ``in_zone_share`` (0-1, None without coached time),
        ``by_minute`` (0-based minute -> list of 0/1 per coached tick).
    """
    times = sorted(float(t) for t, _ in ticks)
    gaps = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
    tick_s = gaps[len(gaps) // 2] if gaps else 0.25
    coached = inside = 0
    by_minute: dict[int, list[int]] = {}
    for t, spm in ticks:
        target = target_at(changes, float(t))
        if target is None or spm is None:
            continue
        coached += 1
        ok = int(abs(spm - target) <= target * band_pct / 100.0)
        inside += ok
        by_minute.setdefault(int(float(t) // 60), []).append(ok)
    return {"tick_s": tick_s, "coached_s": coached * tick_s, "in_zone_s": inside * tick_s,
            "in_zone_share": inside / coached if coached else None, "by_minute": by_minute}


def strike_counts(steps: list) -> dict | None:
    """Heel-first vs forefoot among the steps that carry a label; None when none does.

    Returns
    -------
    dict or None
        ``heel``, ``forefoot``, ``uncertain`` (counts) and ``heel_share``,
        ``forefoot_share`` (of heel + forefoot; None when neither occurs).
    """
    labels = [s.get("strike") for s in steps if s.get("strike")]
    if not labels:
        return None
    heel, fore, unsure = (labels.count(k) for k in ("heel", "forefoot", "uncertain"))
    labelled = heel + fore
    return {"heel": heel, "forefoot": fore, "uncertain": unsure,
            "heel_share": heel / labelled if labelled else None,
            "forefoot_share": fore / labelled if labelled else None}


def heavy_counts(steps: list) -> tuple[int, int]:
    """(heavy steps, graded steps): a step is graded when it has an ``impact_db``."""
    graded = [s for s in steps if s.get("impact_db") is not None]
    return sum(bool(s.get("heavy")) for s in graded), len(graded)
