"""The whole scene: :func:`synth_run` (footfalls in a room, through a microphone, over a noise bed)."""
from __future__ import annotations

import math
import os

import numpy as np

from stepsynth.constants import NOISE_KINDS, NOMINAL_STEP_RMS_DBFS, PEAK_CEILING
from stepsynth.dsp import SOSChain, db
from stepsynth.footfalls import draw_runner, render_footfall, schedule, step_levels
from stepsynth.noise import chunk_len, make_source
from stepsynth.room import convolve_inplace, mic_colouration_sos, block_peak, block_power, room_ir, sosfilt_inplace
from stepsynth.truth import Scene, StepTruth
from stepsynth.validation import cadence_schedule, check_real, check_sample_rate
from stepsound.errors import ParameterError


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
    sample_rate = check_sample_rate(sample_rate)
    fs = sample_rate
    duration_s = check_real("duration_s", duration_s, 0.0, 24 * 3600.0)
    sched_times, sched_spm = cadence_schedule(cadence_spm)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed={seed!r} must be a non-negative integer")
    if runner_seed is None:
        runner_seed = int(seed)
    elif isinstance(runner_seed, bool) or not isinstance(runner_seed, (int, np.integer)) or runner_seed < 0:
        raise ParameterError(f"runner_seed={runner_seed!r} must be a non-negative integer")
    if snr_db is not None:
        snr_db = check_real("snr_db", snr_db, -60.0, 120.0)
    if strike not in ("heel", "forefoot", "mixed"):
        raise ParameterError(f"strike={strike!r} must be 'heel', 'forefoot' or 'mixed'")
    interval_cv = check_real("interval_cv", interval_cv, 0.0, 0.2)
    lr_timing_asym = check_real("lr_timing_asym", lr_timing_asym, 0.0, 0.3)
    lr_level_asym_db = check_real("lr_level_asym_db", lr_level_asym_db, 0.0, 20.0)
    level_jitter_db = check_real("level_jitter_db", level_jitter_db, 0.0, 10.0)
    mic_gain_db = check_real("mic_gain_db", mic_gain_db, -120.0, 60.0)
    squeak_prob = check_real("squeak_prob", squeak_prob, 0.0, 1.0)
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
            room_fixed["rt60_s"] = check_real("reverb['rt60_s']", reverb["rt60_s"], 0.05, 2.0)
        if "drr_db" in reverb:
            room_fixed["drr_db"] = check_real("reverb['drr_db']", reverb["drr_db"], -10.0, 40.0)
        reverb = True
    if not isinstance(noise, (str, os.PathLike)):
        raise ParameterError(f"noise={noise!r} must be one of {NOISE_KINDS} or an audio file path")
    if noise not in NOISE_KINDS and not os.path.isfile(os.fspath(noise)):
        raise ParameterError(f"noise={noise!r} is neither one of {NOISE_KINDS} nor an existing audio file")
    noise_on = snr_db is not None and noise != "silence"

    n = int(round(duration_s * fs))
    block = chunk_len(fs)
    ss_sched, ss_steps, ss_noise, ss_room, ss_mic = np.random.SeedSequence(int(seed)).spawn(5)
    rng_sched = np.random.default_rng(ss_sched)
    rng_steps = np.random.default_rng(ss_steps)
    runner = draw_runner(runner_seed)

    times, sides, strikes, delays, jitter = schedule(
        duration_s, sched_times, sched_spm, rng_sched, runner, interval_cv, lr_timing_asym, pause_list, strike
    )
    onsets = np.round(times * fs).astype(np.int64)
    user_db = step_levels(step_level_db, onsets / fs)
    jitter_db = level_jitter_db * np.clip(jitter, -2.5, 2.5)
    lr_db = np.array([(0.5 if s == runner["louder_side"] else -0.5) * lr_level_asym_db for s in sides])
    levels = user_db + jitter_db + lr_db

    # ---- footstep track (dry), rendered straight into the output buffer
    audio = np.zeros(n, dtype=np.float32)
    nominal_energy = (0.1 * fs) * 10.0 ** (NOMINAL_STEP_RMS_DBFS / 10.0)
    steps, details = [], []
    for i in range(len(onsets)):
        interval_s = 60.0 / float(np.interp(times[i], sched_times, sched_spm))
        wave, energy, d = render_footfall(rng_steps, strikes[i], float(delays[i]), runner, interval_s, squeak_prob, fs)
        gain = db(float(levels[i])) * math.sqrt(nominal_energy / energy)
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
        ir, room = room_ir(rng_room, fs, rt60, drr)
        if n:
            convolve_inplace(audio, ir, max(1 << 18, 1 << int(math.ceil(math.log2(4 * len(ir))))))
        meta["room"] = room
    else:
        meta["room"] = None
    mic_sos = None
    if mic_colouration:
        mic_sos, meta["mic"] = mic_colouration_sos(np.random.default_rng(ss_mic), fs)
        sosfilt_inplace(audio, mic_sos, block)
    else:
        meta["mic"] = None
    step_power = block_power(audio, block)
    meta["step_track_power_dbfs"] = 10 * math.log10(step_power) if step_power > 0 else None

    # ---- noise
    realised = None
    noise_name = "silence"
    if noise_on:
        noise_name = os.fspath(noise)
        cad_lo, cad_hi = float(np.min(sched_spm)), float(np.max(sched_spm))
        src = make_source(noise, n, fs, np.random.default_rng(ss_noise), np.linspace(cad_lo, cad_hi, 9))
        bed = np.empty(n, dtype=np.float32)
        mic_noise = SOSChain(mic_sos) if mic_sos is not None else None
        for a in range(0, n, block):
            y = src.render(min(block, n - a))
            bed[a : a + len(y)] = mic_noise(y) if mic_noise is not None else y
        noise_power = block_power(bed, block)
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
    mic_gain = db(mic_gain_db)
    peak = block_peak(audio, block) * mic_gain
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
