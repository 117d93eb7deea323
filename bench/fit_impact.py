#!/usr/bin/env python
"""Which step loudness tracks the true per-step gain? (impact grader study)

Runs the Engine on bench_world scenes and, for every step matched to a true
onset (+-50 ms), collects the detector's features and the step's true gain.
Then scores loudness measures by how well their within-scene deviation (from
the scene's median) follows the gain's (Pearson r, pooled), and fits a
gain-preserving linear mix of dB features (weights summing to 1, so a gain of
g dB moves the mix by g dB) by least squares -- on the *tuning* scenes only
(step banks bbc, moodist x beds street, domestic, speech; seeds of their own),
then reports it on the held-out scenes of the benchmark grid.

Run from the repository root::

    PYTHONPATH=. .venv/bin/python bench/fit_impact.py [--scenes 60]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _common import single_thread_env, stable_seed  # noqa: E402

single_thread_env()

import numpy as np  # noqa: E402

import bench_world as bw  # noqa: E402

COLS = ("peak_db", "energy_db", "low_db", "mid_db", "high_db", "landing_db")


def collect(specs, data, banks, config=None):
    import mir_eval

    from stepsound.engine import Engine, Step
    from stepsound.grade.strike import landing_db

    rows = []
    for spec in specs:
        y, rate, truth, gains, stop = bw.render(spec, data, banks)
        eng = Engine(rate, config)
        steps = [e for e in eng.process(y) if isinstance(e, Step)]
        est = np.array([s.onset_sample for s in steps], float) / rate
        pairs = mir_eval.util.match_events(truth, est, 0.05) if len(truth) and len(est) else []
        for i, j in pairs:
            f = steps[j].features
            v = [f.get(c, np.nan) for c in COLS[:-1]] + [landing_db(f)]
            rows.append([spec.index, gains[i]] + v)
    return np.array(rows, float)


def deviations(rows):
    """Per-scene deviation of gain and of every feature from the scene's median."""
    out = rows.copy()
    for s in np.unique(rows[:, 0]):
        sel = rows[:, 0] == s
        out[sel, 1:] = rows[sel, 1:] - np.nanmedian(rows[sel, 1:], axis=0)
    ok = np.all(np.isfinite(out[:, 1:]), axis=1)
    return out[ok]


def fit_mix(dev):
    """Weights (sum 1) of the dB features (landing_db excluded) minimising squared error to the gain."""
    X = dev[:, 2:2 + len(COLS) - 1]
    g = dev[:, 1]
    # w = w0 + N z with sum w = 1: w0 = e_last, N spans the sum-zero subspace
    k = X.shape[1]
    w0 = np.zeros(k)
    w0[1] = 1.0                                    # energy_db
    N = np.eye(k)[:, :-1] - np.eye(k)[:, -1:]      # columns e_i - e_last
    z, *_ = np.linalg.lstsq(X @ N, g - X @ w0, rcond=None)
    return w0 + N @ z


def report(name, dev, w=None):
    g = dev[:, 1]
    print(f"{name}: {len(dev)} steps")
    for c, col in enumerate(COLS):
        print(f"  {col:12s} r {np.corrcoef(dev[:, 2 + c], g)[0, 1]:.3f}")
    if w is not None:
        mix = dev[:, 2:2 + len(COLS) - 1] @ w
        print(f"  {'mix':12s} r {np.corrcoef(mix, g)[0, 1]:.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--model", default=None)
    args = ap.parse_args(argv)
    data = bw.find_data(None)
    banks = bw.load_banks(data)
    cfg = None
    if args.model:
        from stepsound.detect.detector import DetectorConfig

        cfg = DetectorConfig().replace(model=None if args.model == "none" else args.model)
    rng = np.random.default_rng(1)
    tune = []
    for i in range(args.scenes):
        sf = bw.TUNING_STEPS[i % 2]
        bf = bw.TUNING_BEDS[(i // 2) % 3]
        tune.append(bw.Scene(i, sf, bf, float(rng.uniform(-3, 12)), stable_seed("impact-fit", i) % 1_000_000, 40.0,
                             heavy=bool(i % 2)))
    dt = deviations(collect(tune, data, banks, cfg))
    w = fit_mix(dt)
    print("mix weights " + ", ".join(f"{c} {x:+.3f}" for c, x in zip(COLS[:-1], w)))
    report("tuning (fit)", dt, w)
    held = [s for s in bw.build_grid(False, 1, 40.0)
            if s.step_family not in bw.TUNING_STEPS or s.bed_family not in bw.TUNING_BEDS][::4]
    report(f"held-out grid ({len(held)} scenes)", deviations(collect(held, data, banks, cfg)), w)


if __name__ == "__main__":
    main()
