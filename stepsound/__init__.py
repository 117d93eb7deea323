"""stepsound: real-time audio cadence and footstrike metronome.

Data flow (one module per box)::

    source -> _core (StepDetector) -> detect -> cadence -> grade -> coach
           -> metronome -> sink

``import stepsound`` never imports sounddevice: only :mod:`stepsound.audio.device`
does, lazily, so the package works on machines without PortAudio.
"""
__version__ = "0.1.0"

from stepsound.errors import (  # noqa: F401
    AudioDeviceError,
    AudioFileError,
    ParameterError,
    StepsoundError,
    StoreError,
)
