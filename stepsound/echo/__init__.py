"""Our own sound in the microphone: round trip and echo cancellation.

- :mod:`stepsound.echo.roundtrip` — sweep probes and the speaker → microphone round trip.
- :mod:`stepsound.echo._aec` — the Cython echo canceller (measured path, fixed filter).
- :mod:`stepsound.echo.path` — keeps the canceller's path right during a session.
"""
