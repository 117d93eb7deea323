"""Spoken cues: phrases rendered once by an offline text-to-speech engine, cached as audio.

The live audio callback never runs a speech engine.  Before a stream starts,
every phrase a session may say is rendered (``espeak-ng -w file.wav``, a
subprocess of its own), resampled to the stream rate and handed to the
:class:`~stepsound.cue.metronome.Metronome` as a sound
(``Metronome(phrases=...)``); the metronome plays it on the same sample clock
as its clicks and ducks the clicks under it.

Rendered phrases are cached as WAV files (32-bit float) in
``<user data dir>/voice/``, keyed by the text, the voice, the speaking rate,
the output rate and the engine's version: a second session starts without
running the engine at all.  Cache files are written atomically; a damaged one
is rendered again.

Without a speech engine (``espeak-ng``, else ``espeak``, on ``PATH``)
:func:`load_phrases` returns no phrases and one line saying so; callers then
play the plain tone cues.

Examples
--------
>>> phrases, note = load_phrases({"say:on_target": "On target"}, 48000)   # doctest: +SKIP
>>> m = Metronome(48000, phrases=phrases)                                  # doctest: +SKIP
>>> m.trigger_cue("say:on_target")                                         # doctest: +SKIP
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from stepsound.errors import ParameterError, StepsoundError

__all__ = ["SpeechEngine", "SpeechError", "PHRASES", "CUE_PHRASES", "REMINDERS", "CALIBRATION_PHRASES",
           "find_engine", "render_phrase", "load_phrases", "phrase_name", "cache_dir", "NO_ENGINE_NOTE"]

#: Executables tried, in order.
ENGINES = ("espeak-ng", "espeak")
#: Bumped when the processing of a rendered phrase changes (old cache entries are then not used).
CACHE_FORMAT = 1
#: Default voice and speaking rate [words per minute] (clear over treadmill noise).
DEFAULT_VOICE = "en-us"
DEFAULT_WPM = 160
#: Longest a phrase may take to render [seconds] before the engine is given up on.
RENDER_TIMEOUT_S = 15.0
#: What the speech of a phrase is trimmed to: samples above this fraction of its peak.
TRIM_FRACTION = 0.01

#: Spoken forms of the coaching cues (metronome sound name → text).
CUE_PHRASES = {
    "speed_up": "Speed up",
    "slow_down": "Slow down",
    "on_target": "On target",
    "land_softer": "Land softer",
}
#: Form reminders from gait-retraining practice.
REMINDERS = {
    "quick_light": "Quick, light steps",
    "under_hips": "Land under your hips, with a soft, bent knee",
    "ball_of_foot": "Land on the ball of your foot",
}
#: Instructions of the guided live calibration.
CALIBRATION_PHRASES = {
    "cal_heel": "Run with heel landings now",
    "cal_forefoot": "Now land on the ball of your foot",
    "cal_done": "Done. You can stop running",
}
#: Every built-in phrase (key → text).
PHRASES = {**CUE_PHRASES, **REMINDERS, **CALIBRATION_PHRASES}

#: The line shown when no speech engine is installed.
NO_ENGINE_NOTE = "no speech engine found (install espeak-ng for spoken cues)"


def phrase_name(key: str) -> str:
    """Metronome sound name of a phrase key (``"speed_up"`` → ``"say:speed_up"``)."""
    return f"say:{key}"


class SpeechError(StepsoundError):
    """The speech engine failed on a phrase (one line naming it)."""


@dataclass(frozen=True)
class SpeechEngine:
    """An installed text-to-speech program.

    Attributes
    ----------
    name : str
        ``"espeak-ng"`` or ``"espeak"``.
    path : str
        The executable.
    version : str
        Its version line (part of the cache key: another version may sound different).
    """

    name: str
    path: str
    version: str


@functools.lru_cache(maxsize=8)
def _engine_at(path: str, name: str) -> SpeechEngine | None:
    try:
        res = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5.0,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    line = (res.stdout.strip().splitlines() or [""])[0]
    return SpeechEngine(name, path, line.split("Data at:")[0].strip() or name)


def find_engine(path: str | None = None) -> SpeechEngine | None:
    """The first working speech engine on ``PATH`` (or the given search path), else None."""
    search = os.environ.get("PATH", "") if path is None else path
    for name in ENGINES:
        exe = shutil.which(name, path=search)
        if exe:
            engine = _engine_at(exe, name)
            if engine is not None:
                return engine
    return None


def cache_dir() -> str:
    """Folder of the rendered phrases (``<user data dir>/voice``)."""
    from stepsound.store import data_dir

    return os.path.join(data_dir(), "voice")


def _key(engine: SpeechEngine, text: str, voice: str, wpm: int, sample_rate: int) -> str:
    ident = json.dumps([CACHE_FORMAT, engine.name, engine.version, voice, int(wpm), int(sample_rate), text])
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]


def _check(text, sample_rate, voice, wpm) -> None:
    if not isinstance(text, str) or not text.strip() or len(text) > 500 or "\0" in text:
        raise ParameterError(f"phrase {text!r:.60} must be 1-500 characters of text")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or not 8000 <= sample_rate <= 384000:
        raise ParameterError(f"sample_rate={sample_rate!r} must be a whole number within 8000-384000 [Hz]")
    if not isinstance(voice, str) or not voice or voice.startswith("-") or any(c.isspace() for c in voice):
        raise ParameterError(f"voice={voice!r} must be an espeak voice name such as 'en-us'")
    if isinstance(wpm, bool) or int(wpm) != wpm or not 80 <= wpm <= 450:
        raise ParameterError(f"wpm={wpm!r} must be a whole number of words per minute within 80-450")


def _synthesize(engine: SpeechEngine, text: str, voice: str, wpm: int) -> tuple[np.ndarray, int]:
    """Run the engine once (a subprocess writing a WAV file); return (samples, rate)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="stepsound-tts-") as tmp:
        wav = os.path.join(tmp, "phrase.wav")
        cmd = [engine.path, "-v", voice, "-s", str(int(wpm)), "-w", wav, "--", text]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SpeechError(f"{engine.name} took over {RENDER_TIMEOUT_S:g} s to say {text!r}") from None
        except OSError as exc:
            raise SpeechError(f"{engine.name} could not be run ({exc.strerror or exc})") from None
        if res.returncode != 0 or not os.path.exists(wav):
            why = " ".join((res.stderr or res.stdout or f"exit code {res.returncode}").split())[:160]
            raise SpeechError(f"{engine.name} failed to say {text!r} ({why})")
        try:
            x, rate = sf.read(wav, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise SpeechError(f"{engine.name} wrote no readable audio for {text!r} ({exc})") from None
    return x.mean(axis=1), int(rate)


def _prepare(x: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Trim the silence around the speech, resample to ``sample_rate``, peak 1.0."""
    from scipy.signal import resample_poly

    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not (peak > 0 and math.isfinite(peak)):
        raise SpeechError("the speech engine produced silence")
    loud = np.flatnonzero(np.abs(x) > TRIM_FRACTION * peak)
    margin = int(0.01 * rate)
    x = x[max(0, loud[0] - margin): loud[-1] + 1 + margin].astype(np.float64)
    if rate != sample_rate:
        g = math.gcd(int(sample_rate), int(rate))
        x = resample_poly(x, sample_rate // g, rate // g)
    n_fade = min(len(x) // 2, max(1, int(0.005 * sample_rate)))
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_fade) / n_fade)
    x[:n_fade] *= fade
    x[len(x) - n_fade:] *= fade[::-1]
    return (x / np.max(np.abs(x))).astype(np.float32)


def _read_cached(path: str, sample_rate: int) -> np.ndarray | None:
    import soundfile as sf

    try:
        y, rate = sf.read(path, dtype="float32")
    except Exception:   # missing, damaged or half-written by someone else: render again
        return None
    if rate != sample_rate or y.ndim != 1 or y.size == 0 or not np.all(np.isfinite(y)):
        return None
    return y


def _write_cached(path: str, y: np.ndarray, sample_rate: int) -> bool:
    import soundfile as sf

    from stepsound.atomic import atomic_path

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp:
            sf.write(tmp, y, sample_rate, format="WAV", subtype="FLOAT")
        return True
    except (OSError, StepsoundError, RuntimeError, sf.LibsndfileError):
        return False   # a read-only data dir: the phrase is used from memory, rendered again next time


@dataclass
class RenderStats:
    """What :func:`load_phrases` did: phrases rendered by the engine, taken from the cache, and time spent [s]."""

    rendered: int = 0
    cached: int = 0
    seconds: float = 0.0


def render_phrase(text: str, sample_rate: int, *, voice: str = DEFAULT_VOICE, wpm: int = DEFAULT_WPM,
                  engine: SpeechEngine | None = None, cache: str | None = None,
                  stats: RenderStats | None = None) -> np.ndarray:
    """The audio of one spoken phrase (from the cache, else rendered now and cached).

    Parameters
    ----------
    text : str
        What to say (1-500 characters).
    sample_rate : int [Hz]
        Rate of the returned samples (the stream's).
    voice : str
        Engine voice, e.g. ``"en-us"``, ``"en-gb"``, ``"de"``.
    wpm : int [words per minute]
        Speaking rate, 80-450.
    engine : SpeechEngine, optional
        Default: :func:`find_engine`.
    cache : str, optional
        Cache folder (default :func:`cache_dir`).
    stats : RenderStats, optional
        Counters to update.

    Returns
    -------
    np.ndarray [shape=(n,), float32]
        Mono speech, silence trimmed to 10 ms either side, peak 1.0.

    Raises
    ------
    SpeechError
        No engine, or the engine failed (one line).
    ParameterError
        Bad text, rate, voice or speaking rate.

    Notes
    -----
    Runs a subprocess and may take tens of milliseconds: call it before any
    audio stream starts, never from an audio callback.
    """
    _check(text, sample_rate, voice, wpm)
    engine = engine or find_engine()
    if engine is None:
        raise SpeechError(NO_ENGINE_NOTE)
    t0 = time.perf_counter()
    path = os.path.join(cache or cache_dir(), _key(engine, text, voice, wpm, sample_rate) + ".wav")
    y = _read_cached(path, int(sample_rate))
    if y is None:
        x, rate = _synthesize(engine, text, voice, int(wpm))
        y = _prepare(x, rate, int(sample_rate))
        _write_cached(path, y, int(sample_rate))
        if stats is not None:
            stats.rendered += 1
    elif stats is not None:
        stats.cached += 1
    if stats is not None:
        stats.seconds += time.perf_counter() - t0
    return y


def load_phrases(phrases: dict, sample_rate: int, *, voice: str = DEFAULT_VOICE, wpm: int = DEFAULT_WPM,
                 cache: str | None = None, engine: SpeechEngine | None = None,
                 stats: RenderStats | None = None) -> tuple[dict | None, str | None]:
    """Render (or load) a set of phrases for a stream, before it starts.

    Parameters
    ----------
    phrases : dict of str to str
        Sound name (e.g. ``phrase_name("speed_up")``) → text.
    sample_rate : int [Hz]
    voice, wpm, cache, engine, stats
        As for :func:`render_phrase`.

    Returns
    -------
    audio : dict of str to np.ndarray, or None
        Sound name → samples, for ``Metronome(phrases=...)``; None when no
        speech can be had (then play the tone cues).
    note : str or None
        When ``audio`` is None, what went wrong, for one line to the user
        (no engine, or why the engine failed); the caller says what it plays instead.

    Raises
    ------
    ParameterError
        Bad voice, speaking rate, rate or text (a usage error, not a fallback).
    """
    engine = engine or find_engine()
    if engine is None:
        return None, NO_ENGINE_NOTE
    out = {}
    try:
        for name, text in phrases.items():
            out[name] = render_phrase(text, sample_rate, voice=voice, wpm=wpm, engine=engine, cache=cache,
                                      stats=stats)
    except SpeechError as exc:
        return None, str(exc)
    return out, None
