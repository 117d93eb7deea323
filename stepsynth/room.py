"""Room impulse responses and microphone colouration."""
from __future__ import annotations

import math

import numpy as np
from scipy import fft as sp_fft
from scipy import signal
from stepsynth.dsp import SOSChain, butter_sos, clip_hz, signal_energy, peaking_sos



# --------------------------------------------------------------------------- room and microphone


def room_ir(rng, sample_rate, rt60_s, drr_db):
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
    split = clip_hz(1500.0, fs, 0.4)
    low = signal.sosfilt(butter_sos(2, split, "lowpass", fs), noise)
    high = signal.sosfilt(butter_sos(2, split, "highpass", fs), noise)
    rt_high = rt60_s * rng.uniform(0.55, 0.75)
    tail = onset * (low * np.exp(-6.908 * t / rt60_s) + high * np.exp(-6.908 * t / rt_high))
    tail[0] = 0.0
    reverb = early + tail * math.sqrt(signal_energy(early) * 1.5 / max(signal_energy(tail), 1e-30))
    reverb *= math.sqrt(10.0 ** (-drr_db / 10.0) / signal_energy(reverb))
    ir = reverb
    ir[0] = 1.0
    return ir, {"rt60_s": rt60_s, "rt60_high_s": rt_high, "drr_db": drr_db, "n_early_reflections": n_early, "ir_len_s": n / fs}


def mic_colouration_sos(rng, sample_rate):
    fs = sample_rate
    hp = rng.uniform(25.0, 60.0)
    pk_f, pk_g, pk_q = rng.uniform(2000.0, 5000.0), rng.uniform(1.0, 4.0), rng.uniform(0.7, 1.5)
    lp = clip_hz(rng.uniform(11000.0, 18000.0), fs, 0.45)
    sos = np.concatenate([butter_sos(2, hp, "highpass", fs), peaking_sos(pk_f, pk_g, pk_q, fs), butter_sos(2, lp, "lowpass", fs)])
    return sos, {"highpass_hz": hp, "presence_hz": clip_hz(pk_f, fs, 0.4), "presence_db": pk_g, "presence_q": pk_q, "lowpass_hz": lp}


def convolve_inplace(x: np.ndarray, h: np.ndarray, block: int) -> None:
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


def sosfilt_inplace(x: np.ndarray, sos: np.ndarray, block: int) -> None:
    f = SOSChain(sos)
    for a in range(0, len(x), block):
        b = min(len(x), a + block)
        x[a:b] = f(x[a:b].astype(np.float64))


def block_power(x: np.ndarray, block: int) -> float:
    if len(x) == 0:
        return 0.0
    acc = 0.0
    for a in range(0, len(x), block):
        seg = x[a : a + block].astype(np.float64)
        acc += signal_energy(seg)
    return acc / len(x)


def block_peak(x: np.ndarray, block: int) -> float:
    p = 0.0
    for a in range(0, len(x), block):
        seg = x[a : a + block]
        if len(seg):
            p = max(p, float(np.max(np.abs(seg))))
    return p
