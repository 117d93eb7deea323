"""The speaker → microphone path: round trip and echo response, measured with a sweep probe.

``stepsound calibrate-latency`` (and a live session, before it starts) plays a
few exponential sine sweeps through a duplex stream and deconvolves what the
microphone heard by what was played.  The result is the impulse response of
the whole path (output buffer, speaker, room, microphone, input buffer): its
first strong arrival is the round trip, and the response itself starts the
session's echo canceller.

Footsteps cannot fool it: a step is a short transient that the deconvolution
spreads thinly over the whole response, while the sweep's energy is gathered
into one sharp peak (about 40 dB of processing gain).  A measurement that is
not clean -- a weak peak, or sweeps that disagree -- is refused with one line
saying why, and nothing is stored.
"""
from __future__ import annotations

import time

import numpy as np
from scipy import fft as sp_fft   # releases the GIL: the audio callback never waits for it

from stepsound.audio.rings import SampleRing
from stepsound.errors import AudioDeviceError

#: A sweep's peak must stand this far above the response's noise [dB].
MIN_PEAK_DB = 20.0
#: Below this the probe was not heard at all (noise alone reaches ~13 dB) [dB].
NOT_HEARD_DB = 15.0
#: Sweeps must agree on the arrival within this [seconds].
MAX_SPREAD_S = 0.001
#: Regularisation when deconvolving a sweep: its (pink) spectrum spans ~27 dB, and all of it is wanted
#: (1e-3 would leave the top octaves 30 % short and cap the cancellation of a click near 23 dB).
PROBE_REGULARISATION = 1e-6
#: The sweep's band: from this [Hz] to this fraction of the sample rate.
SWEEP_LOW_HZ = 40.0
SWEEP_HIGH = 0.48


def probe_band(sample_rate: int) -> tuple[float, float]:
    """The bins a sweep measures well (fractions of the sample rate, a little inside its band)."""
    return 1.2 * SWEEP_LOW_HZ / sample_rate, 0.97 * SWEEP_HIGH
#: Longest round trip looked for [seconds].
MAX_ROUND_TRIP_S = 0.5


class RoundTripRefused(AudioDeviceError):
    """The probe was heard, but not cleanly enough to trust (nothing is stored)."""


def sweep(sample_rate: int, duration_s: float = 0.5, level_db: float = -12.0, fade_s: float = 0.005) -> np.ndarray:
    """Exponential sine sweep, 40 Hz to 0.48 x rate, with raised-cosine fades of ``fade_s``.

    Returns
    -------
    np.ndarray [shape=(round(duration_s * sample_rate),), float32]
    """
    n = int(round(duration_s * sample_rate))
    f0, f1 = SWEEP_LOW_HZ, SWEEP_HIGH * sample_rate
    t = np.arange(n) / sample_rate
    k = np.log(f1 / f0)
    x = np.sin(2 * np.pi * f0 * duration_s / k * (np.exp(t / duration_s * k) - 1.0))
    fade = min(n // 2, max(1, int(fade_s * sample_rate)))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    x[:fade] *= ramp
    x[n - fade:] *= ramp[::-1]
    return (10.0 ** (level_db / 20.0) * x).astype(np.float32)


def deconvolve(heard: np.ndarray, probe: np.ndarray, length: int, regularisation: float = 1e-3,
               band: tuple[float, float] | None = None) -> np.ndarray:
    """Impulse response from ``probe`` to ``heard`` (``heard`` starts where the probe started).

    Regularised frequency-domain least squares: where the probe has less
    than ``regularisation`` x its peak power, the response is held near zero
    instead of amplifying noise.  ``band`` (fractions of the sample rate)
    keeps only the bins the probe is meant to cover: outside them even a
    tiny regularisation would amplify whatever the microphone heard there.

    Returns
    -------
    np.ndarray [shape=(length,), float64]
    """
    nfft = 1
    while nfft < len(heard) + len(probe):
        nfft *= 2
    p = sp_fft.rfft(probe.astype(np.float64), nfft)
    y = sp_fft.rfft(heard.astype(np.float64), nfft)
    power = np.abs(p) ** 2
    inverse = np.conj(p) / (power + regularisation * power.max())
    if band is not None:
        f = np.arange(len(p)) / nfft
        inverse[(f < band[0]) | (f > band[1])] = 0.0
    h = sp_fft.irfft(y * inverse, nfft)
    return h[:length]


def envelope(x: np.ndarray) -> np.ndarray:
    """Magnitude of the analytic signal of ``x`` (its Hilbert envelope).

    Written with :mod:`scipy.fft` (imported with this module) rather than
    ``scipy.signal.hilbert``: importing scipy.signal in the middle of a live
    session holds the interpreter for about a second, and the audio callback
    with it (xruns).
    """
    n = len(x)
    if n == 0:
        return np.zeros(0)
    spec = sp_fft.fft(x)
    weight = np.zeros(n)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[n // 2] = 1.0
        weight[1:n // 2] = 2.0
    else:
        weight[1:(n + 1) // 2] = 2.0
    return np.abs(sp_fft.ifft(spec * weight))


def analyse_response(h: np.ndarray, sample_rate: int) -> dict:
    """Arrival, extent and peak-to-noise ratio of one measured response.

    Works on the response's envelope (magnitude of the analytic signal), so a
    band-limited response -- our clicks are not broadband -- gives one arrival,
    not one per ringing lobe.

    Returns
    -------
    dict
        ``arrival`` [samples] (first tap whose envelope is within 6 dB of the
        peak, at most 5 ms before it), ``end`` [samples] (where the envelope,
        smoothed over 1 ms, last stands 4x above the noise, at most 100 ms
        after the peak), ``peak_db`` [dB] (envelope peak over the robust noise
        level of the response away from the peak and its first 100 ms of tail),
        ``noise`` (that noise level, in the response's units).
    """
    env = envelope(h)
    m = int(np.argmax(env))
    lo = max(0, m - int(0.005 * sample_rate))
    arrival = lo + int(np.flatnonzero(env[lo:m + 1] >= 0.5 * env[m])[0])
    # to the sample: the strongest tap within 0.5 ms of the envelope's onset (a broadband response's
    # envelope is a sample or two wider than its peak)
    half = max(1, int(0.0005 * sample_rate))
    a, b = max(0, arrival - half), min(len(h), arrival + half + 1)
    arrival = a + int(np.argmax(np.abs(h[a:b])))
    keep = np.ones(len(h), bool)
    tail = m + int(0.1 * sample_rate)
    keep[max(0, m - int(0.002 * sample_rate)):tail] = False
    rest = env[keep]
    noise = float(np.median(rest)) / 1.1774 if rest.size else 0.0   # Rayleigh median -> sigma
    peak_db = 200.0 if noise <= 0 else 20.0 * np.log10(env[m] / noise)
    width = max(1, int(0.001 * sample_rate))
    smooth = np.convolve(env[m:tail], np.ones(width) / width, mode="same")
    above = np.flatnonzero(smooth > 4.0 * noise)
    end = m + (int(above[-1]) if above.size else 0)
    return {"arrival": arrival, "end": end, "peak_db": float(peak_db), "noise": noise}


def trim_response(h: np.ndarray, est: dict, sample_rate: int, shrink: float = 3.0, pre_s: float = 0.0015) -> np.ndarray:
    """The response with the measurement noise taken out.

    Keeps ``est["arrival"] - pre_s`` to ``est['end']`` (from
    :func:`analyse_response`) with raised-cosine edges (2/3 of ``pre_s`` in,
    2 ms out), and within that shrinks every tap by how far its envelope
    stands above the noise (``max(0, 1 - (shrink x noise / envelope)^2)``):
    taps where only noise was measured would add that noise to every
    cancelled click (2000 taps at -60 dB cap the cancellation at about 25 dB).

    Nothing of our output can arrive before the direct sound; what a sweep
    measures there is the ringing of its own band limits.  Kept (8 ms of it,
    before), it put a faint copy of every click ~7 ms *ahead* of the click
    into the cancelled signal -- 40 dB under the click, but in a silent room
    a clear onset the detector counted as a step.
    """
    out = np.zeros_like(h)
    edge = max(1, int(0.002 * sample_rate))
    lead = max(1, int(pre_s * sample_rate))
    a = max(0, est["arrival"] - lead)
    b = min(len(h), est["end"] + edge)
    env = envelope(h[a:b])
    width = max(1, int(0.0005 * sample_rate))
    env = np.convolve(env, np.ones(width) / width, mode="same")
    gain = np.clip(1.0 - (shrink * est["noise"]) ** 2 / np.maximum(env, 1e-30) ** 2, 0.0, 1.0)
    out[a:b] = h[a:b] * gain
    rise = max(1, (2 * lead) // 3)
    ramp_in = 0.5 - 0.5 * np.cos(np.pi * np.arange(rise) / rise)
    out[a:a + rise] *= ramp_in[:len(out[a:a + rise])]
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
    out[max(a, b - edge):b] *= ramp[::-1][-len(out[max(a, b - edge):b]):]
    return out


def judge_sweeps(responses: list, sample_rate: int) -> dict:
    """Accept or refuse a set of per-sweep responses.

    Parameters
    ----------
    responses : list of np.ndarray
        One deconvolved response per sweep, lag 0 = the sweep's output sample.

    Returns
    -------
    dict
        ``round_trip_samples``, ``round_trip_s``, ``spread_ms``, ``peak_db``
        (the weakest accepted sweep's), ``sweeps_clean``, ``sweeps``,
        ``response`` (mean response of the clean sweeps, np.ndarray).

    Raises
    ------
    AudioDeviceError
        The probe was not heard at all.
    RoundTripRefused
        Heard, but too weak against the noise or inconsistent between sweeps.
    """
    results = [analyse_response(h, sample_rate) for h in responses]
    clean = [i for i, r in enumerate(results) if r["peak_db"] >= MIN_PEAK_DB]
    best = max(r["peak_db"] for r in results)
    if best < NOT_HEARD_DB:
        raise AudioDeviceError(
            "could not hear its own probe: speakers muted, microphone off, or headphones in use")
    if len(clean) < max(2, (len(results) + 1) // 2):
        raise RoundTripRefused(
            f"round trip not measured: only {len(clean)} of {len(results)} probes stood clear of the noise "
            f"(best {best:.0f} dB, need {MIN_PEAK_DB:.0f}); turn the speaker up or the noise down and try again")
    arrivals = np.array([results[i]["arrival"] for i in clean])
    spread = (arrivals.max() - arrivals.min()) / sample_rate
    if spread > MAX_SPREAD_S:
        raise RoundTripRefused(
            f"round trip not measured: the probes disagree by {1000 * spread:.1f} ms "
            f"({', '.join(f'{1000 * a / sample_rate:.1f}' for a in arrivals)} ms); the audio path is unstable")
    arrival = int(np.median(arrivals))
    mean = np.mean([np.roll(responses[i], arrival - results[i]["arrival"]) for i in clean], axis=0)
    # a sweep's response is broadband: its band edges ring a little before the arrival too
    mean = trim_response(mean, analyse_response(mean, sample_rate), sample_rate)
    return {"round_trip_samples": arrival, "round_trip_s": arrival / sample_rate,
            "spread_ms": 1000.0 * spread, "peak_db": float(min(results[i]["peak_db"] for i in clean)),
            "sweeps_clean": len(clean), "sweeps": len(results), "response": mean}


def probe_sequence(sample_rate: int, sweeps: int = 3, level_db: float = -12.0, sweep_s: float = 0.5,
                   lead_s: float = 0.25, fade_s: float = 0.005) -> tuple[np.ndarray, list, int]:
    """The probe as played: ``sweeps`` sweeps, each followed by ``MAX_ROUND_TRIP_S`` of silence.

    Returns
    -------
    (np.ndarray, list of int, int)
        The signal [float32], each sweep's first sample, a sweep's length [samples].
    """
    probe = sweep(sample_rate, sweep_s, level_db, fade_s)
    lead = int(lead_s * sample_rate)      # let the stream settle before the first sweep
    period = len(probe) + int(MAX_ROUND_TRIP_S * sample_rate)
    play = np.zeros(lead + sweeps * period, np.float32)
    starts = [lead + i * period for i in range(sweeps)]
    for s in starts:
        play[s:s + len(probe)] = probe
    return play, starts, len(probe)


def measure_round_trip(sample_rate: int, devices, latency="high", block_size: int = 0, sweeps: int = 3,
                       level_db: float = -12.0, sweep_s: float = 0.5) -> dict:
    """Measure the output → input path of a duplex device with sweep probes.

    Plays ``sweeps`` exponential sweeps (each followed by ``MAX_ROUND_TRIP_S``
    of silence) and deconvolves each from the input.

    Returns
    -------
    dict
        As :func:`judge_sweeps`, plus ``sample_rate`` and ``xruns``.

    Raises
    ------
    AudioDeviceError
        No such device, the device stopped, or the probe was not heard.
    RoundTripRefused
        The measurement was not clean (see :func:`judge_sweeps`).
    """
    from stepsound.audio import device

    play, starts, length = probe_sequence(sample_rate, sweeps, level_db, sweep_s)
    probe = play[starts[0]:starts[0] + length]
    total = len(play) + int(0.1 * sample_rate)
    ring = SampleRing(total + sample_rate)
    state = {"out": 0}

    def callback(indata, outdata, frames, time_info, status):
        pos = state["out"]
        if pos < len(play):
            n = min(frames, len(play) - pos)
            outdata[:n, 0] = play[pos:pos + n]
        state["out"] = pos + frames
        ring.push(indata[:, 0])

    stats = device.StreamStats()
    stream = device.open_stream(callback, sample_rate=sample_rate, output_channels=1, input_channels=1,
                                device=device_pair(devices), block_size=block_size, latency=latency, stats=stats)
    with stream:
        deadline = time.monotonic() + total / sample_rate + 5.0
        while ring.written < total and time.monotonic() < deadline:
            time.sleep(0.02)
            if not stream.active:
                raise AudioDeviceError("the audio device stopped during the round-trip measurement")
    heard = np.zeros(ring.written, np.float32)
    ring.pop_into(heard)
    if not np.all(np.isfinite(heard)):
        raise AudioDeviceError("the microphone delivered non-finite samples during the round-trip measurement")
    length = int(MAX_ROUND_TRIP_S * sample_rate)
    responses = [deconvolve(heard[s:s + len(probe) + length], probe, length, PROBE_REGULARISATION,
                            probe_band(sample_rate))
                 for s in starts if s < len(heard)]
    res = judge_sweeps(responses, sample_rate)
    res.update({"sample_rate": sample_rate, "xruns": stats.xruns})
    return res


def device_pair(device):
    """(input, output) device spec, or None for the defaults."""
    if isinstance(device, (tuple, list)):
        return None if all(d is None for d in device) else tuple(device)
    return device


def latency_key(input_device, output_device, sample_rate: int, latency="high") -> str:
    """Settings key of a measured round trip (per device pair, rate and latency setting)."""
    return (f"round_trip_s:{input_device or 'default'}|{output_device or 'default'}|{int(sample_rate)}"
            f"|{latency}")


def describe(res: dict) -> str:
    """One line for humans: the round trip and how sure the measurement is."""
    return (f"round trip {1000 * res['round_trip_s']:.1f} ms ({res['round_trip_samples']} samples at "
            f"{res['sample_rate']} Hz); {res['sweeps_clean']} of {res['sweeps']} probes agree within "
            f"{res['spread_ms']:.1f} ms, peak {res['peak_db']:.0f} dB above the noise")
