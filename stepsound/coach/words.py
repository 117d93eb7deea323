"""What a runner is told, as a word: the cue a display shows (terminal and web page alike).

The word says by text what a colour would say alone: ``SPEED UP``, ``ON TARGET``, ``LAND SOFTER``...
"""
from __future__ import annotations

import math

__all__ = ["CUE_WORDS", "CUE_MARKS", "cue_code", "finite_or_none"]

#: The cue codes of a snapshot and the word the page shows for each.
CUE_WORDS = {
    "speed_up": "SPEED UP",
    "slow_down": "SLOW DOWN",
    "on_target": "ON TARGET",
    "land_softer": "LAND SOFTER",
    "warmup": "WARM-UP",
    "measuring": "MEASURING",
    "paused": "CUES PAUSED",
    "no_steps": "NO STEPS",
    "ended": "SESSION ENDED",
}


#: A shape for each cue, so that it reads without colour (and without reading the word).
CUE_MARKS = {"speed_up": "▲", "slow_down": "▼", "on_target": "✓", "land_softer": "≈", "paused": "❚❚"}


def finite_or_none(value) -> float | None:
    """``value`` as a finite float, or None (missing, not a number, NaN or infinite)."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def cue_code(st: dict, *, band_pct: float = 3.0, hold_s: float = 6.0) -> str:
    """The cue code for a session status (a key of :data:`CUE_WORDS`).

    Parameters
    ----------
    st : dict
        A session status (``SessionLog.status``): ``elapsed_s`` [s], ``cadence_spm`` and ``target_spm``
        [steps/min], ``phase``, ``on_target``, ``last_cue``, ``last_cue_time_s`` [s], ``cues_paused``,
        ``ended``; missing keys read as unknown.
    band_pct : float [%]
        The on-target band, ± percent of the target.
    hold_s : float [s]
        How long a "land softer" cue stays the word shown.
    """
    if st.get("ended"):
        return "ended"
    if st.get("cues_paused"):
        return "paused"
    elapsed = finite_or_none(st.get("elapsed_s")) or 0.0
    last_t = finite_or_none(st.get("last_cue_time_s"))
    if st.get("last_cue") == "land_softer" and last_t is not None and elapsed - last_t < hold_s:
        return "land_softer"
    target = finite_or_none(st.get("target_spm"))
    cad = finite_or_none(st.get("cadence_spm"))
    if target is None:
        return "warmup" if st.get("phase") == "warmup" else "measuring"
    if cad is None:
        return "no_steps"
    on = st.get("on_target")
    if on is None:      # the coach has not judged yet: what the numbers say now
        on = abs(cad - target) <= target * band_pct / 100.0
    if on:
        return "on_target"
    return "speed_up" if cad < target else "slow_down"
