#!/usr/bin/env python
"""Step detection on the world: scenes built from real audio nobody here made.

Every scene places *footstep events* at known times on a cadence profile over a
*bed*, then passes the mix through a randomized *channel*; stepsound (the
:class:`stepsound.engine.Engine`) and librosa are scored against the placement
times.  The third-party walking recordings themselves are scored as well.

Sources (read at run time from ``shared/data``, never copied; the benchmark
skips cleanly when the folder is absent):

- step banks (families): ``bbc`` (events cut from the BBC pavement walks),
  ``mii`` (indoor phone-mic walking), ``moodist`` (gravel, snow), and
  ``synth`` (stepsynth footfalls, no noise, no room);
- bed families: ``street`` (city traffic, busy street, highway, wind, water),
  ``domestic`` (dishes, running tap, office, keyboard), ``speech``
  (LibriSpeech), ``machine`` (laundry room, inside a train, pink noise),
  ``music`` (four tracks with drums), ``treadmill`` (modelled here: motor hum +
  harmonics, belt hiss, periodic belt-seam thump) and ``ticking`` (modelled
  here: freewheel / chain ticking with wind gusts).

Tuning vs held out (see ``TUNING_STEPS`` / ``TUNING_BEDS``): detector changes
may be tuned on the tuning families only; every table marks held-out families
with ``*``.

Events: each ``high`` row of a ``.steps.csv`` gives one event, cut from 20 ms
before to 150 ms after the annotated time with 18 ms / 30 ms raised-cosine
fades (the fade-in spans the pre-roll, so that the recording's own background does not start
with a step of its own); events whose cut overlaps another annotated row by less than 120 ms are
dropped.  The annotated time is the event's true onset.  Each event is scaled
to unit power over its first 50 ms after the onset, so a step's level is
exactly its drawn gain.

SNR (dB) = 10 log10(P_step / P_bed): P_step is the mean power of a step event
at 0 dB gain over the 50 ms after its onset (the unit above, before reverb);
P_bed is the bed's mean power over the whole scene.  This is an *event* SNR:
about 7-9 dB above a whole-scene-power SNR at 150-180 spm.

Channel (drawn per scene): room reverb on the steps (exponentially decaying
noise IR, RT60 0.2-0.8 s, direct-to-reverberant 3-12 dB); microphone
colouration (high-pass 40-200 Hz, low-pass 3.5-16 kHz, one +-6 dB peak);
AGC (gain riding on a 1.5 s RMS follower, 70 % compensation); clipping at 1-3
dB below the peak; a +-6..12 dB level jump; lossy codec round trip via ffmpeg
(MP3 24-48 kbit/s or Opus 12-24 kbit/s, re-aligned by cross-correlation);
sample rate one of 8, 16, 22.05, 44.1, 48, 96 kHz.

Cadence profiles: steady, drifting, intervals (alternating 10 s blocks),
stop (10 s standing still mid-run) and limp (alternating long/short
intervals), 60-240 spm.  Gains: natural (+-1.5 dB uniform) or heavy (natural,
plus 20 % of steps +8 dB).

Run from the repository root::

    PYTHONPATH=. python bench/bench_world.py            # ~8-10 min on one core
    PYTHONPATH=. python bench/bench_world.py --quick    # ~1.5 min

``--data`` points at the data folder (default ``<repo>/../shared/data``, then
``/work/shared/data``).  A summary replaces the section ``## Step detection on
real audio (bench_world)`` of bench/RESULTS.md unless ``--no-write``.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _common import (header_lines, md_table, run_header, single_thread_env, stable_seed,  # noqa: E402
                     text_table, update_results_section)

single_thread_env()

import numpy as np  # noqa: E402

from bench_accuracy import cadence_windows, read_steps_csv, run_librosa, score  # noqa: E402

SECTION = "Step detection on real audio (bench_world)"
STEP_FAMILIES = ("bbc", "mii", "moodist", "synth")
BED_FAMILIES = ("street", "domestic", "speech", "machine", "music", "treadmill", "ticking")
#: Families a detector change may be tuned on; all others are held out.
TUNING_STEPS = ("bbc", "moodist")
TUNING_BEDS = ("street", "domestic", "speech")
BED_FILES = {
    "street": ("noise/city_traffic_48k", "noise/moodist_busy_street", "noise/moodist_highway", "noise/wind_48k",
               "noise/water_48k"),
    "domestic": ("noise/dishes_16k", "noise/running_tap_16k", "noise/moodist_office", "noise/moodist_keyboard"),
    "speech": ("speech/librispeech_198-209-0000", "speech/librispeech_3436-172162-0000",
               "speech/librispeech_5703-47212-0000"),
    "machine": ("noise/moodist_laundry_room", "noise/moodist_inside_a_train", "noise/pink_noise_16k"),
    "music": ("music/macleod_vibe_ace", "music/admiralbob_choice_drum_bass", "music/macleod_galway_excerpt",
              "music/macleod_sugar_plum_fairy"),
}
SNRS_DB = (12, 6, 3, 0, -3)
RATES = (8000, 16000, 22050, 44100, 48000, 96000)
PROFILES = ("steady", "drifting", "intervals", "stop", "limp")
PRE_S, POST_S = 0.020, 0.150
FADE_IN_S, FADE_OUT_S = 0.018, 0.030  # the fade-in spans the pre-roll: a cut must not start with a step
UNIT_WIN_S = 0.050
HEAVY_DB, HEAVY_FRAC = 8.0, 0.2
MIN_READY_STEPS = 8
#: where each real source's sound begins re its annotated times [ms] (:func:`sound_start_ms`; set by main)
SOUND_START_MS: dict[str, float] = {}
#: Detector configuration of the stepsound runs (None: the default); set by --model.
DETECTOR_CONFIG = None


def default_data_dirs() -> list[Path]:
    env = os.environ.get("STEPSOUND_SHARED_DATA")
    out = [Path(env)] if env else []
    out += [Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")]
    return out


def find_data(arg: str | None) -> Path | None:
    for p in ([Path(arg)] if arg else default_data_dirs()):
        if (p / "footsteps").is_dir():
            return p
    return None


# --------------------------------------------------------------------------- audio helpers

@functools.lru_cache(maxsize=64)
def _read(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    y, rate = sf.read(path, dtype="float32", always_2d=False)
    if y.ndim > 1:
        y = y.mean(axis=1)
    return y.astype(np.float64), int(rate)


def resample(y: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Polyphase resampling src -> dst [Hz]."""
    if src == dst:
        return y
    from scipy.signal import resample_poly

    g = math.gcd(int(src), int(dst))
    return resample_poly(y, dst // g, src // g)


def _fade(n_in: int, n_out: int, n: int) -> np.ndarray:
    w = np.ones(n)
    if n_in:
        w[:n_in] = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_in) / n_in)
    if n_out:
        w[n - n_out:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(n_out) / n_out)
    return w


def cut_events(audio: np.ndarray, rate: int, onsets_s: np.ndarray, others_s: np.ndarray) -> list[np.ndarray]:
    """Footstep events around onsets (-20 ms .. +150 ms, faded), unit power over 50 ms after the onset."""
    pre, post = int(round(PRE_S * rate)), int(round(POST_S * rate))
    win = _fade(int(FADE_IN_S * rate), int(FADE_OUT_S * rate), pre + post)
    unit = int(round(UNIT_WIN_S * rate))
    events = []
    for t in onsets_s:
        a = int(round(t * rate)) - pre
        if a < 0 or a + pre + post > len(audio):
            continue
        near = others_s[(others_s > t - PRE_S) & (others_s < t + 0.12) & (np.abs(others_s - t) > 1e-6)]
        if len(near):
            continue
        x = audio[a:a + pre + post] * win
        x = x - x.mean()
        p = float(np.mean(x[pre:pre + unit] ** 2))
        if p <= 1e-12:
            continue
        events.append(x / math.sqrt(p))
    return events


def sound_start_ms(data: Path) -> dict[str, float]:
    """Where the footstep sound begins, re the annotated step times, per source [ms].

    The median (over all ``high`` rows of a source's recordings) of the
    broadband power in 2 ms hops from 40 ms before to 60 ms after each
    annotated time; the sound begins at the first hop after the annotated
    time whose median power stands 3 dB above the median of the hops from
    -40 to -10 ms.  The annotations in ``shared/data`` were derived
    automatically from a smoothed envelope (see its README); a positive
    value means they precede the sound, so latency and onset offsets
    measured against them include that much before any sound was heard.
    """
    import soundfile as sf

    prof: dict[str, list] = {}
    for csv_path in sorted((data / "footsteps").glob("*.steps.csv")):
        name = csv_path.name[:-len(".steps.csv")]
        fam = "bbc" if name.startswith("bbc_") else "mii" if name.startswith("mii_") else "moodist"
        y, rate = sf.read(str(csv_path.with_name(name + ".flac")), always_2d=True)
        y = y.mean(axis=1)
        hop = int(round(0.002 * rate))
        high, _ = read_steps_csv(csv_path)
        for t in high:
            a = int(round(t * rate))
            if a - 20 * hop < 0 or a + 30 * hop > len(y):
                continue
            p = np.add.reduceat(y[a - 20 * hop:a + 30 * hop] ** 2, np.arange(0, 50 * hop, hop)) / hop
            prof.setdefault(fam, []).append(10 * np.log10(p / (p.max() + 1e-30) + 1e-12))
    out = {}
    for fam, rows in prof.items():
        med = np.median(np.array(rows), axis=0)
        base = float(np.median(med[:15]))
        above = np.nonzero(med[20:] > base + 3.0)[0]
        out[fam] = 2.0 * float(above[0]) if above.size else float("nan")
    return out


def load_banks(data: Path) -> dict[str, list[tuple[np.ndarray, int]]]:
    """Step banks: family -> list of (event at unit power, source rate)."""
    banks: dict[str, list] = {f: [] for f in STEP_FAMILIES}
    for csv_path in sorted((data / "footsteps").glob("*.steps.csv")):
        name = csv_path.name[:-len(".steps.csv")]
        if name.startswith("bbc_07004109") or "leaves" in name:
            continue  # overlapping runners / "not quite steps"
        fam = "bbc" if name.startswith("bbc_") else "mii" if name.startswith("mii_") else "moodist"
        audio, rate = _read(str(csv_path.with_name(name + ".flac")))
        high, low = read_steps_csv(csv_path)
        every = np.sort(np.concatenate([high, low]))
        banks[fam] += [(e, rate) for e in cut_events(audio, rate, high, every)]
    from stepsynth import synth_run

    for strike in ("heel", "forefoot"):
        sc = synth_run(60.0, 44100, cadence_spm=120.0, seed=stable_seed("world-synth", strike) % 100000,
                       snr_db=None, noise="silence", strike=strike, reverb=False, mic_colouration=False)
        t = np.array([s.onset_sample for s in sc.steps], float) / 44100
        banks["synth"] += [(e, 44100) for e in cut_events(sc.audio.astype(np.float64), 44100, t, t)]
    return banks


# --------------------------------------------------------------------------- modelled beds

def treadmill_bed(n: int, rate: int, rng) -> np.ndarray:
    """Modelled treadmill: motor hum (+ harmonics to ~300 Hz), belt hiss, belt-seam thump."""
    from scipy.signal import butter, sosfilt

    t = np.arange(n) / rate
    f0 = rng.uniform(45, 110)
    wob = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)
    phase = 2 * np.pi * f0 * np.cumsum(wob) / rate
    hum = sum(rng.uniform(0.3, 1.0) / k * np.sin(k * phase + rng.uniform(0, 6.3))
              for k in range(1, int(320 // f0) + 2))
    hiss = sosfilt(butter(2, [min(1500.0, 0.4 * rate), min(9000.0, 0.45 * rate)], "bandpass", fs=rate,
                          output="sos"), rng.standard_normal(n))
    belt_hz = rng.uniform(0.5, 1.4)  # belt revolutions per second
    hiss *= 1 + 0.3 * np.sin(2 * np.pi * belt_hz * t)
    thump = np.zeros(n)
    m = int(0.06 * rate)
    tt = np.arange(m) / rate
    shape = np.sin(2 * np.pi * rng.uniform(60, 140) * tt) * np.exp(-tt / 0.012)
    shape += 0.3 * rng.standard_normal(m) * np.exp(-tt / 0.003)
    for start in np.arange(rng.uniform(0, 1 / belt_hz), n / rate, 1 / belt_hz):
        a = int(start * rate)
        thump[a:a + m] += shape[:max(0, min(m, n - a))] * rng.uniform(0.7, 1.0)
    parts = [hum, hiss, thump]
    mix = rng.dirichlet([3, 3, 1.5]) + 0.05
    return sum(w * p / (np.std(p) + 1e-12) for w, p in zip(mix, parts))


def ticking_bed(n: int, rate: int, rng) -> np.ndarray:
    """Modelled rhythmic mechanical noise: freewheel/chain ticking in bursts, plus wind gusts."""
    from scipy.signal import butter, sosfilt

    y = np.zeros(n)
    m = max(8, int(0.004 * rate))
    hp = butter(2, min(2000.0, 0.4 * rate), "highpass", fs=rate, output="sos")
    t0 = 0.0
    dur = n / rate
    while t0 < dur:
        seg = rng.uniform(1.0, 5.0)
        rate_hz = rng.choice([rng.uniform(8, 25), rng.uniform(2.0, 4.5)])  # freewheel or pedal/chain clunk
        amp = rng.uniform(0.3, 1.0)
        for k, tk in enumerate(np.arange(t0, min(dur, t0 + seg), 1 / rate_hz)):
            a = int(tk * rate)
            click = sosfilt(hp, rng.standard_normal(m)) * np.exp(-np.arange(m) / (0.0008 * rate))
            y[a:a + m] += amp * (0.9 ** (k * 0.1)) * click[:max(0, min(m, n - a))]
        t0 += seg + rng.uniform(0.0, 1.5)
    y /= np.std(y) + 1e-12
    gust_env = np.interp(np.arange(n), np.linspace(0, n, max(2, int(dur / 1.5))),
                         rng.uniform(0, 1, max(2, int(dur / 1.5))) ** 2)
    wind = sosfilt(butter(2, 400.0, "lowpass", fs=rate, output="sos"), rng.standard_normal(n))
    wind *= gust_env / (np.std(wind) + 1e-12)
    return y + rng.uniform(0.3, 1.0) * wind


def bed_audio(data: Path, family: str, n: int, rate: int, rng) -> tuple[np.ndarray, str]:
    """Bed of n samples at rate (unit RMS) and the source label."""
    if family == "treadmill":
        y, label = treadmill_bed(n, rate, rng), "treadmill model"
    elif family == "ticking":
        y, label = ticking_bed(n, rate, rng), "ticking model"
    else:
        rel = BED_FILES[family][rng.integers(len(BED_FILES[family]))]
        src, src_rate = _read(str(data / (rel + ".flac")))
        src = resample(src, src_rate, rate)
        off = int(rng.integers(0, max(1, len(src) - 1)))
        reps = int(math.ceil((n + off) / len(src))) + 1
        y = np.tile(src, reps)[off:off + n]
        label = Path(rel).name
    y = y - np.mean(y)
    return y / (np.sqrt(np.mean(y * y)) + 1e-12), label


# --------------------------------------------------------------------------- schedule, channel

def schedule(profile: str, duration_s: float, rng) -> tuple[np.ndarray, tuple | None]:
    """Step onset times [s] for a cadence profile, and the stop (start, end) or None."""
    base = rng.uniform(60, 240)
    times, t, k = [], rng.uniform(0.5, 1.0), 0
    stop = None
    if profile == "stop":
        a = round(rng.uniform(0.35, 0.45) * duration_s, 2)
        stop = (a, a + 10.0)
    hi = min(240.0, base * rng.uniform(1.2, 1.35)) if profile in ("drifting", "intervals") else base
    while t < duration_s - 0.3:
        u = t / duration_s
        if profile == "drifting":
            spm = base + (hi - base) * u
        elif profile == "intervals":
            spm = hi if int(t // 10.0) % 2 else base
        else:
            spm = base
        iv = 60.0 / spm
        if profile == "limp":
            iv *= 1.15 if k % 2 else 0.87
        if stop is not None and stop[0] <= t < stop[1]:
            t = stop[1] + rng.uniform(0.1, 0.5) * iv
            continue
        times.append(t)
        t += iv * (1 + 0.02 * np.clip(rng.standard_normal(), -3, 3))
        k += 1
    return np.array(times), stop


def room_ir(rate: int, rng) -> np.ndarray:
    rt60 = rng.uniform(0.2, 0.8)
    n = int(rt60 * rate)
    tt = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-6.91 * tt / rt60)
    tail[: int(0.002 * rate)] = 0.0
    drr_db = rng.uniform(3, 12)
    tail *= math.sqrt(10 ** (-drr_db / 10) / (np.sum(tail ** 2) + 1e-12))
    tail[0] += 1.0
    return tail


def mic_eq(y: np.ndarray, rate: int, rng) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    hp = rng.uniform(40, 200)
    lp = min(rng.uniform(3500, 16000), 0.45 * rate)
    y = sosfilt(butter(2, hp, "highpass", fs=rate, output="sos"), y)
    y = sosfilt(butter(2, lp, "lowpass", fs=rate, output="sos"), y)
    f = rng.uniform(300, min(5000, 0.4 * rate))
    g = 10 ** (rng.uniform(-6, 6) / 20)
    band = sosfilt(butter(1, [f / 1.4, min(f * 1.4, 0.49 * rate)], "bandpass", fs=rate, output="sos"), y)
    return y + (g - 1) * band


def agc(y: np.ndarray, rate: int) -> np.ndarray:
    """Slow automatic gain: 1.5 s RMS follower, 70 % compensation (causal)."""
    from scipy.signal import lfilter

    a = math.exp(-1.0 / (1.5 * rate))
    env = lfilter([1 - a], [1, -a], y * y)
    env = np.sqrt(np.maximum(env, 1e-10 + 1e-4 * np.mean(y * y)))
    return y * (np.sqrt(np.mean(y * y)) / env) ** 0.7


def codec(y: np.ndarray, rate: int, kind: str, kbps: int) -> np.ndarray:
    """Lossy round trip through ffmpeg (MP3 / Opus), realigned to the input by cross-correlation."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "in.f32"
        (y.astype(np.float32)).tofile(raw)
        enc_rate = min(rate, 48000) if kind == "mp3" else 48000
        out = Path(tmp) / ("c.mp3" if kind == "mp3" else "c.opus")
        args = ["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", str(raw),
                "-ar", str(enc_rate)]
        args += (["-c:a", "libmp3lame", "-b:a", f"{kbps}k"] if kind == "mp3"
                 else ["-c:a", "libopus", "-b:a", f"{kbps}k"])
        subprocess.run(args + [str(out)], check=True)
        dec = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "f32le", "-ar", str(rate), "-ac", "1",
                              "-"], check=True, capture_output=True).stdout
    z = np.frombuffer(dec, dtype=np.float32).astype(np.float64)
    m = min(len(y), len(z), 4 * rate)
    lags = np.arange(-int(0.08 * rate), int(0.08 * rate) + 1)
    seg_y = y[int(0.1 * rate):m - int(0.1 * rate)]
    best = max(lags, key=lambda L: float(np.dot(seg_y, z[int(0.1 * rate) + L:int(0.1 * rate) + L + len(seg_y)])))
    z = z[best:] if best >= 0 else np.concatenate([np.zeros(-best), z])
    if len(z) < len(y):
        z = np.concatenate([z, np.zeros(len(y) - len(z))])
    return z[:len(y)]


# --------------------------------------------------------------------------- scenes

@dataclass
class Scene:
    index: int
    step_family: str
    bed_family: str
    snr_db: float
    seed: int
    duration_s: float
    heavy: bool
    profile: str = ""
    rate: int = 0
    channel: dict = field(default_factory=dict)
    bed_label: str = ""


def build_grid(quick: bool, seeds: int, duration_s: float) -> list[Scene]:
    snrs = (6, 0) if quick else SNRS_DB
    specs = []
    for s in range(seeds):
        for sf in STEP_FAMILIES:
            for bf in BED_FAMILIES:
                for snr in snrs:
                    seed = stable_seed("world", s, sf, bf, snr) % 1_000_000
                    specs.append(Scene(len(specs), sf, bf, float(snr), seed, duration_s,
                                       heavy=bool((s + STEP_FAMILIES.index(sf) + BED_FAMILIES.index(bf)) % 2)))
    return specs


def render(spec: Scene, data: Path, banks: dict) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, tuple | None]:
    """Audio, rate, true onsets [s], true gains [dB] and stop of one scene."""
    rng = np.random.default_rng(spec.seed)
    rate = int(rng.choice(RATES))
    profile = PROFILES[int(rng.integers(len(PROFILES)))]
    spec.rate, spec.profile = rate, profile
    n = int(spec.duration_s * rate)
    times, stop = schedule(profile, spec.duration_s, rng)
    gains = rng.uniform(-1.5, 1.5, len(times))
    if spec.heavy:
        hv = rng.random(len(times)) < HEAVY_FRAC
        gains[hv] += HEAVY_DB
    bank = banks[spec.step_family]
    steps = np.zeros(n)
    pre = int(round(PRE_S * rate))
    cache: dict[int, np.ndarray] = {}
    for t, g in zip(times, gains):
        i = int(rng.integers(len(bank)))
        if i not in cache:
            ev, ev_rate = bank[i]
            cache[i] = resample(ev, ev_rate, rate)
        ev = cache[i]
        a = int(round(t * rate)) - pre
        b = min(n, a + len(ev))
        steps[a:b] += 10 ** (g / 20) * ev[:b - a]
    ch = {}
    if rng.random() < 0.8:
        from scipy.signal import fftconvolve

        steps = fftconvolve(steps, room_ir(rate, rng))[:n]
        ch["reverb"] = True
    bed, spec.bed_label = bed_audio(data, spec.bed_family, n, rate, rng)
    y = steps + bed * 10 ** (-spec.snr_db / 20)
    if rng.random() < 0.7:
        y = mic_eq(y, rate, rng)
        ch["eq"] = True
    if rng.random() < 0.3:
        y = agc(y, rate)
        ch["agc"] = True
    if rng.random() < 0.3:
        a = int(rng.uniform(0.3, 0.7) * n)
        y[a:] *= 10 ** (rng.choice([-1, 1]) * rng.uniform(6, 12) / 20)
        ch["jump"] = True
    y *= 0.25 / (np.max(np.abs(y)) + 1e-12)
    if rng.random() < 0.2:
        lim = 0.25 * 10 ** (-rng.uniform(1, 3) / 20)
        y = np.clip(y, -lim, lim)
        ch["clip"] = True
    if rng.random() < 0.35:
        kind = "mp3" if rng.random() < 0.6 else "opus"
        kbps = int(rng.choice([24, 32, 48])) if kind == "mp3" else int(rng.choice([12, 16, 24]))
        y = codec(y, rate, kind, kbps)
        ch["codec"] = f"{kind}{kbps}"
    spec.channel = ch
    return y.astype(np.float32), rate, times, gains, stop


# --------------------------------------------------------------------------- detectors & scoring

def run_engine(y: np.ndarray, rate: int) -> dict:
    from stepsound.engine import CadenceTick, Engine, Step, StepOnsetEvent

    eng = Engine(rate, DETECTOR_CONFIG)
    ons, commits, extra, steps, ticks = [], [], [], [], []
    for ev in eng.process(y):
        if isinstance(ev, StepOnsetEvent):
            if ev.supersedes is not None and ons and ons[-1] == ev.supersedes:
                extra[-1] = True     # replaced by this step: no longer counted
            ons.append(ev.onset_sample)
            commits.append(ev.detect_sample)
            extra.append(ev.extra)
        elif isinstance(ev, Step):
            steps.append((ev.onset_sample, ev.impact_db, ev.heavy))
        elif isinstance(ev, CadenceTick):
            ticks.append((ev.time_s, np.nan if ev.spm is None else ev.spm))
    tk = np.array(ticks, float).reshape(-1, 2)
    return {"onsets": np.array(ons, float) / rate, "commits": np.array(commits, float) / rate,
            "extra": np.array(extra, bool), "steps": steps, "tick_t": tk[:, 0], "tick_spm": tk[:, 1], "rate": rate}


def cadence_error(truth: np.ndarray, duration_s: float, ss: dict) -> dict:
    rows = cadence_windows(truth, duration_s, ss["tick_t"], ss["tick_spm"], {})
    errs, octave, blank = [], 0, 0
    for r in rows:
        d = r["stepsound_display"]
        if not np.isfinite(d):
            blank += 1
            continue
        ratio = d / r["truth"]
        if abs(ratio - 0.5) < 0.08 or abs(ratio - 2.0) < 0.16:
            octave += 1
        errs.append(abs(d - r["truth"]))
    return {"cad_err": errs, "cad_octave": octave, "cad_windows": len(rows), "cad_blank": blank}


def stop_shown(ss: dict, stop: tuple | None) -> float:
    """Fraction of ticks inside a stop (from 3 s after it began) that show a number (should be 0)."""
    if stop is None:
        return float("nan")
    sel = (ss["tick_t"] >= stop[0] + 3.0) & (ss["tick_t"] < stop[1])
    return float(np.mean(np.isfinite(ss["tick_spm"][sel]))) if np.any(sel) else float("nan")


def impact_pairs(truth: np.ndarray, gains: np.ndarray, ss: dict, heavy_scene: bool) -> dict:
    """Impact vs true gain for matched steps (after the baseline settled); heavy P/R counts."""
    import mir_eval

    rate = ss["rate"]
    est_t = np.array([s[0] for s in ss["steps"]], float) / rate
    pairs = mir_eval.util.match_events(truth, est_t, 0.05) if len(truth) and len(est_t) else []
    matched_est = {j: i for i, j in pairs}
    imp, g, tp, fp, fn = [], [], 0, 0, 0
    true_heavy = gains >= HEAVY_DB / 2
    for j, (_, impact, heavy) in enumerate(ss["steps"]):
        if j < MIN_READY_STEPS:
            continue
        i = matched_est.get(j)
        if i is None:
            fp += int(heavy and heavy_scene)
            continue
        if np.isfinite(impact):
            imp.append(float(impact))
            g.append(float(gains[i]))
        if heavy_scene:
            tp += int(heavy and true_heavy[i])
            fp += int(heavy and not true_heavy[i])
            fn += int((not heavy) and true_heavy[i])
    return {"imp": imp, "gain": g, "h_tp": tp, "h_fp": fp, "h_fn": fn}


def run_scene(spec: Scene, data: Path, banks: dict) -> dict:
    """Render one scene and score stepsound and librosa on it."""
    return score_scene(spec, *render(spec, data, banks))


def score_scene(spec: Scene, y: np.ndarray, rate: int, truth: np.ndarray, gains: np.ndarray, stop: tuple | None,
                with_librosa: bool = True) -> dict:
    """Scores of one rendered scene (``with_librosa=False``: stepsound only, librosa columns NaN)."""
    t0 = time.perf_counter()
    ss = run_engine(y, rate)
    t_ss = time.perf_counter() - t0
    lib = run_librosa(y, rate)["librosa"] if with_librosa else np.zeros(0)
    res = {"spec": spec, "n": len(truth), "t_ss": t_ss}
    res["ss"] = score(truth, ss["onsets"], ss["commits"])
    keep = ~ss["extra"]
    res["st"] = score(truth, ss["onsets"][keep], ss["commits"][keep])
    res["lib"] = score(truth, lib) if with_librosa else {"f50": float("nan"), "matched": 0, "n_est": 0, "n_ref": 0}
    res.update(cadence_error(truth, spec.duration_s, ss))
    res["stop_shown"] = stop_shown(ss, stop)
    res.update(impact_pairs(truth, gains, ss, spec.heavy))
    return res


def evaluate_real(data: Path, skip_held_out: bool = False) -> list[dict]:
    out = []
    for path in sorted((data / "footsteps").glob("*.flac")):
        if skip_held_out and path.name.startswith("mii_"):
            continue
        csv_path = path.with_name(path.stem + ".steps.csv")
        if not csv_path.exists():
            continue
        name = path.stem
        grp = ("bbc running" if name.startswith("bbc_07004109") else "bbc walking" if name.startswith("bbc_")
               else "mii indoor" if name.startswith("mii_") else "moodist " + name.split("_")[-1])
        high, low = read_steps_csv(csv_path)
        y, rate = _read(str(path))
        ss = run_engine(y.astype(np.float32), rate)
        lib = run_librosa(y.astype(np.float32), rate)["librosa"]
        keep = ~ss["extra"]
        out.append({"file": name, "group": grp, "n_high": len(high),
                    "ss": score(high, ss["onsets"], ss["commits"], ignore=low),
                    "st": score(high, ss["onsets"][keep], ss["commits"][keep], ignore=low),
                    "lib": score(high, lib, ignore=low)})
    return out


# --------------------------------------------------------------------------- aggregation

def _m(v) -> float:
    v = np.asarray([x for x in v if x is not None and np.isfinite(x)], float)
    return float(v.mean()) if v.size else float("nan")


def _f(x, d=3) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{d}f}"


def _pr(res: list[dict], key: str) -> tuple[float, float]:
    m = sum(r[key]["matched"] for r in res)
    ne = sum(r[key]["n_est"] for r in res)
    nr = sum(r[key]["n_ref"] for r in res)
    return (m / ne if ne else float("nan")), (m / nr if nr else float("nan"))


def summary(res: list[dict]) -> dict:
    if not res:
        return {}
    p, r = _pr(res, "ss")
    sp, sr = _pr(res, "st")
    lat = np.concatenate([np.asarray(x["ss"]["latency_ms"], float) for x in res] + [np.zeros(0)])
    # the same, re the moment the step's sound begins (the real banks' annotations precede it)
    lat_s = np.concatenate([np.asarray(x["ss"]["latency_ms"], float) - SOUND_START_MS.get(x["spec"].step_family, 0.0)
                            for x in res] + [np.zeros(0)])
    imp = np.concatenate([np.asarray(x["imp"], float) for x in res] + [np.zeros(0)])
    gain = np.concatenate([np.asarray(x["gain"], float) for x in res] + [np.zeros(0)])
    cad = [e for x in res for e in x["cad_err"]]
    tp, fp, fn = (sum(x[k] for x in res) for k in ("h_tp", "h_fp", "h_fn"))
    n_win = sum(x["cad_windows"] for x in res)
    return {
        "n": len(res), "f50": _m(x["ss"]["f50"] for x in res), "f25": _m(x["ss"]["f25"] for x in res),
        "worst": min(x["ss"]["f50"] for x in res), "p": p, "r": r,
        "sf50": _m(x["st"]["f50"] for x in res), "sworst": min(x["st"]["f50"] for x in res), "sp": sp, "sr": sr,
        "lib": _m(x["lib"]["f50"] for x in res),
        "cad": _m(cad), "octave": (sum(x["cad_octave"] for x in res) / n_win) if n_win else float("nan"),
        "blank": (sum(x["cad_blank"] for x in res) / n_win) if n_win else float("nan"),
        "stop_shown": _m(x["stop_shown"] for x in res),
        "lat50": float(np.median(lat)) if lat.size else float("nan"),
        "lat95": float(np.percentile(lat, 95)) if lat.size else float("nan"),
        "lat50s": float(np.median(lat_s)) if lat_s.size else float("nan"),
        "lat95s": float(np.percentile(lat_s, 95)) if lat_s.size else float("nan"),
        "imp_r": float(np.corrcoef(imp, gain)[0, 1]) if imp.size > 2 and np.std(imp) > 0 else float("nan"),
        "hp": tp / (tp + fp) if tp + fp else float("nan"), "hr": tp / (tp + fn) if tp + fn else float("nan"),
    }


SUM_COLS = ["scenes", "F50", "F25", "worst F", "P", "R", "steps F50", "steps worst F", "steps P", "steps R",
            "librosa F50", "cad err spm", "octave win",
            "no-display win", "shown in stop", "lat med ms", "lat p95 ms", "impact r", "heavy P", "heavy R"]


def sum_row(label: str, s: dict) -> list:
    if not s:
        return [label, 0] + ["–"] * (len(SUM_COLS) - 1)
    return [label, s["n"], _f(s["f50"]), _f(s["f25"]), _f(s["worst"]), _f(s["p"]), _f(s["r"]),
            _f(s["sf50"]), _f(s["sworst"]), _f(s["sp"]), _f(s["sr"]), _f(s["lib"]),
            _f(s["cad"], 1), _f(100 * s["octave"], 0) + "%", _f(100 * s["blank"], 0) + "%",
            _f(100 * s["stop_shown"], 0) + "%", _f(s["lat50"], 1), _f(s["lat95"], 1), _f(s["imp_r"]),
            _f(s["hp"]), _f(s["hr"])]


def mark(fam: str) -> str:
    return fam if fam in TUNING_STEPS + TUNING_BEDS else fam + " *"


def tables(results: list[dict], real: list[dict]) -> list[tuple[str, list[str], list[list]]]:
    out = []
    by = lambda key, val: [r for r in results if getattr(r["spec"], key) == val]  # noqa: E731
    snrs = sorted({r["spec"].snr_db for r in results}, reverse=True)
    rows = []
    for fam in BED_FAMILIES:
        rows.append(sum_row(mark(fam), summary(by("bed_family", fam))))
    out.append(("By bed family (all step banks, all SNRs; * = held out)", ["bed"] + SUM_COLS[:], rows))
    rows = [sum_row(mark(fam), summary(by("step_family", fam))) for fam in STEP_FAMILIES]
    out.append(("By step bank (all beds, all SNRs; * = held out)", ["steps"] + SUM_COLS, rows))
    rows = []
    for fam in BED_FAMILIES:
        cells = [mark(fam)]
        for snr in snrs:
            rs = [r for r in by("bed_family", fam) if r["spec"].snr_db == snr]
            cells.append(f"{_f(_m(x['ss']['f50'] for x in rs))} / {_f(_m(x['lib']['f50'] for x in rs))}")
        rows.append(cells)
    out.append(("F50 by bed family and SNR: stepsound / librosa", ["bed"] + [f"{s:+g} dB" for s in snrs], rows))
    held = [r for r in results if r["spec"].step_family not in TUNING_STEPS
            and r["spec"].bed_family not in TUNING_BEDS]
    tune = [r for r in results if r["spec"].step_family in TUNING_STEPS and r["spec"].bed_family in TUNING_BEDS]
    rows = [sum_row(f"{s:+g} dB", summary([r for r in results if r["spec"].snr_db == s])) for s in snrs]
    rows.append(sum_row("all", summary(results)))
    rows.append(sum_row("tuning steps x tuning beds", summary(tune)))
    rows.append(sum_row("held-out steps x held-out beds", summary(held)))
    out.append(("By SNR, and tuning vs held out", ["SNR"] + SUM_COLS, rows))
    rows = [sum_row(p, summary(by("profile", p))) for p in PROFILES]
    out.append(("By cadence profile", ["profile"] + SUM_COLS, rows))
    chans = [("clean channel", lambda c: not c), ("reverb", lambda c: c.get("reverb")),
             ("AGC", lambda c: c.get("agc")), ("level jump", lambda c: c.get("jump")),
             ("clipping", lambda c: c.get("clip")), ("MP3", lambda c: str(c.get("codec", "")).startswith("mp3")),
             ("Opus", lambda c: str(c.get("codec", "")).startswith("opus"))]
    rows = [sum_row(lbl, summary([r for r in results if fn(r["spec"].channel)])) for lbl, fn in chans]
    rows += [sum_row(f"{rate / 1000:g} kHz", summary(by("rate", rate))) for rate in RATES]
    out.append(("By channel condition and sample rate (overlapping groups)", ["channel"] + SUM_COLS, rows))
    if real:
        rows = []
        for grp in sorted({x["group"] for x in real}):
            rs = [x for x in real if x["group"] == grp]
            p, r = _pr(rs, "ss")
            lat = np.concatenate([np.asarray(x["ss"]["offset_ms"], float) for x in rs] + [np.zeros(0)])
            dbl = sum(x["ss"]["false_double"] for x in rs)
            rows.append([grp, len(rs), _f(_m(x["ss"]["f50"] for x in rs)), _f(min(x["ss"]["f50"] for x in rs)),
                         _f(_m(x["st"]["f50"] for x in rs)),
                         _f(p), _f(r), dbl, _f(float(np.median(lat)) if lat.size else float("nan"), 1),
                         _f(_m(x["lib"]["f50"] for x in rs))])
        allf = [x["ss"]["f50"] for x in real]
        p, r = _pr(real, "ss")
        rows.append(["all", len(real), _f(_m(allf)), _f(min(allf)), _f(_m(x["st"]["f50"] for x in real)), _f(p), _f(r),
                     sum(x["ss"]["false_double"] for x in real), "", _f(_m(x["lib"]["f50"] for x in real))])
        out.append(("Real recordings (+-50 ms vs `high` rows, detections near `low` rows ignored)",
                    ["group", "files", "F50", "worst F50", "steps F50", "P", "R", "doubles", "onset offset med ms",
                     "librosa F50"], rows))
    return out


def targets(results: list[dict], real: list[dict]) -> list[str]:
    held = [r for r in results if r["spec"].step_family not in TUNING_STEPS or
            r["spec"].bed_family not in TUNING_BEDS]
    s = summary(held)
    tl = [r for r in held if r["spec"].bed_family in ("treadmill", "machine")]
    worst0, worstm3 = ({k: min((r[k]["f50"] for r in tl if (r["spec"].snr_db >= 0) == pos), default=float("nan"))
                        for k in ("ss", "st")} for pos in (True, False))
    heavy3 = summary([r for r in held if r["spec"].snr_db >= 3])
    lines = [
        f"- F50 on held-out scenes (a held-out step bank or bed): all onsets {_f(s['f50'])}, counted steps "
        f"{_f(s['sf50'])} (target >= 0.97)",
        f"- worst treadmill-like scene (treadmill model, machine beds), SNR >= 0 dB: all onsets "
        f"{_f(worst0['ss'])}, counted steps {_f(worst0['st'])}; at -3 dB: {_f(worstm3['ss'])}, "
        f"{_f(worstm3['st'])} (target >= 0.90)",
        f"- displayed cadence error {_f(s['cad'], 2)} spm, octave windows {_f(100 * s['octave'], 1)}% "
        f"(target <= 1 spm, none)",
        f"- impact r {_f(s['imp_r'])}; heavy P/R at >= +3 dB {_f(heavy3['hp'])}/{_f(heavy3['hr'])} "
        f"(target >= 0.95, >= 0.95/0.95)",
        f"- latency median {_f(s['lat50'], 1)} ms, p95 {_f(s['lat95'], 1)} ms (target <= 10, <= 15); re the "
        f"moment the step's sound begins (the real banks' annotated times precede it by "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(SOUND_START_MS.items())) +
        f" ms, see sound_start_ms): median {_f(s['lat50s'], 1)} ms, p95 {_f(s['lat95s'], 1)} ms",
    ]
    if real:
        lines.append(f"- real recordings F50 {_f(_m(x['ss']['f50'] for x in real))}, counted steps "
                     f"{_f(_m(x['st']['f50'] for x in real))} (target >= 0.90)")
    return lines


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one seed, 30 s scenes, SNR +6 and 0 dB only")
    ap.add_argument("--seeds", type=int, default=None, help="scenes per (steps, bed, SNR) cell (default 2; --quick 1)")
    ap.add_argument("--duration", type=float, default=None, help="scene length [s] (default 40; >= 30)")
    ap.add_argument("--data", default=None, help="shared data folder (default <repo>/../shared/data)")
    ap.add_argument("--no-real", action="store_true", help="skip the real recordings")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    ap.add_argument("--title", default=SECTION, help="RESULTS.md section title to replace")
    ap.add_argument("--only", default=None, help="comma list of bed families to run (diagnostics)")
    ap.add_argument("--tuning-only", action="store_true",
                    help="only the tuning steps x tuning beds scenes (for choosing parameters)")
    ap.add_argument("--model", default=None,
                    help="detection function: 'none' (hand-made ODF), 'stepnet' (shipped model) or an "
                         ".npz path "
                         "(default: the DetectorConfig default)")
    ap.add_argument("--model-threshold", type=float, default=None, help="DetectorConfig.model_threshold")
    ap.add_argument("--gate", default=None,
                    help="candidate gate: 'none', 'gate' (shipped) or an .npz path (default: the DetectorConfig default)")
    ap.add_argument("--gate-threshold", type=float, default=None, help="DetectorConfig.gate_threshold")
    ap.add_argument("--override-ratio", type=float, default=None,
                    help="DetectorConfig.override_ratio (0: no supersession)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="any other numeric DetectorConfig field (diagnostics; repeatable)")
    args = ap.parse_args(argv)
    global DETECTOR_CONFIG
    changes = {}
    for item in args.set:
        key, _, value = item.partition("=")
        changes[key.strip()] = float(value)
    if args.model is not None:
        changes["model"] = None if args.model == "none" else args.model
    if args.model_threshold is not None:
        changes["model_threshold"] = args.model_threshold
    if args.gate is not None:
        changes["gate"] = None if args.gate == "none" else args.gate
    if args.gate_threshold is not None:
        changes["gate_threshold"] = args.gate_threshold
    if args.override_ratio is not None:
        changes["override_ratio"] = args.override_ratio
    if changes:
        from stepsound.detect.detector import DetectorConfig

        DETECTOR_CONFIG = DetectorConfig().replace(**changes)
    data = find_data(args.data)
    if data is None:
        print("bench_world: shared data folder not found; skipped.")
        return 0
    seeds = args.seeds or (1 if args.quick else 2)
    duration = args.duration or (30.0 if args.quick else 40.0)
    header = run_header()
    t_start = time.perf_counter()
    banks = load_banks(data)
    SOUND_START_MS.update(sound_start_ms(data))
    print("step banks: " + ", ".join(f"{k} {len(v)} events" for k, v in banks.items()))
    import librosa

    librosa.onset.onset_detect(y=np.zeros(16000, np.float32) + 1e-3, sr=16000)  # numba warm-up
    specs = build_grid(args.quick, seeds, duration)
    if args.only:
        keep = set(args.only.split(","))
        specs = [s for s in specs if s.bed_family in keep]
    if args.tuning_only:
        specs = [s for s in specs if s.step_family in TUNING_STEPS and s.bed_family in TUNING_BEDS]
    results = []
    for k, spec in enumerate(specs):
        results.append(run_scene(spec, data, banks))
        if (k + 1) % 20 == 0:
            print(f"  {k + 1}/{len(specs)} scenes, {time.perf_counter() - t_start:.0f} s", flush=True)
    real = [] if args.no_real else evaluate_real(data, skip_held_out=args.tuning_only)
    wall = time.perf_counter() - t_start
    tabs = tables(results, real)
    tl = [] if args.tuning_only else targets(results, real)
    for title, cols, rows in tabs:
        print("\n" + title + "\n" + text_table(cols, rows))
    print("\nTargets (held-out scenes):\n" + "\n".join(tl))
    worst = sorted(results, key=lambda r: r["ss"]["f50"])[:8]
    print("\nWorst scenes:")
    for r in worst:
        sp = r["spec"]
        print(f"  F {r['ss']['f50']:.3f} P {r['ss']['matched'] / max(1, r['ss']['n_est']):.2f} "
              f"R {r['ss']['matched'] / max(1, r['ss']['n_ref']):.2f}  {sp.step_family}/{sp.bed_label} "
              f"{sp.snr_db:+g} dB {sp.profile} {sp.rate} Hz {sp.channel}")
    print(f"\nwall time {wall / 60:.1f} min ({len(results)} scenes, {len(real)} recordings)")
    if not args.no_write:
        body = header_lines(header) + [
            "",
            f"{len(results)} scenes of {duration:g} s: step banks {', '.join(STEP_FAMILIES)} x beds "
            f"{', '.join(BED_FAMILIES)} x SNR {', '.join(f'{s:+g}' for s in sorted({r['spec'].snr_db for r in results}, reverse=True))} dB"
            f" x {seeds} seed(s); cadence profile, sample rate and channel drawn per scene (see the docstring "
            f"of bench/bench_world.py). Wall time {wall / 60:.1f} min on one core.",
            "",
            f"Tuning families: step banks {', '.join(TUNING_STEPS)}; beds {', '.join(TUNING_BEDS)}. "
            "Held out (marked *): everything else — the mii and synth step banks, and the machine, music, "
            "treadmill-model and ticking-model beds. SNR is the *event* SNR (step power over its first 50 ms "
            "vs the bed's mean power).",
            "",
            "Annotated times vs the sound: in every real source the median power around the annotated "
            "(`high`) times rises 3 dB above the background only "
            + ", ".join(f"{v:.0f} ms ({k})" for k, v in sorted(SOUND_START_MS.items()))
            + " *after* the annotated time (`sound_start_ms`). Latencies and onset offsets below are "
            "measured against the annotations, so for the real banks and recordings they include that "
            "interval, in which nothing of the step can yet be heard; the targets list both.",
            "",
        ]
        for title, cols, rows in tabs:
            body += [f"**{title}**", "", md_table(cols, rows), ""]
        body += ["**Targets** (scenes with a held-out step bank or bed):", ""] + tl
        update_results_section(args.title, "\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
