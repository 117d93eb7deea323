"""Small DSP helpers of the synthesiser: filters, resonators, slowly wandering parameters, oscillators."""
from __future__ import annotations

import math

import numpy as np
from scipy import signal



# --------------------------------------------------------------------------- small DSP helpers


def clip_hz(f_hz: float, sample_rate: int, frac: float = 0.45) -> float:
    """Clip a frequency below ``frac`` times the sample rate (i.e. below Nyquist)."""
    return float(min(f_hz, frac * sample_rate))


def onepole_lp(x: np.ndarray, fc_hz: float, sample_rate: int) -> np.ndarray:
    a = math.exp(-2.0 * math.pi * clip_hz(fc_hz, sample_rate, 0.49) / sample_rate)
    return signal.lfilter([1.0 - a], [1.0, -a], x)


def onepole_hp(x: np.ndarray, fc_hz: float, sample_rate: int) -> np.ndarray:
    a = math.exp(-2.0 * math.pi * clip_hz(fc_hz, sample_rate, 0.49) / sample_rate)
    g = 0.5 * (1.0 + a)
    return signal.lfilter([g, -g], [1.0, -a], x)


def resonator(x: np.ndarray, f_hz: float, tau_s: float, sample_rate: int) -> np.ndarray:
    """Two-pole resonator: impulse response exp(-t/tau) * sin(2 pi f t)."""
    w = 2.0 * math.pi * clip_hz(f_hz, sample_rate, 0.45) / sample_rate
    r = math.exp(-1.0 / (tau_s * sample_rate))
    return signal.lfilter([math.sin(w)], [1.0, -2.0 * r * math.cos(w), r * r], x)


def half_sine(duration_s: float, sample_rate: int) -> np.ndarray:
    """Half-sine force pulse of unit sum (a contact of given duration)."""
    m = max(1, int(round(duration_s * sample_rate)))
    p = np.sin(np.pi * (np.arange(m) + 0.5) / m)
    return p / p.sum()


def signal_energy(x: np.ndarray) -> float:
    """Sum of squares (einsum, not BLAS: immune to BLAS thread contention)."""
    return float(np.einsum("i,i->", x, x))


def unit_energy(x: np.ndarray) -> np.ndarray:
    e = signal_energy(x)
    return x / math.sqrt(e) if e > 0 else x


def db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def butter_sos(order: int, cutoff_hz, btype: str, sample_rate: int) -> np.ndarray:
    """Butterworth SOS with band edges clipped below Nyquist (and above 1 Hz)."""
    if np.ndim(cutoff_hz):
        lo, hi = (float(c) for c in cutoff_hz)
        hi = clip_hz(hi, sample_rate)
        lo = min(max(lo, 1.0), 0.5 * hi)
        return signal.butter(order, [lo, hi], btype=btype, fs=sample_rate, output="sos")
    fc = min(max(float(cutoff_hz), 1.0), 0.45 * sample_rate)
    return signal.butter(order, fc, btype=btype, fs=sample_rate, output="sos")


def peaking_sos(f_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """Second-order peaking equaliser (bilinear transform of the analog prototype)."""
    w0 = 2.0 * math.pi * clip_hz(f_hz, sample_rate, 0.4) / sample_rate
    a = 10.0 ** (gain_db / 40.0)
    alpha = math.sin(w0) / (2.0 * q)
    b = np.array([1.0 + alpha * a, -2.0 * math.cos(w0), 1.0 - alpha * a])
    den = np.array([1.0 + alpha / a, -2.0 * math.cos(w0), 1.0 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def sos_power_gain(sos: np.ndarray, sample_rate: int) -> float:
    """Output power of ``sos`` for unit-variance white input (sum of squared impulse response)."""
    n = max(4096, int(2.0 * sample_rate))
    imp = np.zeros(n)
    imp[0] = 1.0
    h = signal.sosfilt(sos, imp)
    return signal_energy(h)


class SOSChain:
    """A stateful SOS filter for chunked processing."""

    def __init__(self, sos: np.ndarray):
        self.sos = np.atleast_2d(np.asarray(sos, dtype=float))
        self.zi = np.zeros((self.sos.shape[0], 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y, self.zi = signal.sosfilt(self.sos, x, zi=self.zi)
        return y


class Wander:
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


def sin_am(freq_hz: float, depth: float, t_s: np.ndarray, sample_rate: int, phase: float = 0.0) -> np.ndarray:
    """``1 + depth * sin(2 pi f t + phase)`` for a modulation, evaluated on a grid >= 40 f."""
    step = int(max(1, min(32, sample_rate // max(1.0, 40.0 * freq_hz))))
    return _smooth_eval(lambda t: 1.0 + depth * np.sin(2 * np.pi * freq_hz * t + phase), t_s, step)


class HarmonicOsc:
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
