"""Runners, step schedules and footfall waveforms (heel and forefoot impact models)."""
from __future__ import annotations

import math

import numpy as np

from stepsynth.dsp import clip_hz, db, signal_energy, half_sine, onepole_hp, onepole_lp, resonator, unit_energy
from stepsound.errors import ParameterError


# --------------------------------------------------------------------------- runner, schedule, footfalls


def draw_runner(runner_seed: int) -> dict:
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


def step_levels(step_level_db, times_s: np.ndarray) -> np.ndarray:
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


def schedule(duration_s, sched_times, sched_spm, rng, runner, interval_cv, lr_timing_asym, pauses, strike):
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
    x = np.convolve(x, half_sine(pulse_s, fs))
    x = onepole_hp(x, hp_hz, fs)
    x = onepole_lp(onepole_lp(x, lp_hz, fs), lp_hz, fs)
    return unit_energy(x)


def _struck_mode(f_hz, tau_s, pulse_s, sample_rate):
    """A damped mode (resonance) excited by a half-sine force pulse, unit energy."""
    fs = sample_rate
    p = half_sine(pulse_s, fs)
    n = len(p) + int(6.0 * tau_s * fs)
    x = np.zeros(n)
    x[: len(p)] = p
    return unit_energy(resonator(x, f_hz, tau_s, fs))


def _place(buf, x, at):
    end = at + len(x)
    if end > len(buf):
        buf.resize(end, refcheck=False)
    buf[at:end] += x


def render_footfall(rng, strike, delay_ms, runner, interval_s, squeak_prob, sample_rate):
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
        contact[: len(body)] += db(rng.uniform(-12.0, -6.0)) * body
        contact[: len(click)] += db(click_db) * click
        contact = unit_energy(contact)
        slap_db = float(np.clip(runner["slap_rel_db"] + rng.normal(0.0, 1.5), -7.0, 5.0))
        slap = _noise_burst(rng, rng.uniform(0.005, 0.015), rng.uniform(0.00015, 0.0005), rng.uniform(300, 700), runner["slap_lp_hz"] * rng.uniform(0.85, 1.2), fs)
        smode = _struck_mode(rng.uniform(150, 350), rng.uniform(0.006, 0.012), 0.001, fs)
        second = np.zeros(max(len(slap), len(smode)))
        second[: len(slap)] += slap
        second[: len(smode)] += db(-8.0) * smode
        second = db(slap_db) * unit_energy(second)
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
        contact[: len(mode)] += db(mode_db) * mode
        contact = unit_energy(contact)
        settle_db = float(np.clip(runner["settle_rel_db"] + rng.normal(0.0, 1.5), -19.0, -11.0))
        settle_ms = float(np.clip(runner["settle_delay_ms"] + rng.normal(0.0, 8.0), 40.0, 90.0))
        settle = db(settle_db) * _struck_mode(runner["thud_hz"] * rng.uniform(0.9, 1.1), rng.uniform(0.01, 0.025), rng.uniform(0.004, 0.01), fs)
        second = settle
        second_at = int(round(settle_ms * 1e-3 * fs))
        d.update(attack="sharp" if sharp else "soft", attack_ms=round(pulse * 1e3, 3), mode_rel_db=round(mode_db, 2), heel_settle_ms=round(settle_ms, 2), heel_settle_rel_db=round(settle_db, 2))
    _place(buf, contact, 0)
    _place(buf, second, second_at)
    energy = signal_energy(buf)
    extras = np.zeros(len(buf))
    # toe-off scuff near the end of stance (quiet)
    toe_at = int(round(rng.uniform(0.58, 0.7) * interval_s * fs))
    toe_db = rng.uniform(-30.0, -22.0)
    n_toe = int(0.06 * fs)
    tt = np.arange(n_toe) / fs
    scuff = rng.standard_normal(n_toe) * np.minimum(1.0, tt / 0.008) * np.exp(-tt / rng.uniform(0.012, 0.025))
    scuff = unit_energy(onepole_lp(onepole_hp(scuff, 1000.0, fs), 6000.0, fs))
    _place(extras, db(toe_db) * math.sqrt(energy) * scuff, toe_at)
    d.update(toe_off_ms=round(toe_at / fs * 1e3, 1), toe_off_rel_db=round(toe_db, 2))
    if squeak_prob > 0 and rng.random() < squeak_prob:
        sq_at = int(round(rng.uniform(0.05, 0.15) * fs))
        n_sq = int(rng.uniform(0.04, 0.12) * fs)
        ts = np.arange(n_sq) / fs
        f_sq = clip_hz(rng.uniform(1500, 4000), fs, 0.35) * (1.0 + 0.15 * ts / max(ts[-1], 1e-9)) * (1.0 + 0.01 * np.sin(2 * np.pi * 30 * ts))
        ph = 2 * np.pi * np.cumsum(f_sq) / fs
        sq = (np.sin(ph) + 0.3 * np.sin(2 * ph)) * np.sin(np.pi * ts / ts[-1]) ** 2
        sq_db = rng.uniform(-20.0, -12.0)
        _place(extras, db(sq_db) * math.sqrt(energy) * unit_energy(sq), sq_at)
        d.update(squeak_ms=round(sq_at / fs * 1e3, 1), squeak_rel_db=round(sq_db, 2))
    if len(extras) > len(buf):
        buf.resize(len(extras), refcheck=False)
    buf[: len(extras)] += extras
    fade = min(len(buf), int(0.005 * fs))
    buf[len(buf) - fade :] *= np.linspace(1.0, 0.0, fade)
    return buf, energy, d
