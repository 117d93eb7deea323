"""Grading: each landing against the runner's own baseline.

- :mod:`stepsound.grade.impact` — ``impact_db`` and heavy landings (``LandingGrader``).
- :mod:`stepsound.grade.strike` — heel-first vs forefoot from a runner's calibration.
- :mod:`stepsound.grade.profiles` — runner profiles on disk.
- :mod:`stepsound.grade.calibrate` — learning a profile from recordings or live.
"""
