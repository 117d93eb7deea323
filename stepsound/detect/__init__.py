"""Detection: audio blocks in, step onsets and cadence out.

- :mod:`stepsound.detect._core` — the Cython streaming onset detector (``StepDetector``),
  block-size invariant and allocation-free.
- :mod:`stepsound.detect.detector` — its Python face: configuration, onsets and the
  features measured at each onset.
- :mod:`stepsound.detect.cadence` — the causal, rhythm-aware cadence tracker
  [steps/min].
"""
