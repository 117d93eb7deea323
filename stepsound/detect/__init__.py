"""Detection: audio blocks in, step onsets and cadence out.

- :mod:`stepsound.detect._core` — the Cython streaming onset detector (``StepDetector``),
  block-size invariant and allocation-free.
- :mod:`stepsound.detect.detector` — its Python face: configuration, onsets and the
  features measured at each onset.
- :mod:`stepsound.detect._stepnet` and :mod:`stepsound.detect.stepnet` — the learned
  step-onset model (band energies in, onset probability per hop out; Cython inference,
  weights in ``stepsound/detect/models/stepnet.npz``), used as the core's detection
  function when ``DetectorConfig.model`` is set.
- :mod:`stepsound.detect.cadence` — the causal, rhythm-aware cadence tracker
  [steps/min].
"""
