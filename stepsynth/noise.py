"""Noise beds: treadmill models, fan, street, babble, music, hum, coloured noise, and real recordings."""
from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np
from scipy import signal

from stepsynth.constants import NOISE_KINDS
from stepsynth.dsp import HarmonicOsc, SOSChain, Wander, butter_sos, clip_hz, db, half_sine, onepole_lp, resonator, sin_am, sos_power_gain, unit_energy
from stepsynth.validation import check_sample_rate
from stepsound.errors import AudioFileError, ParameterError


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
        self.filt = SOSChain(sos)
        self.scale = 1.0 / math.sqrt(sos_power_gain(self.filt.sos, sample_rate))

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
        self.osc = HarmonicOsc(rng, amps)
        self.wander = Wander(rng, (7.0, 19.0), 0.01)
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
        self.air = _ColouredNoise(rng, butter_sos(2, (60.0, rng.uniform(700, 2000)), "bandpass", fs), fs)
        self.rot_hz = rng.uniform(12.0, 25.0)
        blades = int(rng.integers(3, 8))
        self.bpf_hz = self.rot_hz * blades
        amps = np.array([1.0, 0.5, 0.25, 0.12]) * _db_arr(rng.uniform(-3, 3, 4))
        self.osc = HarmonicOsc(rng, amps)
        self.tone_gain = _db_arr(rng.uniform(-14, -8)) / self.osc.rms(self.bpf_hz, fs)
        self.wander = Wander(rng, (3.0, 7.0, 11.0), 0.1)
        self.params = {"rotation_hz": self.rot_hz, "blade_pass_hz": self.bpf_hz}

    def _render(self, start, m):
        t = self._t(start, m)
        am = self.wander(t) + sin_am(self.rot_hz, 0.05, t, self.sample_rate)
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
        self.speed_wander = Wander(rng, (23.0, 41.0, 67.0), 0.012)
        self.motor0 = rng.uniform(60.0, 250.0)  # Hz
        k = np.arange(1, 13)
        amps = k ** -0.9 * _db_arr(rng.uniform(-10, 2, len(k)))
        amps[0] = 1.0
        self.osc = HarmonicOsc(rng, amps)
        hum_rms = self.osc.rms(self.motor0, fs)
        self.hum_gain = 1.0 / hum_rms
        self.roller_hz = self.speed0 / (math.pi * rng.uniform(0.045, 0.06))
        self.hiss = _ColouredNoise(rng, butter_sos(2, (rng.uniform(500, 1200), rng.uniform(5000, 9000)), "bandpass", fs), fs)
        self.hiss_gain = _db_arr(rng.uniform(-9, -4))
        self.fan = _ColouredNoise(rng, butter_sos(2, rng.uniform(250, 500), "lowpass", fs), fs)
        self.fan_gain = _db_arr(rng.uniform(-12, -6))
        self.fan_wander = Wander(rng, (5.0, 13.0), 0.12)
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
        p = half_sine(rng.uniform(0.003, 0.006), fs)
        x[: len(p)] = p
        body = unit_energy(resonator(x, rng.uniform(90, 180), rng.uniform(0.01, 0.025), fs))
        burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.002 * fs))
        click = unit_energy(onepole_lp(burst, 2000.0, fs))
        y = body + db(-10.0) * click
        y *= np.minimum(1.0, (n - np.arange(n)) / (0.01 * fs))
        return y

    def _render(self, start, m):
        fs = self.sample_rate
        t = self._t(start, m)
        speed = 1.0 + self.speed_wander(t)
        hum = self.hum_gain * self.osc(self.motor0 * speed, fs) * sin_am(self.roller_hz, 0.04, t, fs)
        hiss = self.hiss_gain * self.hiss(m) * sin_am(1.0 / self.belt_period_s, 0.08, t, fs)
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
        self.speed_wander = Wander(rng, (17.0, 31.0, 53.0), 0.015)
        self.whine0 = min(rng.uniform(700.0, 2200.0), 0.3 * fs)
        self.osc = HarmonicOsc(rng, [1.0, 0.3 * rng.uniform(0.5, 1.5), 0.1])
        self.whine_gain = _db_arr(rng.uniform(-10, -4)) / self.osc.rms(self.whine0, fs)
        self.rot_hz = self.whine0 / int(rng.integers(16, 33))
        carrier = rng.uniform(3000.0, 7800.0)
        self.carrier_hz = carrier if carrier < 0.42 * fs else None
        self.carrier_phase = rng.uniform(0, 2 * np.pi)
        self.carrier_gain = math.sqrt(2) * _db_arr(rng.uniform(-24, -16))
        self.brush = _ColouredNoise(rng, butter_sos(2, (2000.0, 5000.0), "bandpass", fs), fs)
        self.brush_gain = _db_arr(rng.uniform(-14, -8))
        sos = np.concatenate([butter_sos(2, rng.uniform(600, 1500), "lowpass", fs), butter_sos(1, 40.0, "highpass", fs)])
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
        brush = self.brush_gain * self.brush(m) * sin_am(self.rot_hz, 0.6, t, fs)
        whoosh = self.whoosh(m) * sin_am(self.roller_hz, 0.15, t, fs)
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
        sos = np.concatenate([butter_sos(1, 25.0, "lowpass", fs), butter_sos(2, rng.uniform(150, 300), "lowpass", fs), butter_sos(1, 15.0, "highpass", fs)])
        self.rumble = _ColouredNoise(rng, sos, fs)
        self.wash = _ColouredNoise(rng, butter_sos(2, (200.0, 1500.0), "bandpass", fs), fs)
        self.wash_gain = _db_arr(rng.uniform(-14, -8))
        self.wash_wander = Wander(rng, (9.0, 23.0), 0.2)
        self.tyre = _ColouredNoise(rng, butter_sos(2, (rng.uniform(250, 450), rng.uniform(2000, 4000)), "bandpass", fs), fs)
        duration = n_total / fs
        mean_gap = rng.uniform(5.0, 12.0)
        t, cars = -40.0, []
        while t < duration + 40.0:
            t += rng.exponential(mean_gap)
            cars.append((t, rng.uniform(1.2, 3.5), db(rng.uniform(-3, 8)), rng.uniform(25, 60), rng.uniform(0, 2 * np.pi), rng.uniform(8, 20)))
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
                f = clip_hz(f, fs, 0.42)
                lo, hi = max(50.0, f - bw / 2), clip_hz(f + bw / 2, fs, 0.45)
                bands.append(SOSChain(signal.butter(1, [lo, hi], btype="bandpass", fs=fs, output="sos")))
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
                "wander": Wander(rng, (1.3, 2.9, 5.1), 0.06),
                "phase": rng.uniform(0, 1),
                "bands": bands,
                "band_gain": [3.0, 2.0, 1.5],
                "glottal": SOSChain(butter_sos(1, 800.0, "lowpass", fs)),
                "syll": np.array(syll),
                "gain": db(rng.uniform(-6, 0)),
            }
            self.voices.append(voice)
        # one aspiration and one fricative noise stream shared by all voices (each voice
        # filters / gates it differently; sharing is inaudible and halves the cost)
        self.fric = SOSChain(butter_sos(2, clip_hz(3500.0, fs, 0.4), "highpass", fs))
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
        hat = signal.sosfilt(butter_sos(2, clip_hz(6000.0, fs, 0.4), "highpass", fs), hat)
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


def make_source(kind: str, n_total: int, sample_rate: int, rng, avoid_bpm=()) -> _Source:
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
    sample_rate = check_sample_rate(sample_rate)
    n = int(n)
    if n < 0:
        raise ParameterError(f"n={n} must be >= 0")
    rng = np.random.default_rng(rng)
    src = make_source(kind, n, sample_rate, rng, options.get("avoid_bpm", ()))
    block = chunk_len(sample_rate)
    y = np.concatenate([src.render(min(block, n - a)) for a in range(0, n, block)]) if n else np.zeros(0)
    p = float(np.mean(y * y)) if n else 0.0
    return y / math.sqrt(p) if p > 0 else y


def chunk_len(sample_rate: int) -> int:
    return 1 << 16 if sample_rate <= 48000 else 1 << 17
