"""Landing grading bench: impact tracking, heavy flags and heel/forefoot accuracy.

Every scene is synthesised (:func:`stepsynth.synth_run`) with exact
per-step truth, then streamed through the same :class:`Engine` and
:class:`LandingGrader` as ``analyze`` and live sessions.

Impact
    Runs whose step loudness follows known blocks (0 dB, then blocks of
    6–16 steps at -6, -3, +3, +9 or +12 dB between stretches of normal
    steps), at SNR {12, 6, 3, 0} dB in treadmill noise and microphone gains
    {-24, 0, +12} dB, heel-first and forefoot runners.  True impact of a step
    = its exact gain (``level_db``: block + natural jitter + left/right
    asymmetry) minus the median gain of the runner's normal (0 dB block)
    steps.  Measured: ``impact_db`` from the grader (default rolling
    300-step "usual loudness" baseline, nothing frozen), for every detected
    step matched to a true one (extra detections included).  The first 24 steps (baseline
    warm-up) are left out.  Reported: Pearson r, RMS error [dB], heavy
    agreement (truth: true impact >= 6 dB).

Strike
    Per runner (6 runner seeds) and SNR {6, 3, 0} dB: a heel-first and a
    forefoot recording of 90 s and a mixed-landing recording of 60 s, same
    room, microphone and treadmill.  Calibration: the steps of the first
    30 s of the heel and forefoot recordings ("file", like
    ``calibrate --heel --forefoot``), or only 20 steps of each after 5 s
    ("live", like ``calibrate --live``).  Test: every step after 30 s of both
    recordings and every step of the mixed one -- never a calibration step.
    Reported: accuracy (an "uncertain" answer counts as wrong), share
    labelled, accuracy among labelled steps, confident wrong labels.

Usage::

    PYTHONPATH=. python bench/bench_grading.py [--quick] [--jobs N] [--results bench/RESULTS.md]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from stepsound.engine import Engine, Step
from stepsound.grade.impact import LandingGrader
from stepsound.grade.strike import fit_strike_classifier, strike_matrix
from stepsynth import synth_run

SAMPLE_RATE = 44100
BLOCK_LEVELS_DB = (-6.0, -3.0, 3.0, 9.0, 12.0)
HEAVY_DB = 6.0
WARMUP_STEPS = 24
MATCH_TOL_S = 0.09  # the slap of a heel landing can be 70 ms after contact


def level_blocks(n_steps: int, seed: int) -> np.ndarray:
    """Per-step level [dB]: 24 normal steps, then blocks of 6–16 off-normal steps between 6–20 normal ones."""
    rng = np.random.default_rng(seed)
    lv = np.zeros(n_steps)
    i = WARMUP_STEPS
    while i < n_steps:
        i += int(rng.integers(6, 21))
        n = int(rng.integers(6, 17))
        lv[i:i + n] = rng.choice(BLOCK_LEVELS_DB)
        i += n
    return lv


def run_engine(audio: np.ndarray, sample_rate: int, grader=None, block_size: int = 4096) -> list:
    """Stream audio through an Engine; return its Steps (extra detections included)."""
    eng = Engine(sample_rate, grader=grader)
    steps = []
    for a in range(0, len(audio), block_size):
        steps += [ev for ev in eng.process(audio[a:a + block_size]) if isinstance(ev, Step)]
    return steps


def match_steps(truth_samples: np.ndarray, steps: list, sample_rate: int, tol_s: float = MATCH_TOL_S) -> list:
    """(truth index, step) pairs: each detected step to its nearest true onset within ``tol_s``, one to one."""
    pairs, used = [], set()
    tol = tol_s * sample_rate
    for s in steps:
        if not len(truth_samples):
            continue
        j = int(np.argmin(np.abs(truth_samples - s.onset_sample)))
        if abs(truth_samples[j] - s.onset_sample) <= tol and j not in used:
            used.add(j)
            pairs.append((j, s))
    return pairs


def impact_case(args) -> dict:
    snr_db, mic_gain_db, strike, seed, duration_s = args
    lv = level_blocks(int(duration_s * 4) + 10, seed)
    sc = synth_run(duration_s, SAMPLE_RATE, seed=seed, snr_db=snr_db, noise="treadmill", strike=strike,
                   step_level_db=lv, mic_gain_db=mic_gain_db)
    steps = run_engine(sc.audio, sc.sample_rate, LandingGrader(heavy_db=HEAVY_DB))
    pairs = [(j, s) for j, s in match_steps(sc.onset_samples(), steps, sc.sample_rate) if j >= WARMUP_STEPS]
    true_level = np.array([t.level_db for t in sc.steps])
    normal = np.array([d["user_db"] == 0.0 for d in sc.meta["step_details"]])
    ref = np.median(true_level[normal])
    t_imp = np.array([true_level[j] - ref for j, _ in pairs])
    m_imp = np.array([s.impact_db for _, s in pairs])
    ok = np.isfinite(m_imp)
    t_imp, m_imp = t_imp[ok], m_imp[ok]
    m_heavy = np.array([s.heavy for _, s in pairs])[ok]
    err = m_imp - t_imp
    return {
        "snr_db": snr_db, "mic_gain_db": mic_gain_db, "strike": strike, "steps": len(sc.steps),
        "graded": int(len(t_imp)),
        "r": float(np.corrcoef(t_imp, m_imp)[0, 1]) if len(t_imp) > 2 else float("nan"),
        "rms_db": float(np.sqrt(np.mean(err ** 2))) if len(err) else float("nan"),
        "bias_db": float(np.median(err)) if len(err) else float("nan"),
        "heavy_agree": float(np.mean(m_heavy == (t_imp >= HEAVY_DB))) if len(err) else float("nan"),
        "heavy_true": int(np.sum(t_imp >= HEAVY_DB)),
    }


def strike_case(args) -> dict:
    runner, snr_db, duration_s = args
    seed = 1000 + 10 * runner
    rec = {}
    for strike, dur in (("heel", duration_s), ("forefoot", duration_s), ("mixed", duration_s * 2 / 3)):
        sc = synth_run(dur, SAMPLE_RATE, seed=seed, runner_seed=runner, snr_db=snr_db, noise="treadmill",
                       strike=strike)
        steps = run_engine(sc.audio, sc.sample_rate)
        rec[strike] = [(sc.steps[j].strike, s) for j, s in match_steps(sc.onset_samples(), steps, sc.sample_rate)]
    split_s = duration_s / 3
    out = {"runner": runner, "snr_db": snr_db}
    test = [(t, s) for t, s in rec["heel"] + rec["forefoot"] if s.time_s >= split_s] + rec["mixed"]
    truth = np.array([t for t, _ in test])
    X = strike_matrix([s for _, s in test])
    for mode in ("file", "live"):
        if mode == "file":
            heel = [s for _, s in rec["heel"] if s.time_s < split_s]
            fore = [s for _, s in rec["forefoot"] if s.time_s < split_s]
        else:
            heel = [s for _, s in rec["heel"] if s.time_s >= 5.0][:20]
            fore = [s for _, s in rec["forefoot"] if s.time_s >= 5.0][:20]
        clf, report = fit_strike_classifier(heel, fore)
        labels, _ = clf.classify_rows(X)
        labels = np.array(labels)
        lab = labels != "uncertain"
        out[mode] = {
            "n_cal": (len(heel), len(fore)), "n_test": int(len(truth)),
            "accuracy": float(np.mean(labels == truth)),
            "labelled": float(np.mean(lab)),
            "labelled_accuracy": float(np.mean(labels[lab] == truth[lab])) if lab.any() else float("nan"),
            "confident_wrong": float(np.mean(lab & (labels != truth))),
            "cv_accuracy": report.cv_accuracy,
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter scenes, fewer runners")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--results", metavar="PATH", help="append/replace the '## Landing grading' section here")
    args = ap.parse_args(argv)
    t0 = time.time()
    impact_s = 60.0 if args.quick else 150.0
    strike_s = 60.0 if args.quick else 90.0
    runners = range(1, 3) if args.quick else range(1, 7)
    impact_cases = [(snr, gain, strike, 7 + i, impact_s)
                    for i, (snr, gain, strike) in enumerate(
                        (snr, gain, strike) for snr in (12, 6, 3, 0) for gain in (-24, 0, 12)
                        for strike in ("heel", "forefoot"))]
    strike_cases = [(r, snr, strike_s) for snr in (6, 3, 0) for r in runners]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        imp = list(pool.map(impact_case, impact_cases))
        stk = list(pool.map(strike_case, strike_cases))

    lines = ["## Landing grading", "",
             f"`PYTHONPATH=. python bench/bench_grading.py{' --quick' if args.quick else ''}` "
             f"({time.strftime('%Y-%m-%d')}, {time.time() - t0:.0f} s).  Synthetic treadmill runs "
             "(`stepsynth`), streamed through `Engine` + `LandingGrader` (default settings: "
             "300-step rolling usual-loudness baseline, nothing frozen, heavy at +6 dB).", "",
             f"### Impact vs known step gains ({impact_s:.0f} s runs; blocks at "
             f"{', '.join(f'{v:+g}' for v in BLOCK_LEVELS_DB)} dB; first {WARMUP_STEPS} steps left out)", "",
             "| SNR dB | mic gain dB | landing | graded/steps | r | RMS error dB | bias dB | heavy agreement |",
             "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for c in imp:
        lines.append(f"| {c['snr_db']} | {c['mic_gain_db']:+d} | {c['strike']} | {c['graded']}/{c['steps']} | "
                     f"{c['r']:.3f} | {c['rms_db']:.2f} | {c['bias_db']:+.2f} | {100 * c['heavy_agree']:.1f}% |")
    lines.append("")
    for snr in (12, 6, 3, 0):
        cs = [c for c in imp if c["snr_db"] == snr]
        lines.append(f"- SNR {snr} dB: r min {min(c['r'] for c in cs):.3f}, RMS error max "
                     f"{max(c['rms_db'] for c in cs):.2f} dB, heavy agreement min "
                     f"{100 * min(c['heavy_agree'] for c in cs):.1f}%")
    lines += ["", f"### Heel vs forefoot on held-out steps ({len(list(runners))} runners; treadmill noise)", "",
              "| SNR dB | calibration | cal. steps/class | accuracy (uncertain = wrong) | labelled | "
              "accuracy of labels | confident wrong | CV self-check |",
              "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for snr in (6, 3, 0):
        cs = [c for c in stk if c["snr_db"] == snr]
        for mode in ("file", "live"):
            ms = [c[mode] for c in cs]
            ncal = int(np.mean([min(m["n_cal"]) for m in ms]))
            lines.append(
                f"| {snr} | {mode} | {ncal} | {100 * np.mean([m['accuracy'] for m in ms]):.1f}% "
                f"(min {100 * min(m['accuracy'] for m in ms):.1f}%) | {100 * np.mean([m['labelled'] for m in ms]):.1f}% | "
                f"{100 * np.nanmean([m['labelled_accuracy'] for m in ms]):.1f}% | "
                f"{100 * np.mean([m['confident_wrong'] for m in ms]):.1f}% | "
                f"{100 * np.mean([m['cv_accuracy'] for m in ms]):.1f}% |")
    lines += ["", "\"file\": calibrated on the first 30 s of each recording; \"live\": on 20 steps of each. "
              "Test steps: the rest of both recordings plus a mixed-landing run (same runner and room).", ""]
    # the verdict is computed from this run's figures, never written by hand
    verdict = []
    bad_r = [c for c in imp if c["r"] < 0.95]
    bad_rms = [c for c in imp if c["rms_db"] > 1.5]
    bad_heavy = [c for c in imp if c["heavy_agree"] < 0.95]
    rms_text = "met" if not bad_rms else "MISSED in " + ", ".join(
        f"{c['snr_db']} dB {c['strike']} (gain {c['mic_gain_db']:+d}: {c['rms_db']:.2f} dB)" for c in bad_rms)
    verdict.append(f"impact r >= 0.95: {'met' if not bad_r else f'MISSED in {len(bad_r)} of {len(imp)} runs'}")
    verdict.append(f"RMS error <= 1.5 dB: {rms_text}")
    verdict.append(f"heavy agreement >= 95 %: {'met' if not bad_heavy else f'MISSED in {len(bad_heavy)} runs'}")
    for snr in (6, 3, 0):
        for mode in ("file", "live"):
            acc = 100 * np.mean([c[mode]["accuracy"] for c in stk if c["snr_db"] == snr])
            if acc < 90:
                verdict.append(f"strike accuracy >= 90 %: MISSED at {snr} dB SNR with {mode} calibration ({acc:.1f} %)")
    lines += ["Targets (computed): " + "; ".join(verdict) + ".", ""]
    text = "\n".join(lines)
    print(text)
    if args.results:
        _write_section(args.results, text)
    return 0


def _write_section(path: str, text: str) -> None:
    """Replace this bench's section of a results file (or append it), keeping the others."""
    old = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
    head = "## Landing grading"
    start = old.find(head)
    if start < 0:
        new = old.rstrip("\n") + ("\n\n" if old.strip() else "") + text
    else:
        nxt = old.find("\n## ", start + len(head))
        new = old[:start] + text.rstrip("\n") + ("\n\n" + old[nxt + 1:] if nxt >= 0 else "\n")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(new.rstrip("\n") + "\n")


if __name__ == "__main__":
    sys.exit(main())
