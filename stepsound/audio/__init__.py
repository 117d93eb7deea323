"""Audio in and out: files, PortAudio streams and the rings between threads.

- :mod:`stepsound.audio.files` — decode recordings block by block (``FileSource``).
- :mod:`stepsound.audio.device` — PortAudio streams through sounddevice, imported lazily
  so that ``import stepsound`` works on machines without PortAudio.
- :mod:`stepsound.audio.rings` — lock-free single-producer rings from the audio callback
  to the main thread.
"""
