"""Looking back: history of stored sessions and per-session reports.

- :mod:`stepsound.report.history` — ``history`` and ``report`` views of the session store.
- :mod:`stepsound.report.plot` — figures.
"""
