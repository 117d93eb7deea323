"""Cues: the sample-accurate metronome, its sounds and rendered cue tracks.

- :mod:`stepsound.cue._metronome` — the Cython click scheduler.
- :mod:`stepsound.cue.metronome` — its Python face (tempo maps, cues, levels).
- :mod:`stepsound.cue.sounds` — click and cue sounds.
- :mod:`stepsound.cue.render` — headphone cue tracks from a plan, offline.
"""
