"""Train the candidate gate: a small network that vetoes candidate steps that are not footfalls.

The hand-made detection function proposes candidates (a rise in several bands above the noise
floor); at each candidate's decision the core knows a handful of numbers about it
(``stepsound.detect._core.CANDIDATE_FEATURES``: band levels over the noise floor and over the
level just before it, its strength and level against this runner's typical step, where it falls
in the rhythm).  Clinks, consonants, drum hits and rustles differ from footfalls in those numbers
often enough to veto a share of them before they take a step's place.

Leave-one-source-out: the training scenes use only the *tuning* sources of bench_world (step banks
bbc and moodist, augmented as for stepnet v2; beds street, domestic, speech) plus generated sounds:
the bed families of ``train_stepnet.py`` (coloured noise, motor hum, thumps at non-step rates) and
plain impacts (:func:`generated_impacts`; not stepsound's synthesiser), with seeds of their own.  Held out, as in bench_world: banks mii and synth, beds machine, music,
treadmill, ticking, and every real recording.

Rounds: candidates are logged with the detector as shipped *without* a gate, a network is fitted;
then logged again *with* that gate (a vetoed candidate no longer opens a refractory interval, so
later candidates differ) and the network refitted on both.  Labels: a candidate is a step when a
true onset no earlier detection claimed lies within 60 ms before to 20 ms after its hop.

Usage::

    PYTHONPATH=. python bench/train_gate.py [--scenes 240] [--out stepsound/detect/models/gate.npz]

Prints the fit per round.  The threshold written to the archive (``--threshold``) is chosen on
bench_world's tuning scenes only: ``DetectorConfig(gate=PATH, gate_threshold=T)`` for several T with
``bench_world.py --tuning-only`` (see bench/RESULTS.md, "candidate gate").
"""
from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_world as bw  # noqa: E402
import train_stepnet as ts  # noqa: E402
from _common import stable_seed  # noqa: E402
from stepsound.detect._core import CANDIDATE_FEATURES  # noqa: E402
from stepsound.detect.detector import Detector, DetectorConfig  # noqa: E402

BEDS = bw.TUNING_BEDS + ts.GEN_BEDS
#: Step families: the tuning banks, and generated impacts (not stepsound.synth, which stays held out)
STEPS = bw.TUNING_STEPS + ("gen_impact",)
GEN_RATE = 48000
BEFORE_S, AFTER_S = 0.060, 0.020
HIDDEN = 12
ROUND2_THRESHOLD = 0.3   # the round-1 gate's threshold while round 2 logs candidates
_DATA: Path | None = None
_BANKS: dict | None = None


def _init(data: str):
    global _DATA, _BANKS
    _DATA = Path(data)
    _BANKS = ts.train_banks(_DATA, v2=True, n_aug=3)
    _BANKS["gen_impact"] = generated_impacts(200, np.random.default_rng(stable_seed("gate-impacts") % 2**32))


def generated_impacts(n: int, rng) -> list:
    """Plain impact sounds: decaying noise bursts of random colour, decay and band, some with a
    low thud, some with a second impact (heel then forefoot); in bench_world's event format
    (20 ms of silence, then the impact; unit power over its first 50 ms).

    Domain randomization on the step side: the real banks hold a few dozen distinct recordings, and
    a gate fitted to them alone takes a clean broadband impact for a clink.
    """
    from scipy.signal import butter, sosfilt

    out = []
    pre = int(bw.PRE_S * GEN_RATE)
    m = int(0.15 * GEN_RATE)
    t = np.arange(m) / GEN_RATE
    for _ in range(n):
        x = rng.standard_normal(m)
        tilt = rng.uniform(-6.0, 3.0)            # dB per octave
        spec = np.fft.rfft(x)
        f = np.fft.rfftfreq(m, 1 / GEN_RATE)
        spec *= (np.maximum(f, 50.0) / 1000.0) ** (tilt / 6.02)
        x = np.fft.irfft(spec, m)
        lo, hi = rng.uniform(30.0, 400.0), rng.uniform(3000.0, 16000.0)
        x = sosfilt(butter(2, [lo, hi], "bandpass", fs=GEN_RATE, output="sos"), x)
        x *= np.exp(-t / rng.uniform(0.004, 0.04))
        if rng.random() < 0.5:                   # a thud under it
            f0 = rng.uniform(40.0, 150.0)
            x += rng.uniform(0.3, 2.0) * np.std(x) * np.sin(2 * np.pi * f0 * t) * np.exp(-t / rng.uniform(0.01, 0.05))
        if rng.random() < 0.3:                   # a second impact 20-90 ms later
            d = int(rng.uniform(0.02, 0.09) * GEN_RATE)
            x[d:] += rng.uniform(0.3, 1.2) * x[:m - d]
        x *= np.minimum(1.0, np.arange(m) / max(1, int(rng.uniform(0.0002, 0.003) * GEN_RATE)))
        ev = np.concatenate([np.zeros(pre), x])
        p = float(np.mean(ev[pre:pre + int(bw.UNIT_WIN_S * GEN_RATE)] ** 2))
        out.append((ev / np.sqrt(p), GEN_RATE))
    return out


def scene_spec(i: int, duration_s: float) -> "bw.Scene":
    rng = np.random.default_rng(stable_seed("gate-train", i) % 2**32)
    sf = STEPS[int(rng.integers(len(STEPS)))]
    bf = BEDS[int(rng.integers(len(BEDS)))]
    snr = float(rng.uniform(-6.0, 15.0))
    return bw.Scene(i, sf, bf, snr, int(rng.integers(1_000_000)), duration_s, heavy=bool(rng.random() < 0.5))


def label(hops: np.ndarray, passed: np.ndarray, hop_s: float, truth: np.ndarray) -> np.ndarray:
    """1 where a candidate is a step (see the module notes), in candidate order."""
    y = np.zeros(len(hops), bool)
    claimed = np.zeros(len(truth), bool)
    for i, (h, ok) in enumerate(zip(hops, passed)):
        t = h * hop_s
        d = t - truth
        near = np.flatnonzero((d >= -AFTER_S) & (d <= BEFORE_S) & ~claimed)
        if len(near):
            y[i] = True
            if ok:
                claimed[near[np.argmin(np.abs(d[near]))]] = True
    return y


def log_scene(args) -> tuple[np.ndarray, np.ndarray]:
    i, duration_s, gate = args
    spec = scene_spec(i, duration_s)
    y, rate, truth, _, _ = ts.render_scene(spec, _DATA, _BANKS)
    det = Detector(rate, DetectorConfig(gate=gate))
    det._core.log_candidates(100_000)
    det.process(y)
    rows = det._core.candidate_log
    score = rows[:, 2]
    committed = rows[:, 1] > 0 if gate is None else (rows[:, 1] > 0) & (score >= det.gate_threshold)
    lab = label(rows[:, 0], committed, det.hop_length / rate, truth)
    return rows[:, 3:], lab


def fit(x: np.ndarray, y: np.ndarray, seed: int = 0):
    from sklearn.neural_network import MLPClassifier

    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = MLPClassifier((HIDDEN,), activation="tanh", alpha=1e-3, max_iter=600, random_state=seed,
                        early_stopping=True, validation_fraction=0.15)
    clf.fit((x - mu) / sd, y)
    return {"mu": mu, "sd": sd, "w1": clf.coefs_[0].T.copy(), "b1": clf.intercepts_[0].copy(),
            "w2": clf.coefs_[1][:, 0].copy(), "b2": float(clf.intercepts_[1][0])}, clf


def auc(p: np.ndarray, y: np.ndarray) -> float:
    o = np.argsort(p)
    r = np.empty(len(p))
    r[o] = np.arange(len(p))
    npos = y.sum()
    nneg = len(y) - npos
    return float((r[y].sum() - npos * (npos - 1) / 2) / max(1, npos * nneg))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=240, help="training scenes per round (default 240)")
    ap.add_argument("--duration", type=float, default=30.0, help="scene length [s]")
    ap.add_argument("--data", default=None, help="shared data folder (default <repo>/../shared/data)")
    ap.add_argument("--out", default="stepsound/detect/models/gate.npz")
    ap.add_argument("--threshold", type=float, default=0.5,
                    help="gate threshold written to the archive (chosen on bench_world --tuning-only)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    data = bw.find_data(args.data)
    if data is None:
        print("no shared data folder: nothing to train on", file=sys.stderr)
        return 2
    t0 = time.time()
    xs, ys = [], []
    gate_path = None
    for rnd in range(2):
        jobs = [(i + rnd * 100_000, args.duration, gate_path) for i in range(args.scenes)]
        with Pool(args.jobs, initializer=_init, initargs=(str(data),)) as pool:
            out = pool.map(log_scene, jobs, chunksize=4)
        xs += [o[0] for o in out]
        ys += [o[1] for o in out]
        x, y = np.vstack(xs), np.concatenate(ys)
        weights, clf = fit(x, y)
        p = clf.predict_proba((x - weights["mu"]) / weights["sd"])[:, 1]
        print(f"round {rnd + 1}: {len(y)} candidates, {y.mean():.3f} steps, training AUC {auc(p, y):.3f}, "
              f"{time.time() - t0:.0f} s")
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        # round 2 logs with the round-1 gate at ROUND2_THRESHOLD; the archive ships args.threshold
        thr = args.threshold if rnd == 1 else ROUND2_THRESHOLD
        np.savez(tmp, features=np.array(CANDIDATE_FEATURES), threshold=thr, **weights)
        tmp.replace(path)
        gate_path = str(path)
    print(f"wrote {args.out} (hidden {HIDDEN}, threshold {args.threshold})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
