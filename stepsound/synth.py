"""Synthetic treadmill-run scenes with exact step ground truth.

Everything here is synthesised from first principles (no recorded samples):
a footfall model, a room, a microphone and a family of noise beds.  The step
detector is tested and benchmarked on these scenes, so every footfall comes
with its ground truth (:class:`StepTruth`).

Signal chain of :func:`synth_run`::

    step schedule (cadence, jitter, L/R asymmetry, pauses)
      -> footfalls (heel / forefoot impact model, per-step variation, level_db)
      -> room (direct path + early reflections + exponential diffuse tail)
      -> microphone colouration (causal high-pass, presence peak, low-pass)
      = footstep track
    noise bed (unit RMS) -> same microphone colouration -> scaled to snr_db
      = noise track
    audio = (footstep track + noise track) * mic gain [* peak limiter gain]

SNR definition
--------------
``snr_db = 10*log10(P_steps / P_noise)`` where ``P_steps`` is the mean power of
the footstep track (after room and microphone, i.e. as it appears in the output)
and ``P_noise`` the mean power of the noise track, both averaged over the whole
scene (pauses included).  The mic gain and the output limiter scale both tracks
alike and do not change it.

Determinism
-----------
A scene is a pure function of its arguments.  ``seed`` feeds a
:class:`numpy.random.SeedSequence` whose independent children drive the step
schedule, the footfall waveforms, the noise bed, the room and the microphone;
so the same seed with ``snr_db=None`` gives exactly the footstep track of the
noisy scene (tests use this to measure the realised SNR independently).
``runner_seed`` (default: ``seed``) draws the runner's traits (slap delay,
shoe brightness, which foot is louder...) so two scenes can share a runner.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

from stepsound.errors import AudioFileError, ParameterError

__all__ = [
    "NOISE_KINDS",
    "HELDOUT_NOISE_KINDS",
    "StepTruth",
    "Scene",
    "synth_run",
    "make_noise",
    "read_truth_csv",
    "read_truth_header",
    "write_truth_csv",
]

#: Names accepted by :func:`make_noise` and by ``synth_run(noise=...)``.
NOISE_KINDS: tuple[str, ...] = (
    "treadmill",
    "treadmill_b",
    "fan",
    "street",
    "babble",
    "music",
    "hum",
    "pink",
    "white",
    "silence",
)

#: Noise kinds reserved for held-out evaluation: never tune the detector on these.
HELDOUT_NOISE_KINDS: tuple[str, ...] = ("treadmill_b",)

#: Peak ceiling of a scene's audio (a limiter gain <= 1 is applied above it).
PEAK_CEILING = 0.9

#: Nominal footfall: the impacts of a step at level_db = 0 carry the energy of a
#: 100 ms window at this RMS (dBFS), before room, microphone and mic gain.
NOMINAL_STEP_RMS_DBFS = -30.0

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000

TRUTH_COLUMNS = ("onset_sample", "time_s", "side", "level_db", "strike", "second_impact_ms")


# --------------------------------------------------------------------------- truth


@dataclass
class StepTruth:
    """Ground truth of one footfall.

    Attributes
    ----------
    onset_sample : int [samples, int64]
        First contact: index in the scene's audio of the first sample of the
        footfall.  The room's direct path has zero delay, so reverb does not
        shift it; the microphone filters are causal.
    side : str
        ``"L"`` or ``"R"``; consecutive steps alternate.
    level_db : float [dB]
        Exact gain applied to this step relative to the scene's nominal step
        level (user level + natural jitter + left/right asymmetry).  The dry
        impacts of every footfall are first normalised to the nominal energy,
        so the energy of a step's impacts is proportional to
        ``10**(level_db/10)``.
    strike : str
        ``"heel"`` or ``"forefoot"``.
    second_impact_ms : float or None [milliseconds]
        Heel strikes: delay of the forefoot slap after heel contact
        (25–70 ms).  Forefoot strikes: None (the quiet heel settle that
        follows is listed in ``Scene.meta["step_details"]``).
    """

    onset_sample: int
    side: str
    level_db: float
    strike: str
    second_impact_ms: float | None = None


def write_truth_csv(path, steps: Sequence[StepTruth], sample_rate: int, header: dict | None = None) -> None:
    """Write step truth as CSV.

    The first line is a comment ``# key=value, key=value, ...`` starting with
    ``sample_rate``; then the header row :data:`TRUTH_COLUMNS`; then one row
    per step.  ``second_impact_ms`` is empty for None.

    Parameters
    ----------
    path : str or os.PathLike
    steps : sequence of StepTruth
    sample_rate : int [Hz]
        Used for the ``time_s`` column (``onset_sample / sample_rate``).
    header : dict, optional
        Extra ``key=value`` items for the comment line (values without commas).
    """
    items = {"sample_rate": int(sample_rate)}
    for key, value in (header or {}).items():
        if key != "sample_rate":
            items[key] = value
    with open(path, "w", newline="") as fh:
        fh.write("# " + ", ".join(f"{k}={_header_value(v)}" for k, v in items.items()) + "\n")
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(TRUTH_COLUMNS)
        for s in steps:
            writer.writerow(
                [
                    int(s.onset_sample),
                    f"{s.onset_sample / sample_rate:.6f}",
                    s.side,
                    f"{s.level_db:.4f}",
                    s.strike,
                    "" if s.second_impact_ms is None else f"{s.second_impact_ms:.3f}",
                ]
            )


def _header_value(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace(",", ";").replace("\n", " ")


def read_truth_header(path) -> dict:
    """Read the ``# key=value, ...`` comment line of a truth CSV.

    Values are returned as int, float, None or str.  Returns ``{}`` when the
    file has no comment line.
    """
    out: dict = {}
    with open(path, newline="") as fh:
        first = fh.readline()
    if not first.startswith("#"):
        return out
    for item in first[1:].split(","):
        if "=" not in item:
            continue
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value.strip())
    return out


def _parse_value(text: str):
    if text == "None":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def read_truth_csv(path) -> list[StepTruth]:
    """Read a truth CSV written by :func:`write_truth_csv` / :meth:`Scene.write`.

    Comment lines (``#``) are skipped; ``time_s`` is ignored (it is derived
    from ``onset_sample``).

    Returns
    -------
    list of StepTruth
    """
    try:
        with open(path, newline="") as fh:
            rows = [line for line in fh if line.strip() and not line.startswith("#")]
    except OSError as exc:
        raise AudioFileError(f"cannot read truth file {os.fspath(path)!r}: {exc}") from exc
    reader = csv.DictReader(rows)
    missing = set(TRUTH_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise AudioFileError(f"truth file {os.fspath(path)!r} lacks columns {sorted(missing)}")
    steps = []
    for row in reader:
        sim = row["second_impact_ms"].strip()
        steps.append(
            StepTruth(
                onset_sample=int(row["onset_sample"]),
                side=row["side"].strip(),
                level_db=float(row["level_db"]),
                strike=row["strike"].strip(),
                second_impact_ms=None if sim in ("", "None") else float(sim),
            )
        )
    return steps


@dataclass(repr=False)
class Scene:
    """A synthesised scene: audio plus exact ground truth.

    Attributes
    ----------
    audio : np.ndarray [shape=(n,), float32]
        Mono audio, peak <= :data:`PEAK_CEILING` (0.9).  It is *not* normalised
        up: ``mic_gain_db`` sets the level; only when the peak would exceed
        0.9 is a limiter gain applied (``meta["limiter_gain_db"]``).
    sample_rate : int [Hz]
    steps : list of StepTruth
        In time order.
    snr_db : float or None [dB]
        Realised SNR (module docstring); None when there is no noise.
    noise : str
        Noise kind, the noise file's path, or ``"silence"`` when there is no noise.
    meta : dict
        Everything else (JSON-serialisable): seeds, cadence schedule, runner
        traits, room and microphone parameters, track powers, gains
        (``meta["output_gain"]``: audio = output_gain * (steps + noise)),
        per-step details (``meta["step_details"]``).
    """

    audio: np.ndarray
    sample_rate: int
    steps: list
    snr_db: float | None
    noise: str
    meta: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"Scene({self.audio.shape[0] / self.sample_rate:.2f} s @ {self.sample_rate} Hz, "
            f"{len(self.steps)} steps, noise={self.noise!r}, snr_db={self.snr_db})"
        )

    @property
    def duration_s(self) -> float:
        """Length of the audio [seconds]."""
        return self.audio.shape[0] / self.sample_rate

    def onset_samples(self) -> np.ndarray:
        """Onset sample of every step [shape=(n_steps,), int64]."""
        return np.array([s.onset_sample for s in self.steps], dtype=np.int64)

    def onset_times_s(self) -> np.ndarray:
        """Onset time of every step [shape=(n_steps,), float64, seconds]."""
        return self.onset_samples() / float(self.sample_rate)

    def truth_header(self) -> dict:
        """Items of the truth CSV comment line."""
        m = self.meta
        return {
            "sample_rate": self.sample_rate,
            "snr_db": None if self.snr_db is None else round(self.snr_db, 4),
            "noise": self.noise,
            "seed": m.get("seed"),
            "runner_seed": m.get("runner_seed"),
            "strike": m.get("strike"),
            "duration_s": round(self.duration_s, 6),
            "n_samples": int(self.audio.shape[0]),
            "output_gain_db": round(m.get("output_gain_db", 0.0), 4),
        }

    def write(self, path_audio, path_truth_csv=None, *, path_meta_json=None, subtype: str | None = None) -> None:
        """Write the audio and its truth.

        Parameters
        ----------
        path_audio : str or os.PathLike
            Format chosen by suffix (``.flac``, ``.wav``, ...) by soundfile;
            FLAC defaults to 16-bit PCM, WAV to 32-bit float.
        path_truth_csv : str, os.PathLike, None or False
            Truth CSV (see :func:`write_truth_csv`).  None: next to the audio
            as ``<stem>.steps.csv``; False: do not write it.
        path_meta_json : str, os.PathLike or None
            When given, also write ``meta`` (plus the header items) as JSON.
        subtype : str, optional
            soundfile subtype override (e.g. ``"PCM_24"``).
        """
        import soundfile as sf

        path_audio = os.fspath(path_audio)
        root, ext = os.path.splitext(path_audio)
        if subtype is None:
            subtype = "FLOAT" if ext.lower() == ".wav" else None
        try:
            sf.write(path_audio, self.audio, self.sample_rate, subtype=subtype)
        except Exception as exc:  # soundfile raises several types
            raise AudioFileError(f"cannot write {path_audio!r}: {exc}") from exc
        if path_truth_csv is None:
            path_truth_csv = root + ".steps.csv"
        if path_truth_csv is not False:
            write_truth_csv(path_truth_csv, self.steps, self.sample_rate, self.truth_header())
        if path_meta_json is not None:
            with open(path_meta_json, "w") as fh:
                fh.write(self.meta_json())

    def meta_json(self) -> str:
        """``{"header": ..., "meta": ...}`` as JSON text, one line per meta item and per step detail."""
        def dump(v):
            return json.dumps(v, default=_json_default)

        items = []
        for key, value in self.meta.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                body = ",\n".join("   " + dump(v) for v in value)
                items.append(f"  {dump(key)}: [\n{body}\n  ]")
            else:
                items.append(f"  {dump(key)}: {dump(value)}")
        return '{\n "header": ' + dump(self.truth_header()) + ',\n "meta": {\n' + ",\n".join(items) + "\n }\n}\n"


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


# --------------------------------------------------------------------------- validation


def _check_sample_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        if isinstance(sample_rate, float) and math.isfinite(sample_rate) and sample_rate == int(sample_rate):
            sample_rate = int(sample_rate)
        else:
            raise ParameterError(f"sample_rate={sample_rate!r} must be a positive integer")
    sample_rate = int(sample_rate)
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ParameterError(
            f"sample_rate={sample_rate} must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz"
        )
    return sample_rate


def _check_real(name, value, lo=None, hi=None, lo_open=False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} must be a real number") from None
    ok = math.isfinite(x)
    if ok and lo is not None:
        ok = x > lo if lo_open else x >= lo
    if ok and hi is not None:
        ok = x <= hi
    if not ok:
        rng = []
        if lo is not None:
            rng.append(("> " if lo_open else ">= ") + f"{lo:g}")
        if hi is not None:
            rng.append(f"<= {hi:g}")
        raise ParameterError(f"{name}={value!r} must be finite" + (" and " + " and ".join(rng) if rng else ""))
    return x


def _cadence_schedule(cadence_spm) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints (times_s, spm) of a constant or piecewise-linear cadence."""
    if np.ndim(cadence_spm) == 0:
        c = _check_real("cadence_spm", cadence_spm, 20.0, 400.0)
        return np.array([0.0]), np.array([c])
    try:
        pts = np.asarray(cadence_spm, dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"cadence_spm={cadence_spm!r} must be a number or (time_s, spm) pairs") from None
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 1:
        raise ParameterError(f"cadence_spm must be a number or a sequence of (time_s, spm) pairs, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ParameterError("cadence_spm breakpoints must be finite")
    if np.any(np.diff(pts[:, 0]) <= 0):
        raise ParameterError("cadence_spm breakpoint times must be strictly increasing")
    if np.any(pts[:, 1] < 20) or np.any(pts[:, 1] > 400):
        raise ParameterError("cadence_spm values must be between 20 and 400 steps/min")
    return pts[:, 0].copy(), pts[:, 1].copy()


# --------------------------------------------------------------------------- small DSP helpers


def _clip_hz(f_hz: float, sample_rate: int, frac: float = 0.45) -> float:
    """Clip a frequency below ``frac`` times the sample rate (i.e. below Nyquist)."""
    return float(min(f_hz, frac * sample_rate))


def _onepole_lp(x: np.ndarray, fc_hz: float, sample_rate: int) -> np.ndarray:
    a = math.exp(-2.0 * math.pi * _clip_hz(fc_hz, sample_rate, 0.49) / sample_rate)
    return signal.lfilter([1.0 - a], [1.0, -a], x)


def _onepole_hp(x: np.ndarray, fc_hz: float, sample_rate: int) -> np.ndarray:
    a = math.exp(-2.0 * math.pi * _clip_hz(fc_hz, sample_rate, 0.49) / sample_rate)
    g = 0.5 * (1.0 + a)
    return signal.lfilter([g, -g], [1.0, -a], x)


def _resonator(x: np.ndarray, f_hz: float, tau_s: float, sample_rate: int) -> np.ndarray:
    """Two-pole resonator: impulse response exp(-t/tau) * sin(2 pi f t)."""
    w = 2.0 * math.pi * _clip_hz(f_hz, sample_rate, 0.45) / sample_rate
    r = math.exp(-1.0 / (tau_s * sample_rate))
    return signal.lfilter([math.sin(w)], [1.0, -2.0 * r * math.cos(w), r * r], x)


def _half_sine(duration_s: float, sample_rate: int) -> np.ndarray:
    """Half-sine force pulse of unit sum (a contact of given duration)."""
    m = max(1, int(round(duration_s * sample_rate)))
    p = np.sin(np.pi * (np.arange(m) + 0.5) / m)
    return p / p.sum()


def _energy(x: np.ndarray) -> float:
    """Sum of squares (einsum, not BLAS: immune to BLAS thread contention)."""
    return float(np.einsum("i,i->", x, x))


def _unit_energy(x: np.ndarray) -> np.ndarray:
    e = _energy(x)
    return x / math.sqrt(e) if e > 0 else x


def _db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def _butter_sos(order: int, cutoff_hz, btype: str, sample_rate: int) -> np.ndarray:
    """Butterworth SOS with band edges clipped below Nyquist (and above 1 Hz)."""
    if np.ndim(cutoff_hz):
        lo, hi = (float(c) for c in cutoff_hz)
        hi = _clip_hz(hi, sample_rate)
        lo = min(max(lo, 1.0), 0.5 * hi)
        return signal.butter(order, [lo, hi], btype=btype, fs=sample_rate, output="sos")
    fc = min(max(float(cutoff_hz), 1.0), 0.45 * sample_rate)
    return signal.butter(order, fc, btype=btype, fs=sample_rate, output="sos")


def _peaking_sos(f_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """Second-order peaking equaliser (bilinear transform of the analog prototype)."""
    w0 = 2.0 * math.pi * _clip_hz(f_hz, sample_rate, 0.4) / sample_rate
    a = 10.0 ** (gain_db / 40.0)
    alpha = math.sin(w0) / (2.0 * q)
    b = np.array([1.0 + alpha * a, -2.0 * math.cos(w0), 1.0 - alpha * a])
    den = np.array([1.0 + alpha / a, -2.0 * math.cos(w0), 1.0 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def _sos_power_gain(sos: np.ndarray, sample_rate: int) -> float:
    """Output power of ``sos`` for unit-variance white input (sum of squared impulse response)."""
    n = max(4096, int(2.0 * sample_rate))
    imp = np.zeros(n)
    imp[0] = 1.0
    h = signal.sosfilt(sos, imp)
    return _energy(h)


class _SOS:
    """A stateful SOS filter for chunked processing."""

    def __init__(self, sos: np.ndarray):
        self.sos = np.atleast_2d(np.asarray(sos, dtype=float))
        self.zi = np.zeros((self.sos.shape[0], 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y, self.zi = signal.sosfilt(self.sos, x, zi=self.zi)
        return y


class _Wander:
    """Slow smooth random modulation, a deterministic function of absolute time.

    ``value(t_s)`` is a sum of sinusoids of the given periods with random
    phases, scaled so its RMS is ``depth``.
    """

    def __init__(self, rng, periods_s, depth: float):
        self.periods = np.asarray(periods_s, dtype=float) * rng.uniform(0.8, 1.25, len(periods_s))
        self.phases = rng.uniform(0, 2 * np.pi, len(periods_s))
        w = rng.uniform(0.5, 1.0, len(periods_s))
        self.weights = depth * w / math.sqrt(0.5 * float(np.sum(w * w)))

    def __call__(self, t_s: np.ndarray) -> np.ndarray:
        return _smooth_eval(self._eval, t_s)

    def _eval(self, t_s):
        out = np.zeros_like(t_s)
        for p, ph, w in zip(self.periods, self.phases, self.weights):
            out += w * np.sin(2 * np.pi * t_s / p + ph)
        return out


def _smooth_eval(func, t_s: np.ndarray, step: int = 16) -> np.ndarray:
    """Evaluate a slowly varying (< ~50 Hz) function of time on every ``step``-th
    sample and interpolate linearly in between (cheap, error < 1e-3)."""
    m = len(t_s)
    if m <= 4 * step:
        return func(t_s)
    n_seg = -(-m // step)  # segments of `step` samples (the last one padded)
    tc = t_s[0] + (t_s[1] - t_s[0]) * step * np.arange(n_seg + 1)  # uniform grid, one past the end
    v = func(tc)
    ramp = np.arange(step) / step
    out = (v[:-1, None] + (v[1:] - v[:-1])[:, None] * ramp[None, :]).ravel()
    return out[:m]


def _sin_am(freq_hz: float, depth: float, t_s: np.ndarray, sample_rate: int, phase: float = 0.0) -> np.ndarray:
    """``1 + depth * sin(2 pi f t + phase)`` for a modulation, evaluated on a grid >= 40 f."""
    step = int(max(1, min(32, sample_rate // max(1.0, 40.0 * freq_hz))))
    return _smooth_eval(lambda t: 1.0 + depth * np.sin(2 * np.pi * freq_hz * t + phase), t_s, step)


class _HarmonicOsc:
    """Harmonic oscillator bank with continuous phase across chunks.

    Harmonic k is ``amps[k-1] * sin(k * phase + phi_k)``; harmonics at or above
    0.45 * sample_rate (at the chunk's highest f0) are left out.  One period of
    the sum is tabulated (4096 points) and read with linear interpolation, so
    the cost does not grow with the number of harmonics.
    """

    table_size = 4096

    def __init__(self, rng, amps):
        self.amps = np.asarray(amps, dtype=float)
        self.phis = rng.uniform(0, 2 * np.pi, len(amps))
        self.cycles = 0.0  # phase in cycles, in [0, 1)
        self._tables: dict = {}

    def _table(self, n_harmonics: int) -> np.ndarray:
        tab = self._tables.get(n_harmonics)
        if tab is None:
            theta = 2 * np.pi * np.arange(self.table_size + 1) / self.table_size
            tab = np.zeros(self.table_size + 1)
            for k in range(1, n_harmonics + 1):
                tab += self.amps[k - 1] * np.sin(k * theta + self.phis[k - 1])
            self._tables[n_harmonics] = tab
        return tab

    def __call__(self, f0_hz: np.ndarray, sample_rate: int) -> np.ndarray:
        m = len(f0_hz)
        if m == 0:
            return np.zeros(0)
        fmax = float(np.max(f0_hz))
        n_h = int(np.sum(np.arange(1, len(self.amps) + 1) * fmax < 0.45 * sample_rate))
        inc = f0_hz / sample_rate
        cyc = np.cumsum(inc)
        cyc += self.cycles - inc[0]
        self.cycles = float((cyc[-1] + inc[-1]) % 1.0)
        pos = (cyc % 1.0) * self.table_size
        i0 = pos.astype(np.int64)
        np.minimum(i0, self.table_size - 1, out=i0)
        frac = pos - i0
        tab = self._table(n_h)
        lo = tab[i0]
        return lo + frac * (tab[i0 + 1] - lo)

    def rms(self, f0_hz: float, sample_rate: int) -> float:
        k = np.arange(1, len(self.amps) + 1)
        keep = k * f0_hz < 0.45 * sample_rate
        return math.sqrt(0.5 * float(np.sum(self.amps[keep] ** 2)))


# --------------------------------------------------------------------------- noise beds


class _Source:
    """Base class of the chunked noise generators: ``render(m)`` returns the next m samples."""

    def __init__(self, n_total: int, sample_rate: int, rng: np.random.Generator):
        self.n_total = int(n_total)
        self.sample_rate = int(sample_rate)
        self.rng = rng
        self.pos = 0
        self.params: dict = {}

    def render(self, m: int) -> np.ndarray:
        y = self._render(self.pos, int(m)) if m > 0 else np.zeros(0)
        self.pos += m
        return y

    def _t(self, start: int, m: int) -> np.ndarray:
        return (start + np.arange(m)) / self.sample_rate

    def _render(self, start: int, m: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class _ColouredNoise:
    """White noise through a fixed SOS filter, scaled to unit RMS (stateful)."""

    def __init__(self, rng, sos, sample_rate):
        self.rng = rng
        self.filt = _SOS(sos)
        self.scale = 1.0 / math.sqrt(_sos_power_gain(self.filt.sos, sample_rate))

    def __call__(self, m: int) -> np.ndarray:
        return self.scale * self.filt(self.rng.standard_normal(m))


class _Silence(_Source):
    def _render(self, start, m):
        return np.zeros(m)


class _White(_Source):
    def _render(self, start, m):
        return self.rng.standard_normal(m)


def _pink_sos(sample_rate: int) -> np.ndarray:
    """-3 dB/octave filter from 10 Hz to Nyquist: alternating real poles and zeros.

    Poles are spaced a factor 4 apart (two octaves) and each zero sits one
    octave above its pole, so the slope alternates between -6 and 0 dB/oct
    and averages -3 dB/oct (ripple about +-0.5 dB).
    """
    nyq = 0.5 * sample_rate
    poles, zeros = [], []
    f = 5.0
    while f < nyq:
        poles.append(f)
        zeros.append(min(2.0 * f, 0.98 * nyq))
        f *= 4.0
    z_a = [-2 * np.pi * f for f in zeros]
    p_a = [-2 * np.pi * f for f in poles]
    k_a = 1.0
    z_d, p_d, k_d = signal.bilinear_zpk(z_a, p_a, k_a, fs=sample_rate)
    sos = signal.zpk2sos(z_d, p_d, k_d)
    return sos


class _Pink(_Source):
    def __init__(self, n_total, sample_rate, rng):
        super().__init__(n_total, sample_rate, rng)
        self.noise = _ColouredNoise(rng, _pink_sos(sample_rate), sample_rate)

    def _render(self, start, m):
        return self.noise(m)


class _Hum(_Source):
    """Mains hum: 50 or 60 Hz and harmonics, odd harmonics strong; purely tonal."""

    def __init__(self, n_total, sample_rate, rng):
        super().__init__(n_total, sample_rate, rng)
        self.f0 = float(rng.choice([50.0, 60.0])) + rng.uniform(-0.03, 0.03)
        k = np.arange(1, 13)
        amps = np.where(k % 2 == 1, 1.0, 0.35) * k ** -0.7 * _db_arr(rng.uniform(-4, 2, len(k)))
        amps[0] = 1.0
        self.osc = _HarmonicOsc(rng, amps)
        self.wander = _Wander(rng, (7.0, 19.0), 0.01)
        self.params = {"mains_hz": self.f0}

    def _render(self, start, m):
        t = self._t(start, m)
        return self.osc(np.full(m, self.f0), self.sample_rate) * (1.0 + self.wander(t))


def _db_arr(x):
    return 10.0 ** (np.asarray(x) / 20.0)


class _Fan(_Source):
    """Room fan: broadband airflow noise, blade-pass tone and slow turbulence."""

    def __init__(self, n_total, sample_rate, rng):
        super().__init__(n_total, sample_rate, rng)
        fs = sample_rate
        self.air = _ColouredNoise(rng, _butter_sos(2, (60.0, rng.uniform(700, 2000)), "bandpass", fs), fs)
        self.rot_hz = rng.uniform(12.0, 25.0)
        blades = int(rng.integers(3, 8))
        self.bpf_hz = self.rot_hz * blades
        amps = np.array([1.0, 0.5, 0.25, 0.12]) * _db_arr(rng.uniform(-3, 3, 4))
        self.osc = _HarmonicOsc(rng, amps)
        self.tone_gain = _db_arr(rng.uniform(-14, -8)) / self.osc.rms(self.bpf_hz, fs)
        self.wander = _Wander(rng, (3.0, 7.0, 11.0), 0.1)
        self.params = {"rotation_hz": self.rot_hz, "blade_pass_hz": self.bpf_hz}

    def _render(self, start, m):
        t = self._t(start, m)
        am = self.wander(t) + _sin_am(self.rot_hz, 0.05, t, self.sample_rate)
        return self.air(m) * am + self.tone_gain * self.osc(np.full(m, self.bpf_hz), self.sample_rate)


class _Treadmill(_Source):
    """Treadmill (AC motor): motor hum with harmonics wandering with belt speed,
    belt hiss, a belt-seam thump once per belt revolution and a cooling fan.

    Component RMS levels are set relative to the hum; the thump's peak is set
    relative to the bed's RMS (``seam_thump_peak_db``), which puts it about
    15–20 dB below a footfall's peak at +6 dB SNR.
    """

    seam_thump_peak_db = 10.0

    def __init__(self, n_total, sample_rate, rng):
        super().__init__(n_total, sample_rate, rng)
        fs = sample_rate
        self.speed0 = rng.uniform(2.2, 3.6)  # m/s
        self.belt_period_s = rng.uniform(0.8, 1.5)  # one belt revolution at the mean speed
        belt_len = self.belt_period_s * self.speed0  # m
        self.speed_wander = _Wander(rng, (23.0, 41.0, 67.0), 0.012)
        self.motor0 = rng.uniform(60.0, 250.0)  # Hz
        k = np.arange(1, 13)
        amps = k ** -0.9 * _db_arr(rng.uniform(-10, 2, len(k)))
        amps[0] = 1.0
        self.osc = _HarmonicOsc(rng, amps)
        hum_rms = self.osc.rms(self.motor0, fs)
        self.hum_gain = 1.0 / hum_rms
        self.roller_hz = self.speed0 / (math.pi * rng.uniform(0.045, 0.06))
        self.hiss = _ColouredNoise(rng, _butter_sos(2, (rng.uniform(500, 1200), rng.uniform(5000, 9000)), "bandpass", fs), fs)
        self.hiss_gain = _db_arr(rng.uniform(-9, -4))
        self.fan = _ColouredNoise(rng, _butter_sos(2, rng.uniform(250, 500), "lowpass", fs), fs)
        self.fan_gain = _db_arr(rng.uniform(-12, -6))
        self.fan_wander = _Wander(rng, (5.0, 13.0), 0.12)
        bed_rms = math.sqrt(1.0 + self.hiss_gain**2 + self.fan_gain**2)
        # seam thump times: the belt position crosses a multiple of its length
        dt = 0.01
        n_grid = int(math.ceil(n_total / fs / dt)) + 2
        tg = np.arange(n_grid) * dt
        pos = np.cumsum(self.speed0 * (1.0 + self.speed_wander(tg))) * dt + rng.uniform(0, belt_len)
        laps = np.floor(pos / belt_len)
        idx = np.nonzero(np.diff(laps) > 0)[0] + 1
        self.thump_samples = np.round(tg[idx] * fs).astype(np.int64)
        self.thump_gains = _db_arr(rng.normal(0.0, 1.2, len(idx)))
        self.thump_template = self._thump(rng, fs)
        self.thump_template *= _db_arr(self.seam_thump_peak_db) * bed_rms / np.max(np.abs(self.thump_template))
        self.params = {
            "belt_speed_m_s": self.speed0,
            "belt_length_m": belt_len,
            "belt_period_s": self.belt_period_s,
            "motor_hz": self.motor0,
            "roller_hz": self.roller_hz,
            "seam_thump_peak_db_re_bed_rms": self.seam_thump_peak_db,
        }

    @staticmethod
    def _thump(rng, fs):
        n = int(0.15 * fs)
        x = np.zeros(n)
        p = _half_sine(rng.uniform(0.003, 0.006), fs)
        x[: len(p)] = p
        body = _unit_energy(_resonator(x, rng.uniform(90, 180), rng.uniform(0.01, 0.025), fs))
        burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.002 * fs))
        click = _unit_energy(_onepole_lp(burst, 2000.0, fs))
        y = body + _db(-10.0) * click
        y *= np.minimum(1.0, (n - np.arange(n)) / (0.01 * fs))
        return y

    def _render(self, start, m):
        fs = self.sample_rate
        t = self._t(start, m)
        speed = 1.0 + self.speed_wander(t)
        hum = self.hum_gain * self.osc(self.motor0 * speed, fs) * _sin_am(self.roller_hz, 0.04, t, fs)
        hiss = self.hiss_gain * self.hiss(m) * _sin_am(1.0 / self.belt_period_s, 0.08, t, fs)
        fan = self.fan_gain * self.fan(m) * (1.0 + self.fan_wander(t))
        y = hum + hiss + fan
        _add_events(y, start, self.thump_samples, self.thump_gains, self.thump_template)
        return y


def _add_events(y, start, event_samples, gains, template):
    """Add ``gain * template`` at each event sample overlapping ``y`` (y starts at ``start``)."""
    m, L = len(y), len(template)
    lo = np.searchsorted(event_samples, start - L + 1)
    hi = np.searchsorted(event_samples, start + m)
    for e, g in zip(event_samples[lo:hi], gains[lo:hi]):
        a = int(e) - start
        s0, s1 = max(0, a), min(m, a + L)
        if s1 > s0:
            y[s0:s1] += g * template[s0 - a : s1 - a]


class _TreadmillB(_Source):
    """A different treadmill (DC motor, PWM drive): commutator whine at
    0.7–2.2 kHz, PWM carrier, brush noise, dark deck whoosh modulated by the
    roller, bearing rumble; no seam thump.  Held-out evaluation noise."""

    def __init__(self, n_total, sample_rate, rng):
        super().__init__(n_total, sample_rate, rng)
        fs = sample_rate
        self.speed0 = rng.uniform(2.2, 3.6)
        self.speed_wander = _Wander(rng, (17.0, 31.0, 53.0), 0.015)
        self.whine0 = min(rng.uniform(700.0, 2200.0), 0.3 * fs)
        self.osc = _HarmonicOsc(rng, [1.0, 0.3 * rng.uniform(0.5, 1.5), 0.1])
        self.whine_gain = _db_arr(rng.uniform(-10, -4)) / self.osc.rms(self.whine0, fs)
        self.rot_hz = self.whine0 / int(rng.integers(16, 33))
        carrier = rng.uniform(3000.0, 7800.0)
        self.carrier_hz = carrier if carrier < 0.42 * fs else None
        self.carrier_phase = rng.uniform(0, 2 * np.pi)
        self.carrier_gain = math.sqrt(2) * _db_arr(rng.uniform(-24, -16))
        self.brush = _ColouredNoise(rng, _butter_sos(2, (2000.0, 5000.0), "bandpass", fs), fs)
        self.brush_gain = _db_arr(rng.uniform(-14, -8))
        sos = np.concatenate([_butter_sos(2, rng.uniform(600, 1500), "lowpass", fs), _butter_sos(1, 40.0, "highpass", fs)])
        self.whoosh = _ColouredNoise(rng, sos, fs)
        self.roller_hz = self.speed0 / (math.pi * rng.uniform(0.04, 0.05))
        self.rumble_hz = rng.uniform(25.0, 40.0)
        self.rumble_phase = rng.uniform(0, 2 * np.pi)
        self.rumble_gain = math.sqrt(2) * _db_arr(rng.uniform(-9, -4))
        self.params = {
            "belt_speed_m_s": self.speed0,
            "whine_hz": self.whine0,
            "pwm_carrier_hz": self.carrier_hz,
            "roller_hz": self.roller_hz,
        }

    def _render(self, start, m):
        fs = self.sample_rate
        t = self._t(start, m)
        speed = 1.0 + self.speed_wander(t)
        whine = self.whine_gain * self.osc(self.whine0 * speed, fs)
        brush = self.brush_gain * self.brush(m) * _sin_am(self.rot_hz, 0.6, t, fs)
        whoosh = self.whoosh(m) * _sin_am(self.roller_hz, 0.15, t, fs)
        rumble = self.rumble_gain * np.sin(2 * np.pi * self.rumble_hz * t + self.rumble_phase)
        y = whine + brush + whoosh + rumble
        if self.carrier_hz is not None:
            y += self.carrier_gain * np.sin(2 * np.pi * self.carrier_hz * t + self.carrier_phase)
        return y


class _Street(_Source):
    """Street: low traffic rumble, distant wash, and cars passing by (several-second swells)."""

    def __init__(self, n_total, sample_rate, rng):
        super().__init__(n_total, sample_rate, rng)
        fs = sample_rate
        sos = np.concatenate([_butter_sos(1, 25.0, "lowpass", fs), _butter_sos(2, rng.uniform(150, 300), "lowpass", fs), _butter_sos(1, 15.0, "highpass", fs)])
        self.rumble = _ColouredNoise(rng, sos, fs)
        self.wash = _ColouredNoise(rng, _butter_sos(2, (200.0, 1500.0), "bandpass", fs), fs)
        self.wash_gain = _db_arr(rng.uniform(-14, -8))
        self.wash_wander = _Wander(rng, (9.0, 23.0), 0.2)
        self.tyre = _ColouredNoise(rng, _butter_sos(2, (rng.uniform(250, 450), rng.uniform(2000, 4000)), "bandpass", fs), fs)
        duration = n_total / fs
        mean_gap = rng.uniform(5.0, 12.0)
        t, cars = -40.0, []
        while t < duration + 40.0:
            t += rng.exponential(mean_gap)
            cars.append((t, rng.uniform(1.2, 3.5), _db(rng.uniform(-3, 8)), rng.uniform(25, 60), rng.uniform(0, 2 * np.pi), rng.uniform(8, 20)))
        self.cars = cars
        self.car_t0 = np.array([c[0] for c in cars])
        self.params = {"mean_car_gap_s": mean_gap, "n_cars": len(cars)}

    def _render(self, start, m):
        t = self._t(start, m)
        env = np.zeros(m)
        tones = np.zeros(m)
        t_lo, t_hi = t[0] if m else 0.0, t[-1] if m else 0.0
        for t0, w, g, f_eng, ph, v in self.cars:
            if t0 + 20 * w < t_lo or t0 - 20 * w > t_hi:
                continue
            x = (t - t0) / w
            a = g / np.sqrt(1.0 + x * x)
            env += a
            near = np.abs(x) < 6
            if near.any():
                xs = x[near]
                doppler = 1.0 - (v / 343.0) * xs / np.sqrt(1.0 + xs * xs)
                # instantaneous phase of a Doppler-shifted engine tone (closed form of the integral)
                phase = 2 * np.pi * f_eng * (t[near] - t0 - (v / 343.0) * w * (np.sqrt(1.0 + xs * xs)))
                tones[near] += 0.3 * a[near] * (np.sin(phase + ph) + 0.5 * np.sin(2 * phase + 2 * ph)) * (doppler > 0)
        wash = self.wash_gain * self.wash(m) * (1.0 + self.wash_wander(t))
        return self.rumble(m) + wash + self.tyre(m) * env + tones


class _Babble(_Source):
    """Several distant voices: glottal pulse trains through formant resonances,
    syllabic envelopes at 3–6 Hz in talk spurts, occasional fricatives."""

    def __init__(self, n_total, sample_rate, rng):
        super().__init__(n_total, sample_rate, rng)
        fs = sample_rate
        duration = n_total / fs
        self.voices = []
        n_voices = int(rng.integers(4, 7))
        for _ in range(n_voices):
            female = rng.random() < 0.5
            f0 = rng.uniform(170, 240) if female else rng.uniform(95, 135)
            formants = [rng.uniform(400, 750), rng.uniform(1000, 2200), rng.uniform(2400, 3200)]
            bws = rng.uniform(80, 200, 3)
            bands = []
            for f, bw in zip(formants, bws):
                f = _clip_hz(f, fs, 0.42)
                lo, hi = max(50.0, f - bw / 2), _clip_hz(f + bw / 2, fs, 0.45)
                bands.append(_SOS(signal.butter(1, [lo, hi], btype="bandpass", fs=fs, output="sos")))
            syll = []  # (start_s, dur_s, g1, g2, g3, fricative_gain)
            t = rng.uniform(-1.0, 1.0)
            while t < duration + 1.0:
                spurt_end = t + rng.uniform(1.0, 4.0)
                rate = rng.uniform(3.0, 6.0)
                while t < spurt_end:
                    dur = rng.uniform(0.12, 0.25)
                    fric = rng.uniform(0.3, 0.7) if rng.random() < 0.35 else 0.0
                    syll.append((t, dur, rng.uniform(0.6, 1.0), rng.uniform(0.2, 1.0), rng.uniform(0.05, 0.4), fric))
                    t += rng.uniform(0.75, 1.25) / rate
                t += rng.uniform(0.2, 1.2)
            voice = {
                "f0": f0,
                "wander": _Wander(rng, (1.3, 2.9, 5.1), 0.06),
                "phase": rng.uniform(0, 1),
                "bands": bands,
                "band_gain": [3.0, 2.0, 1.5],
                "glottal": _SOS(_butter_sos(1, 800.0, "lowpass", fs)),
                "syll": np.array(syll),
                "gain": _db(rng.uniform(-6, 0)),
            }
            self.voices.append(voice)
        # one aspiration and one fricative noise stream shared by all voices (each voice
        # filters / gates it differently; sharing is inaudible and halves the cost)
        self.fric = _SOS(_butter_sos(2, _clip_hz(3500.0, fs, 0.4), "highpass", fs))
        self.params = {"n_voices": n_voices}

    def _render(self, start, m):
        fs = self.sample_rate
        t = self._t(start, m)
        out = np.zeros(m)
        if m == 0:
            return out
        aspiration = 0.03 * self.rng.standard_normal(m)
        fric_noise = 0.05 * self.fric(self.rng.standard_normal(m))
        for v in self.voices:
            f0 = v["f0"] * (1.0 + v["wander"](t))
            ph = v["phase"] + np.cumsum(f0 / fs)
            pulses = np.diff(np.floor(ph), prepend=math.floor(v["phase"]))
            v["phase"] = float(ph[-1] % 1.0)
            exc = v["glottal"](pulses) + aspiration
            syl = v["syll"]
            sel = (syl[:, 0] < t[-1]) & (syl[:, 0] + syl[:, 1] + 0.1 > t[0])
            gains = np.zeros((3, m))
            fric_env = np.zeros(m)
            for s0, dur, g1, g2, g3, fric in syl[sel]:
                # sample range of the syllable (and its leading fricative) inside this chunk
                i0 = max(0, int(math.floor((s0 - 0.07) * fs)) - start)
                i1 = min(m, int(math.ceil((s0 + dur) * fs)) + 1 - start)
                if i1 <= i0:
                    continue
                u = t[i0:i1] - s0
                env = _syllable_env(u, dur)
                gains[0, i0:i1] += g1 * env
                gains[1, i0:i1] += g2 * env
                gains[2, i0:i1] += g3 * env
                if fric > 0:
                    fric_env[i0:i1] += fric * _syllable_env(u + 0.07, 0.07)
            voice = sum(bg * gains[i] * band(exc) for i, (band, bg) in enumerate(zip(v["bands"], v["band_gain"])))
            voice = voice + fric_env * fric_noise
            out += v["gain"] * voice
        return out


def _syllable_env(u, dur):
    """Raised-cosine attack (25 %), hold, raised-cosine release (35 %) over ``dur`` seconds; u = time since start."""
    att, rel = 0.25 * dur, 0.35 * dur
    env = np.zeros_like(u)
    a = (u >= 0) & (u < att)
    env[a] = 0.5 - 0.5 * np.cos(np.pi * u[a] / att)
    h = (u >= att) & (u < dur - rel)
    env[h] = 1.0
    r = (u >= dur - rel) & (u < dur)
    env[r] = 0.5 + 0.5 * np.cos(np.pi * (u[r] - (dur - rel)) / rel)
    return env


class _Music(_Source):
    """Synthetic background music: sustained triads with a bass note, one per
    bar, plus a soft kick (beats 1 and 3) and hat (eighth notes) at a tempo
    chosen away from the runner's cadence (and its double and half)."""

    def __init__(self, n_total, sample_rate, rng, avoid_bpm=()):
        super().__init__(n_total, sample_rate, rng)
        fs = sample_rate
        avoid = [float(a) for a in avoid_bpm]
        tempo = rng.uniform(92.0, 140.0)
        for _ in range(200):
            if all(abs(r * tempo - a) > 0.08 * a for a in avoid for r in (0.5, 1.0, 2.0)):
                break
            tempo = rng.uniform(92.0, 140.0)
        self.tempo_bpm = tempo
        self.beat_s = 60.0 / tempo
        bar_s = 4 * self.beat_s
        duration = n_total / fs
        root = int(rng.integers(45, 57))
        degrees = [(0, "maj"), (9, "min"), (5, "maj"), (7, "maj"), (2, "min"), (4, "min")]
        prog = [degrees[i] for i in rng.choice(len(degrees), 4, replace=False)]
        self.chords = []  # (start_s, end_s, freqs)
        k = 0
        t = 0.0
        while t < duration + bar_s:
            off, q = prog[k % 4]
            base = root + off
            notes = [base + 12, base + 12 + (4 if q == "maj" else 3), base + 19, base]
            self.chords.append((t, t + bar_s, [440.0 * 2 ** ((n - 69) / 12) for n in notes]))
            t += bar_s
            k += 1
        self.harm = np.array([1.0, 0.45, 0.2, 0.1])
        self.kick_times = []
        self.hat_times = []
        n_beats = int(duration / self.beat_s) + 2
        for b in range(n_beats):
            if b % 4 in (0, 2):
                self.kick_times.append(b * self.beat_s)
            self.hat_times.append(b * self.beat_s)
            self.hat_times.append((b + 0.5) * self.beat_s)
        self.kick_samples = np.round(np.array(self.kick_times) * fs).astype(np.int64)
        self.hat_samples = np.round(np.array(self.hat_times) * fs).astype(np.int64)
        n_k = int(0.4 * fs)
        tk = np.arange(n_k) / fs
        f_k = 45.0 + 70.0 * np.exp(-tk / 0.03)
        kick = np.sin(2 * np.pi * np.cumsum(f_k) / fs) * np.exp(-tk / 0.12) * np.minimum(1.0, tk / 0.002)
        chord_peak = 2.0
        self.kick = kick * 0.5 * chord_peak
        n_h = int(0.08 * fs)
        hat = rng.standard_normal(n_h) * np.exp(-np.arange(n_h) / (0.025 * fs))
        hat = signal.sosfilt(_butter_sos(2, _clip_hz(6000.0, fs, 0.4), "highpass", fs), hat)
        self.hat = hat / np.max(np.abs(hat)) * 0.25 * chord_peak
        self.kick_gains = np.ones(len(self.kick_samples))
        self.hat_gains = np.where(np.arange(len(self.hat_samples)) % 2 == 1, 1.0, 0.6)
        self.detune = rng.uniform(-0.002, 0.002, 4)
        self.params = {"tempo_bpm": tempo, "root_midi": root}

    def _render(self, start, m):
        fs = self.sample_rate
        t = self._t(start, m)
        y = np.zeros(m)
        if m == 0:
            return y
        for c0, c1, freqs in self.chords:
            if c1 + 0.4 < t[0] or c0 > t[-1]:
                continue
            u = t - c0
            env = np.clip(u / 0.08, 0, 1) * np.clip(1.0 - (t - c1) / 0.4, 0, 1) * np.exp(-np.clip(u, 0, None) / 6.0)
            act = env > 0
            if not act.any():
                continue
            ta = t[act]
            s = np.zeros(act.sum())
            for i, f in enumerate(freqs):
                f = f * (1.0 + self.detune[i])
                amp = 0.8 if i == 3 else 0.5
                for h, a in enumerate(self.harm, start=1):
                    if h * f < 0.45 * fs:
                        s += amp * a * np.sin(2 * np.pi * h * f * ta + i + h)
            y[act] += env[act] * s
        _add_events(y, start, self.kick_samples, self.kick_gains, self.kick)
        _add_events(y, start, self.hat_samples, self.hat_gains, self.hat)
        return y


class _FileNoise(_Source):
    """A noise bed read from an audio file: mono, resampled, looped with a crossfade."""

    def __init__(self, path, n_total, sample_rate, rng):
        super().__init__(n_total, sample_rate, rng)
        import soundfile as sf

        try:
            x, file_rate = sf.read(os.fspath(path), dtype="float64", always_2d=True)
        except Exception as exc:
            raise AudioFileError(f"cannot read noise file {os.fspath(path)!r}: {exc}") from exc
        x = x.mean(axis=1)
        if x.size == 0 or not np.all(np.isfinite(x)):
            raise AudioFileError(f"noise file {os.fspath(path)!r} has no usable audio")
        if file_rate != sample_rate:
            frac = Fraction(int(sample_rate), int(file_rate)).limit_denominator(1000)
            x = signal.resample_poly(x, frac.numerator, frac.denominator)
        x = x - x.mean()
        xf = min(int(0.1 * sample_rate), len(x) // 4)
        if xf > 1:
            w = np.sin(0.5 * np.pi * (np.arange(xf) + 0.5) / xf)
            loop = x[: len(x) - xf].copy()
            loop[:xf] = x[:xf] * w + x[len(x) - xf :] * np.sqrt(1.0 - w * w)
        else:
            loop = x
        self.loop = loop
        self.offset = int(rng.integers(len(loop)))
        self.params = {"file": os.fspath(path), "file_sample_rate": int(file_rate), "loop_s": len(loop) / sample_rate, "offset_s": self.offset / sample_rate}

    def _render(self, start, m):
        idx = (self.offset + start + np.arange(m)) % len(self.loop)
        return self.loop[idx]


_SOURCES = {
    "treadmill": _Treadmill,
    "treadmill_b": _TreadmillB,
    "fan": _Fan,
    "street": _Street,
    "babble": _Babble,
    "hum": _Hum,
    "pink": _Pink,
    "white": _White,
    "silence": _Silence,
}


def _make_source(kind: str, n_total: int, sample_rate: int, rng, avoid_bpm=()) -> _Source:
    if not isinstance(kind, (str, os.PathLike)):
        raise ParameterError(f"noise={kind!r} must be one of {NOISE_KINDS} or an audio file path")
    if kind == "music":
        return _Music(n_total, sample_rate, rng, avoid_bpm)
    if kind in _SOURCES:
        return _SOURCES[kind](n_total, sample_rate, rng)
    if os.path.isfile(os.fspath(kind)):
        return _FileNoise(kind, n_total, sample_rate, rng)
    raise ParameterError(f"noise={kind!r} is neither one of {NOISE_KINDS} nor an existing audio file")


def make_noise(kind: str, n: int, sample_rate: int, rng=None, **options) -> np.ndarray:
    """Render a noise bed at unit RMS.

    Parameters
    ----------
    kind : str
        One of :data:`NOISE_KINDS`, or a path to an audio file (mixed to mono,
        resampled to ``sample_rate``, looped with a 100 ms crossfade from a
        random offset).
    n : int >= 0 [samples]
    sample_rate : int [Hz]
    rng : numpy.random.Generator, int or None
        Random source (an int is used as a seed).
    avoid_bpm : sequence of float, optional
        ``"music"`` only: cadences [steps/min] the music tempo (and its half
        and double) must stay more than 8 % away from.

    Returns
    -------
    np.ndarray [shape=(n,), float64]
        RMS exactly 1 (all zeros for ``"silence"``).
    """
    sample_rate = _check_sample_rate(sample_rate)
    n = int(n)
    if n < 0:
        raise ParameterError(f"n={n} must be >= 0")
    rng = np.random.default_rng(rng)
    src = _make_source(kind, n, sample_rate, rng, options.get("avoid_bpm", ()))
    block = _chunk_len(sample_rate)
    y = np.concatenate([src.render(min(block, n - a)) for a in range(0, n, block)]) if n else np.zeros(0)
    p = float(np.mean(y * y)) if n else 0.0
    return y / math.sqrt(p) if p > 0 else y


def _chunk_len(sample_rate: int) -> int:
    return 1 << 16 if sample_rate <= 48000 else 1 << 17


# --------------------------------------------------------------------------- runner, schedule, footfalls


def _draw_runner(runner_seed: int) -> dict:
    rng = np.random.default_rng(np.random.SeedSequence([int(runner_seed), 0x52554E]))
    return {
        "first_side": str(rng.choice(["L", "R"])),
        "louder_side": str(rng.choice(["L", "R"])),
        "longer_interval_after": str(rng.choice(["L", "R"])),
        "slap_delay_ms": rng.uniform(35.0, 55.0),
        "slap_rel_db": rng.uniform(-3.0, 1.5),
        "thud_hz": rng.uniform(70.0, 130.0),
        "click_lp_hz": rng.uniform(3000.0, 6500.0),
        "slap_lp_hz": rng.uniform(4000.0, 8000.0),
        "p_sharp_forefoot": rng.uniform(0.3, 0.8),
        "settle_delay_ms": rng.uniform(50.0, 75.0),
        "settle_rel_db": rng.uniform(-16.5, -13.5),
        "p_heel_mixed": rng.uniform(0.35, 0.65),
    }


def _step_levels(step_level_db, times_s: np.ndarray) -> np.ndarray:
    n = len(times_s)
    if step_level_db is None:
        return np.zeros(n)
    if callable(step_level_db):
        vals = np.array([float(step_level_db(float(t))) for t in times_s], dtype=float)
        if not np.all(np.isfinite(vals)):
            raise ParameterError("step_level_db(time_s) returned a non-finite value")
        return vals
    arr = np.asarray(step_level_db, dtype=float)
    if arr.ndim == 0:
        if not np.isfinite(arr):
            raise ParameterError(f"step_level_db={step_level_db!r} must be finite")
        return np.full(n, float(arr))
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ParameterError("step_level_db must be None, a number, a callable time_s -> dB, or a 1-D array of finite dB values")
    if len(arr) < n:
        raise ParameterError(
            f"step_level_db has {len(arr)} values but the scene has {n} steps; "
            "pass at least that many (extras are ignored) or a callable of time"
        )
    return arr[:n].copy()


def _schedule(duration_s, sched_times, sched_spm, rng, runner, interval_cv, lr_timing_asym, pauses, strike):
    """Onset times [s], sides, strikes and second-impact delays of the steps."""
    def period_s(t):
        return 60.0 / float(np.interp(t, sched_times, sched_spm))

    t_end = duration_s - 0.1
    t = rng.uniform(0.15, 0.15 + period_s(0.0))
    side = runner["first_side"]
    times, sides = [], []
    longer = runner["longer_interval_after"]
    while t < t_end:
        pause = next(((a, b) for a, b in pauses if a <= t < b), None)
        if pause is not None:
            t = pause[1] + rng.uniform(0.1, 0.6) * period_s(pause[1])
            continue
        times.append(t)
        sides.append(side)
        z = float(np.clip(rng.standard_normal(), -3.0, 3.0))
        asym = 1.0 + (0.5 if side == longer else -0.5) * lr_timing_asym
        t += period_s(t) * asym * (1.0 + interval_cv * z)
        side = "R" if side == "L" else "L"
    n = len(times)
    if strike == "mixed":
        strikes = np.where(rng.random(n) < runner["p_heel_mixed"], "heel", "forefoot").tolist()
    else:
        strikes = [strike] * n
    delays = np.clip(runner["slap_delay_ms"] + rng.normal(0.0, 5.0, n), 25.0, 70.0)
    jitter = rng.standard_normal(n)
    return np.array(times), sides, strikes, delays, jitter


def _noise_burst(rng, tau_s, pulse_s, hp_hz, lp_hz, sample_rate):
    """Exponentially decaying noise (dense high modes) struck by a half-sine pulse, band-limited."""
    fs = sample_rate
    n = max(8, int(6.0 * tau_s * fs))
    x = rng.standard_normal(n) * np.exp(-np.arange(n) / (tau_s * fs))
    x = np.convolve(x, _half_sine(pulse_s, fs))
    x = _onepole_hp(x, hp_hz, fs)
    x = _onepole_lp(_onepole_lp(x, lp_hz, fs), lp_hz, fs)
    return _unit_energy(x)


def _struck_mode(f_hz, tau_s, pulse_s, sample_rate):
    """A damped mode (resonance) excited by a half-sine force pulse, unit energy."""
    fs = sample_rate
    p = _half_sine(pulse_s, fs)
    n = len(p) + int(6.0 * tau_s * fs)
    x = np.zeros(n)
    x[: len(p)] = p
    return _unit_energy(_resonator(x, f_hz, tau_s, fs))


def _place(buf, x, at):
    end = at + len(x)
    if end > len(buf):
        buf.resize(end, refcheck=False)
    buf[at:end] += x


def _render_footfall(rng, strike, delay_ms, runner, interval_s, squeak_prob, sample_rate):
    """Dry footfall waveform starting at first contact (index 0).

    Returns (waveform [float64], impacts_energy, details dict).  The energy of
    the impacts (contact + second impact) is normalised to 1 by the caller.
    """
    fs = sample_rate
    d: dict = {}
    buf = np.zeros(int(0.4 * fs))
    if strike == "heel":
        thud_hz = runner["thud_hz"] * rng.uniform(0.88, 1.12)
        pulse = rng.uniform(0.003, 0.008)
        thud = _struck_mode(thud_hz, rng.uniform(0.015, 0.04), pulse, fs)
        body = _struck_mode(rng.uniform(180, 450), rng.uniform(0.004, 0.012), 0.5 * pulse, fs)
        click_db = rng.uniform(-10.0, -4.0)
        click = _noise_burst(rng, rng.uniform(0.0015, 0.005), rng.uniform(0.0002, 0.0008), rng.uniform(150, 400), runner["click_lp_hz"] * rng.uniform(0.8, 1.25), fs)
        contact = np.zeros(max(len(thud), len(body), len(click)))
        contact[: len(thud)] += thud
        contact[: len(body)] += _db(rng.uniform(-12.0, -6.0)) * body
        contact[: len(click)] += _db(click_db) * click
        contact = _unit_energy(contact)
        slap_db = float(np.clip(runner["slap_rel_db"] + rng.normal(0.0, 1.5), -7.0, 5.0))
        slap = _noise_burst(rng, rng.uniform(0.005, 0.015), rng.uniform(0.00015, 0.0005), rng.uniform(300, 700), runner["slap_lp_hz"] * rng.uniform(0.85, 1.2), fs)
        smode = _struck_mode(rng.uniform(150, 350), rng.uniform(0.006, 0.012), 0.001, fs)
        second = np.zeros(max(len(slap), len(smode)))
        second[: len(slap)] += slap
        second[: len(smode)] += _db(-8.0) * smode
        second = _db(slap_db) * _unit_energy(second)
        second_at = int(round(delay_ms * 1e-3 * fs))
        d.update(thud_hz=round(thud_hz, 1), heel_pulse_ms=round(pulse * 1e3, 2), click_rel_db=round(click_db, 2), slap_rel_db=round(slap_db, 2))
    else:
        sharp = bool(rng.random() < runner["p_sharp_forefoot"])
        pulse = rng.uniform(0.0001, 0.00035) if sharp else rng.uniform(0.0008, 0.002)
        burst = _noise_burst(rng, rng.uniform(0.004, 0.012), pulse, rng.uniform(300, 700), runner["slap_lp_hz"] * rng.uniform(0.85, 1.2), fs)
        mode = _struck_mode(rng.uniform(140, 300), rng.uniform(0.008, 0.02), rng.uniform(0.001, 0.003), fs)
        mode_db = rng.uniform(-14.0, -8.0)
        contact = np.zeros(max(len(burst), len(mode)))
        contact[: len(burst)] += burst
        contact[: len(mode)] += _db(mode_db) * mode
        contact = _unit_energy(contact)
        settle_db = float(np.clip(runner["settle_rel_db"] + rng.normal(0.0, 1.5), -19.0, -11.0))
        settle_ms = float(np.clip(runner["settle_delay_ms"] + rng.normal(0.0, 8.0), 40.0, 90.0))
        settle = _db(settle_db) * _struck_mode(runner["thud_hz"] * rng.uniform(0.9, 1.1), rng.uniform(0.01, 0.025), rng.uniform(0.004, 0.01), fs)
        second = settle
        second_at = int(round(settle_ms * 1e-3 * fs))
        d.update(attack="sharp" if sharp else "soft", attack_ms=round(pulse * 1e3, 3), mode_rel_db=round(mode_db, 2), heel_settle_ms=round(settle_ms, 2), heel_settle_rel_db=round(settle_db, 2))
    _place(buf, contact, 0)
    _place(buf, second, second_at)
    energy = _energy(buf)
    extras = np.zeros(len(buf))
    # toe-off scuff near the end of stance (quiet)
    toe_at = int(round(rng.uniform(0.58, 0.7) * interval_s * fs))
    toe_db = rng.uniform(-30.0, -22.0)
    n_toe = int(0.06 * fs)
    tt = np.arange(n_toe) / fs
    scuff = rng.standard_normal(n_toe) * np.minimum(1.0, tt / 0.008) * np.exp(-tt / rng.uniform(0.012, 0.025))
    scuff = _unit_energy(_onepole_lp(_onepole_hp(scuff, 1000.0, fs), 6000.0, fs))
    _place(extras, _db(toe_db) * math.sqrt(energy) * scuff, toe_at)
    d.update(toe_off_ms=round(toe_at / fs * 1e3, 1), toe_off_rel_db=round(toe_db, 2))
    if squeak_prob > 0 and rng.random() < squeak_prob:
        sq_at = int(round(rng.uniform(0.05, 0.15) * fs))
        n_sq = int(rng.uniform(0.04, 0.12) * fs)
        ts = np.arange(n_sq) / fs
        f_sq = _clip_hz(rng.uniform(1500, 4000), fs, 0.35) * (1.0 + 0.15 * ts / max(ts[-1], 1e-9)) * (1.0 + 0.01 * np.sin(2 * np.pi * 30 * ts))
        ph = 2 * np.pi * np.cumsum(f_sq) / fs
        sq = (np.sin(ph) + 0.3 * np.sin(2 * ph)) * np.sin(np.pi * ts / ts[-1]) ** 2
        sq_db = rng.uniform(-20.0, -12.0)
        _place(extras, _db(sq_db) * math.sqrt(energy) * _unit_energy(sq), sq_at)
        d.update(squeak_ms=round(sq_at / fs * 1e3, 1), squeak_rel_db=round(sq_db, 2))
    if len(extras) > len(buf):
        buf.resize(len(extras), refcheck=False)
    buf[: len(extras)] += extras
    fade = min(len(buf), int(0.005 * fs))
    buf[len(buf) - fade :] *= np.linspace(1.0, 0.0, fade)
    return buf, energy, d


# --------------------------------------------------------------------------- room and microphone


def _room_ir(rng, sample_rate, rt60_s, drr_db):
    """Room impulse response: unit direct path at lag 0, early reflections, two-band exponential tail."""
    fs = sample_rate
    n = int(math.ceil(1.2 * rt60_s * fs)) + 1
    t = np.arange(n) / fs
    early = np.zeros(n)
    n_early = int(rng.integers(4, 9))
    for _ in range(n_early):
        k = int(round(rng.uniform(0.0015, 0.025) * fs))
        early[k] += rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.7) / (1.0 + k / (0.005 * fs))
    t_mix = rng.uniform(0.008, 0.02)
    onset = np.clip((t - 0.004) / t_mix, 0.0, 1.0)
    noise = rng.standard_normal(n)
    split = _clip_hz(1500.0, fs, 0.4)
    low = signal.sosfilt(_butter_sos(2, split, "lowpass", fs), noise)
    high = signal.sosfilt(_butter_sos(2, split, "highpass", fs), noise)
    rt_high = rt60_s * rng.uniform(0.55, 0.75)
    tail = onset * (low * np.exp(-6.908 * t / rt60_s) + high * np.exp(-6.908 * t / rt_high))
    tail[0] = 0.0
    reverb = early + tail * math.sqrt(_energy(early) * 1.5 / max(_energy(tail), 1e-30))
    reverb *= math.sqrt(10.0 ** (-drr_db / 10.0) / _energy(reverb))
    ir = reverb
    ir[0] = 1.0
    return ir, {"rt60_s": rt60_s, "rt60_high_s": rt_high, "drr_db": drr_db, "n_early_reflections": n_early, "ir_len_s": n / fs}


def _mic_sos(rng, sample_rate):
    fs = sample_rate
    hp = rng.uniform(25.0, 60.0)
    pk_f, pk_g, pk_q = rng.uniform(2000.0, 5000.0), rng.uniform(1.0, 4.0), rng.uniform(0.7, 1.5)
    lp = _clip_hz(rng.uniform(11000.0, 18000.0), fs, 0.45)
    sos = np.concatenate([_butter_sos(2, hp, "highpass", fs), _peaking_sos(pk_f, pk_g, pk_q, fs), _butter_sos(2, lp, "lowpass", fs)])
    return sos, {"highpass_hz": hp, "presence_hz": _clip_hz(pk_f, fs, 0.4), "presence_db": pk_g, "presence_q": pk_q, "lowpass_hz": lp}


def _convolve_inplace(x: np.ndarray, h: np.ndarray, block: int) -> None:
    """Causal overlap-add convolution of ``x`` (float32, in place) with ``h``; the tail past the end is dropped."""
    n, L = len(x), len(h)
    nfft = sp_fft.next_fast_len(block + L - 1, real=True)
    H = sp_fft.rfft(h, nfft)
    carry = np.zeros(L - 1)
    for a in range(0, n, block):
        b = min(n, a + block)
        seg = x[a:b].astype(np.float64)
        if seg.any():
            y = sp_fft.irfft(sp_fft.rfft(seg, nfft) * H, nfft)[: b - a + L - 1]
        else:
            y = np.zeros(b - a + L - 1)
        y[: L - 1] += carry
        x[a:b] = y[: b - a]
        carry = y[b - a :].copy()


def _sosfilt_inplace(x: np.ndarray, sos: np.ndarray, block: int) -> None:
    f = _SOS(sos)
    for a in range(0, len(x), block):
        b = min(len(x), a + block)
        x[a:b] = f(x[a:b].astype(np.float64))


def _power(x: np.ndarray, block: int) -> float:
    if len(x) == 0:
        return 0.0
    acc = 0.0
    for a in range(0, len(x), block):
        seg = x[a : a + block].astype(np.float64)
        acc += _energy(seg)
    return acc / len(x)


def _peak(x: np.ndarray, block: int) -> float:
    p = 0.0
    for a in range(0, len(x), block):
        seg = x[a : a + block]
        if len(seg):
            p = max(p, float(np.max(np.abs(seg))))
    return p


# --------------------------------------------------------------------------- the scene


def synth_run(
    duration_s: float,
    sample_rate: int = 44100,
    *,
    cadence_spm=170.0,
    seed: int = 0,
    snr_db: float | None = 6.0,
    noise: str = "treadmill",
    strike: str = "heel",
    step_level_db=None,
    interval_cv: float = 0.04,
    lr_timing_asym: float = 0.02,
    lr_level_asym_db: float = 1.5,
    reverb=True,
    mic_gain_db: float = 0.0,
    pauses=(),
    level_jitter_db: float = 1.2,
    runner_seed: int | None = None,
    squeak_prob: float = 0.02,
    mic_colouration: bool = True,
) -> Scene:
    """Synthesise a treadmill run: footfalls with exact truth, room, mic and noise.

    Parameters
    ----------
    duration_s : float >= 0 [seconds]
    sample_rate : int [Hz]
        8000–192000; filters are designed relative to it and band edges are
        clipped below Nyquist.
    cadence_spm : float or sequence of (time_s, spm) [steps/min]
        Constant, or breakpoints interpolated linearly (held beyond the ends).
        Every footfall is a step (one stride = 2 steps).
    seed : int >= 0
        Scene seed (schedule, waveforms, noise, room, microphone).
    snr_db : float or None [dB]
        Requested SNR: ``10*log10(P_steps / P_noise)``, mean powers of the
        footstep track (after room and mic) and of the noise track over the
        whole scene.  None: no noise.  Realised exactly (to float32 rounding)
        unless the scene has no steps (then the noise is scaled as if the
        nominal step track at the mean cadence were present and the realised
        SNR is -inf).
    noise : str
        A kind from :data:`NOISE_KINDS` (``"silence"`` ignores ``snr_db``) or
        an audio file path.  Do not tune on :data:`HELDOUT_NOISE_KINDS`.
    strike : {"heel", "forefoot", "mixed"}
        Landing.  Heel: heel contact (60–150 Hz thud + broadband click), then a
        brighter forefoot slap 25–70 ms later (-7..+5 dB re the contact
        energy).  Forefoot: one contact (sharp or soft attack, less low
        frequency), then the heel settling ~-15 dB (energy) 40–90 ms later.
        Mixed: random per step.
    step_level_db : None, float, callable or array [dB]
        Level of each step re the nominal, before jitter and L/R asymmetry:
        a callable ``time_s -> dB`` or one value per step (at least as many
        as the scene has steps).
    interval_cv : float in [0, 0.2]
        Coefficient of variation of each step interval about its nominal
        (cadence- and side-dependent) value; independent Gaussian, clipped at
        3 sigma.
    lr_timing_asym : float in [0, 0.3]
        Intervals after one foot are ``1 + a/2`` times nominal, after the
        other ``1 - a/2`` (ratio ~ 1 + a).  Which foot: a runner trait.
    lr_level_asym_db : float >= 0 [dB]
        One foot (runner trait) is ``+a/2`` dB, the other ``-a/2`` dB.
    reverb : bool or dict
        Room on/off, or a dict with ``rt60_s`` (0.05–2) and/or ``drr_db`` to
        fix the room (otherwise RT60 ~ U(0.2, 0.6) s, DRR ~ U(6, 12) dB).
    mic_gain_db : float [dB]
        Gain on everything (the audio is never normalised up; a limiter gain
        < 1 is applied only if the peak would exceed 0.9).
    pauses : sequence of (start_s, end_s)
        No step has its onset inside ``[start_s, end_s)``; the runner resumes
        0.1–0.6 step periods after ``end_s``.  Footfalls begun before a pause
        still ring into it (for < 0.4 s plus reverb).
    level_jitter_db : float >= 0 [dB]
        Standard deviation of the natural per-step level jitter (clipped at
        2.5 sigma).
    runner_seed : int or None
        Seed of the runner's traits (default ``seed``).
    squeak_prob : float in [0, 1]
        Probability of a shoe squeak within a step (at 50–150 ms).
    mic_colouration : bool
        Apply the (causal) microphone filters.

    Returns
    -------
    Scene
        ``steps`` holds the truth; ``meta`` the rest (``meta["output_gain"]``
        is the linear gain from the tracks to ``audio``).

    Raises
    ------
    ParameterError
        For an invalid argument (the message names it).
    AudioFileError
        If ``noise`` is a file that cannot be read.
    """
    sample_rate = _check_sample_rate(sample_rate)
    fs = sample_rate
    duration_s = _check_real("duration_s", duration_s, 0.0, 24 * 3600.0)
    sched_times, sched_spm = _cadence_schedule(cadence_spm)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed={seed!r} must be a non-negative integer")
    if runner_seed is None:
        runner_seed = int(seed)
    elif isinstance(runner_seed, bool) or not isinstance(runner_seed, (int, np.integer)) or runner_seed < 0:
        raise ParameterError(f"runner_seed={runner_seed!r} must be a non-negative integer")
    if snr_db is not None:
        snr_db = _check_real("snr_db", snr_db, -60.0, 120.0)
    if strike not in ("heel", "forefoot", "mixed"):
        raise ParameterError(f"strike={strike!r} must be 'heel', 'forefoot' or 'mixed'")
    interval_cv = _check_real("interval_cv", interval_cv, 0.0, 0.2)
    lr_timing_asym = _check_real("lr_timing_asym", lr_timing_asym, 0.0, 0.3)
    lr_level_asym_db = _check_real("lr_level_asym_db", lr_level_asym_db, 0.0, 20.0)
    level_jitter_db = _check_real("level_jitter_db", level_jitter_db, 0.0, 10.0)
    mic_gain_db = _check_real("mic_gain_db", mic_gain_db, -120.0, 60.0)
    squeak_prob = _check_real("squeak_prob", squeak_prob, 0.0, 1.0)
    pause_list = []
    for p in pauses:
        try:
            a, b = (float(v) for v in p)
        except (TypeError, ValueError):
            raise ParameterError(f"pauses entry {p!r} must be a (start_s, end_s) pair") from None
        if not (math.isfinite(a) and math.isfinite(b) and 0.0 <= a < b):
            raise ParameterError(f"pauses entry {p!r} needs finite 0 <= start_s < end_s")
        pause_list.append((a, b))
    room_fixed: dict = {}
    if isinstance(reverb, dict):
        unknown = set(reverb) - {"rt60_s", "drr_db"}
        if unknown:
            raise ParameterError(f"reverb dict has unknown keys {sorted(unknown)}; use rt60_s, drr_db")
        if "rt60_s" in reverb:
            room_fixed["rt60_s"] = _check_real("reverb['rt60_s']", reverb["rt60_s"], 0.05, 2.0)
        if "drr_db" in reverb:
            room_fixed["drr_db"] = _check_real("reverb['drr_db']", reverb["drr_db"], -10.0, 40.0)
        reverb = True
    if not isinstance(noise, (str, os.PathLike)):
        raise ParameterError(f"noise={noise!r} must be one of {NOISE_KINDS} or an audio file path")
    if noise not in NOISE_KINDS and not os.path.isfile(os.fspath(noise)):
        raise ParameterError(f"noise={noise!r} is neither one of {NOISE_KINDS} nor an existing audio file")
    noise_on = snr_db is not None and noise != "silence"

    n = int(round(duration_s * fs))
    block = _chunk_len(fs)
    ss_sched, ss_steps, ss_noise, ss_room, ss_mic = np.random.SeedSequence(int(seed)).spawn(5)
    rng_sched = np.random.default_rng(ss_sched)
    rng_steps = np.random.default_rng(ss_steps)
    runner = _draw_runner(runner_seed)

    times, sides, strikes, delays, jitter = _schedule(
        duration_s, sched_times, sched_spm, rng_sched, runner, interval_cv, lr_timing_asym, pause_list, strike
    )
    onsets = np.round(times * fs).astype(np.int64)
    user_db = _step_levels(step_level_db, onsets / fs)
    jitter_db = level_jitter_db * np.clip(jitter, -2.5, 2.5)
    lr_db = np.array([(0.5 if s == runner["louder_side"] else -0.5) * lr_level_asym_db for s in sides])
    levels = user_db + jitter_db + lr_db

    # ---- footstep track (dry), rendered straight into the output buffer
    audio = np.zeros(n, dtype=np.float32)
    nominal_energy = (0.1 * fs) * 10.0 ** (NOMINAL_STEP_RMS_DBFS / 10.0)
    steps, details = [], []
    for i in range(len(onsets)):
        interval_s = 60.0 / float(np.interp(times[i], sched_times, sched_spm))
        wave, energy, d = _render_footfall(rng_steps, strikes[i], float(delays[i]), runner, interval_s, squeak_prob, fs)
        gain = _db(float(levels[i])) * math.sqrt(nominal_energy / energy)
        o = int(onsets[i])
        m = min(len(wave), n - o)
        if m > 0:
            audio[o : o + m] += (gain * wave[:m]).astype(np.float32)
        steps.append(
            StepTruth(
                onset_sample=o,
                side=sides[i],
                level_db=float(levels[i]),
                strike=strikes[i],
                second_impact_ms=round(float(delays[i]), 3) if strikes[i] == "heel" else None,
            )
        )
        d.update(user_db=round(float(user_db[i]), 4), jitter_db=round(float(jitter_db[i]), 4), lr_db=float(lr_db[i]))
        details.append(d)
    for s, d in zip(steps, details):
        if s.second_impact_ms is not None:  # store the exact (sample-rounded) delay used
            s.second_impact_ms = round(int(round(s.second_impact_ms * 1e-3 * fs)) / fs * 1e3, 6)

    meta: dict = {
        "seed": int(seed),
        "runner_seed": int(runner_seed),
        "duration_s": duration_s,
        "n_samples": n,
        "strike": strike,
        "cadence_schedule": [[float(a), float(b)] for a, b in zip(sched_times, sched_spm)],
        "interval_cv": interval_cv,
        "lr_timing_asym": lr_timing_asym,
        "lr_level_asym_db": lr_level_asym_db,
        "level_jitter_db": level_jitter_db,
        "pauses": [list(p) for p in pause_list],
        "squeak_prob": squeak_prob,
        "runner": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in runner.items()},
        "nominal_step_rms_dbfs_100ms": NOMINAL_STEP_RMS_DBFS,
    }

    # ---- room and microphone
    if reverb:
        rng_room = np.random.default_rng(ss_room)
        rt60 = room_fixed.get("rt60_s", rng_room.uniform(0.2, 0.6))
        drr = room_fixed.get("drr_db", rng_room.uniform(6.0, 12.0))
        ir, room = _room_ir(rng_room, fs, rt60, drr)
        if n:
            _convolve_inplace(audio, ir, max(1 << 18, 1 << int(math.ceil(math.log2(4 * len(ir))))))
        meta["room"] = room
    else:
        meta["room"] = None
    mic_sos = None
    if mic_colouration:
        mic_sos, meta["mic"] = _mic_sos(np.random.default_rng(ss_mic), fs)
        _sosfilt_inplace(audio, mic_sos, block)
    else:
        meta["mic"] = None
    step_power = _power(audio, block)
    meta["step_track_power_dbfs"] = 10 * math.log10(step_power) if step_power > 0 else None

    # ---- noise
    realised = None
    noise_name = "silence"
    if noise_on:
        noise_name = os.fspath(noise)
        cad_lo, cad_hi = float(np.min(sched_spm)), float(np.max(sched_spm))
        src = _make_source(noise, n, fs, np.random.default_rng(ss_noise), np.linspace(cad_lo, cad_hi, 9))
        bed = np.empty(n, dtype=np.float32)
        mic_noise = _SOS(mic_sos) if mic_sos is not None else None
        for a in range(0, n, block):
            y = src.render(min(block, n - a))
            bed[a : a + len(y)] = mic_noise(y) if mic_noise is not None else y
        noise_power = _power(bed, block)
        ref_power = step_power
        if ref_power <= 0:
            mean_spm = float(np.mean(sched_spm))
            ref_power = nominal_energy * (mean_spm / 60.0) / fs
        if noise_power > 0:
            g = math.sqrt(ref_power / (noise_power * 10.0 ** (snr_db / 10.0)))
            for a in range(0, n, block):
                audio[a : a + block] += np.float32(g) * bed[a : a + block]
            realised = 10 * math.log10(step_power / (g * g * noise_power)) if step_power > 0 else float("-inf")
            meta["noise_gain_db"] = 20 * math.log10(g)
        meta["noise_params"] = {k: (v if not isinstance(v, float) else round(v, 4)) for k, v in src.params.items()}
        meta["snr_requested_db"] = snr_db
        del bed

    # ---- gain and limiter
    mic_gain = _db(mic_gain_db)
    peak = _peak(audio, block) * mic_gain
    limiter = min(1.0, PEAK_CEILING / peak) if peak > 0 else 1.0
    out_gain = mic_gain * limiter
    if out_gain != 1.0:
        for a in range(0, n, block):
            audio[a : a + block] *= np.float32(out_gain)
    meta.update(
        mic_gain_db=mic_gain_db,
        limiter_gain_db=20 * math.log10(limiter),
        output_gain=out_gain,
        output_gain_db=20 * math.log10(out_gain),
        peak_dbfs=20 * math.log10(peak * limiter) if peak > 0 else None,
    )
    meta["step_details"] = details
    return Scene(audio=audio, sample_rate=fs, steps=steps, snr_db=realised, noise=noise_name, meta=meta)
