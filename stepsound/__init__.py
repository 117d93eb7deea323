"""stepsound: real-time audio cadence and footstrike metronome.

Data flow, one subpackage per stage::

    audio (files, devices) -> detect (Cython core, cadence) -> grade (impact, strike)
        -> coach (plans, cues) -> cue (metronome, render) -> audio out
    echo (round trip, echo cancellation) keeps our own sound out of what is detected;
    session drives it all live or replayed; store/report keep and show the history;
    cli parses the command line and calls the library.

The library for notebooks and scripts (numpydoc docstrings give shapes and units)::

    import stepsound
    a = stepsound.analyze_file("run.flac")          # or analyze_array(samples, sample_rate)
    a.summary()["median_cadence_spm"]               # steps per minute
    a.steps_frame()                                 # pandas DataFrame (optional pandas extra)

    engine = stepsound.Engine(44100)                # stream blocks yourself
    for event in engine.process(block):             # Step, StepOnsetEvent, CadenceTick
        ...

    stepsound.render_cue_track(stepsound.RenderSettings(
        "cues.flac", stepsound.MetronomeSettings(plan="plus5", baseline_spm=164)))

``import stepsound`` is light: names load on first use, and only
:mod:`stepsound.audio.device` imports sounddevice (so the package works on
machines without PortAudio).
"""
__version__ = "0.1.0"

from stepsound.errors import (  # noqa: F401
    AudioDeviceError,
    AudioFileError,
    ParameterError,
    StepsoundError,
    StoreError,
)

#: Public name -> module that defines it (imported on first use).
_API = {
    "analyze_file": "stepsound.analyze",
    "analyze_array": "stepsound.analyze",
    "analyze_files": "stepsound.analyze",
    "Analysis": "stepsound.analyze",
    "Engine": "stepsound.engine",
    "EngineFactory": "stepsound.engine",
    "Step": "stepsound.engine",
    "StepOnsetEvent": "stepsound.engine",
    "CadenceTick": "stepsound.engine",
    "DetectorConfig": "stepsound.detect.detector",
    "LandingGrader": "stepsound.grade.impact",
    "load_profile": "stepsound.grade.profiles",
    "CoachConfig": "stepsound.coach.coach",
    "load_plan": "stepsound.coach.plans",
    "Metronome": "stepsound.cue.metronome",
    "MetronomeSettings": "stepsound.cue.metronome",
    "make_metronome": "stepsound.cue.metronome",
    "RenderSettings": "stepsound.cue.render",
    "render_cue_track": "stepsound.cue.render",
    "SessionSettings": "stepsound.session.live",
    "SessionResult": "stepsound.session.live",
    "run_session": "stepsound.session.live",
    "SessionStore": "stepsound.store",
}

__all__ = ["__version__", "AudioDeviceError", "AudioFileError", "ParameterError", "StepsoundError", "StoreError",
           *_API]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'stepsound' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
