"""The coaching session: detect, grade, coach and cue, live or replayed.

- :mod:`stepsound.session.core` — ``SessionCore`` (the per-block work the audio callback
  does) and the session driver.
- :mod:`stepsound.session.display` — the terminal panel.
"""
