"""Coaching: cadence plans and the decisions of when to cue.

- :mod:`stepsound.coach.plans` — cadence plans (TOML; presets in ``presets/``).
- :mod:`stepsound.coach.coach` — targets, cues only when off target, "land softer".
"""
