#!/usr/bin/env python
"""Impact grader study on the bench_world scenes (issue 9: impact that tracks the landing).

``collect`` runs the Engine over the bench_world grid (the same 280 scenes as
``bench_world.py``, stepsound only) and stores, for every step in order, its
detector features, its time, and the true gain of the placed step it matches
(+-50 ms; NaN if none), with the scene's conditions (SNR, channel).  ``score``
then replays candidate graders (loudness measure x baseline) over the stored
steps exactly as the grader would run live (causal, one step at a time) and
scores them as ``bench_world.impact_pairs`` / ``summary`` do: pooled Pearson r
of impact vs true gain over matched steps after the first 8 steps, heavy P/R
(unmatched heavy detections in heavy scenes are false positives) -- pooled,
and broken down by SNR and channel condition.

The measures ``bands_e`` / ``band_snr(win="e")`` need the band powers over the
energy window (``low_e_db`` ...), and the hop-median ones ``energy_m3_db`` /
``energy_m5_db``: features of the study build of the core (commit db02fb4),
removed since; collect with that build to replay them.

Tuning = the grid's step banks bbc, moodist x beds street, domestic, speech;
everything else is held out and printed only with ``--held``.

Run from the repository root::

    PYTHONPATH=. .venv/bin/python bench/impact_study.py collect --out /tmp/impact_rows.pkl
    PYTHONPATH=. .venv/bin/python bench/impact_study.py score --rows /tmp/impact_rows.pkl [--held]
"""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _common import single_thread_env  # noqa: E402

single_thread_env()

import numpy as np  # noqa: E402

import bench_world as bw  # noqa: E402


def collect(out: str, seeds: int = 2, duration: float = 40.0, tuning_only: bool = False) -> None:
    import mir_eval

    from stepsound.engine import Engine, Step

    data = bw.find_data(None)
    banks = bw.load_banks(data)
    scenes = []
    specs = bw.build_grid(False, seeds, duration)
    if tuning_only:
        specs = [sp for sp in specs if sp.step_family in bw.TUNING_STEPS and sp.bed_family in bw.TUNING_BEDS]
    for k, spec in enumerate(specs):
        y, rate, truth, gains, stop = bw.render(spec, data, banks)
        eng = Engine(rate, bw.DETECTOR_CONFIG)
        steps = [e for e in eng.process(y) if isinstance(e, Step)]
        est = np.array([s.onset_sample for s in steps], float) / rate
        pairs = mir_eval.util.match_events(truth, est, 0.05) if len(truth) and len(est) else []
        g = np.full(len(steps), np.nan)
        for i, j in pairs:
            g[j] = gains[i]
        names = list(steps[0].features) if steps else []
        feats = np.array([[s.features[n] for n in names] for s in steps], float).reshape(len(steps), len(names))
        scenes.append({"index": spec.index, "steps": spec.step_family, "bed": spec.bed_family, "snr": spec.snr_db,
                       "heavy": spec.heavy, "channel": dict(spec.channel), "rate": rate, "label": spec.bed_label,
                       "t": est, "gain": g, "names": names, "X": feats,
                       "impact": np.array([s.impact_db for s in steps], float),
                       "is_heavy": np.array([s.heavy for s in steps], bool)})
        if (k + 1) % 20 == 0:
            print(f"  {k + 1} scenes", flush=True)
    with open(out, "wb") as fh:
        pickle.dump(scenes, fh)


def is_tuning(sc: dict) -> bool:
    return sc["steps"] in bw.TUNING_STEPS and sc["bed"] in bw.TUNING_BEDS


# --------------------------------------------------------------------------- graders

def pw(db):
    return 10.0 ** (np.asarray(db, float) / 10.0)


def col(sc, name):
    return sc["X"][:, sc["names"].index(name)]


def measure(sc: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(loudness dB per step, confidence dB per step) of one scene's steps."""
    bands = ("low", "mid", "high")
    if kind == "landing":       # today's: 120 ms bands summed
        lv = 10 * np.log10(sum(pw(col(sc, b + "_db")) for b in bands))
    elif kind == "energy":
        lv = col(sc, "energy_db")
    elif kind == "peak":
        lv = col(sc, "peak_db")
    elif kind == "median":
        lv = col(sc, "median_db")
    elif kind == "bands_e":     # 50 ms bands summed
        lv = 10 * np.log10(sum(pw(col(sc, b + "_e_db")) for b in bands))
    else:
        raise ValueError(kind)
    conf = col(sc, "snr_db")
    return lv, conf


def band_snr(sc, win="e"):
    suf = "_e_db" if win == "e" else "_db"
    lv = np.stack([col(sc, b + suf) for b in ("low", "mid", "high")], 1)
    nz = np.stack([col(sc, b + "_noise_db") for b in ("low", "mid", "high")], 1)
    return lv, nz


def replay(sc: dict, lv: np.ndarray, conf: np.ndarray | None = None, *, history=300, min_conf=None,
           heavy_db=6.0, heavy_conf=None, baseline="mode", ref=None) -> np.ndarray:
    """Impact per step (NaN where not graded); causal, as ImpactBaseline."""
    from stepsound.grade.impact import usual_level_db

    out = np.full(len(lv), np.nan)
    recent: list[float] = []
    for j, v in enumerate(lv):
        if not np.isfinite(v):
            continue
        base = usual_level_db(np.array(recent[-history:])) if recent else None
        out[j] = 0.0 if base is None else v - base
        if min_conf is None or conf is None or conf[j] >= min_conf:
            recent.append(v)
    return out


def banded_impact(sc, *, win="e", min_snr=6.0, history=300, mode="common"):
    """Band-wise deviations from each band's own usual level, weighted by band SNR.

    Each band b keeps its own rolling usual level; a step's impact is the
    SNR-weighted mean of (level_b - usual_b) over the bands where the step
    stands >= min_snr dB above that band's noise floor (weights: excess power
    over the noise, capped); with no such band, the loudest-SNR band alone.
    """
    from stepsound.grade.impact import usual_level_db

    lv, nz = band_snr(sc, win)
    snr = lv - nz
    n = len(lv)
    out = np.full(n, np.nan)
    conf = np.full(n, np.nan)
    recent = [[], [], []]
    for j in range(n):
        s = snr[j]
        if not np.all(np.isfinite(lv[j])):
            continue
        ok = s >= min_snr
        w = np.where(ok, np.minimum(pw(s), 1e3), 0.0)
        if not ok.any():
            b = int(np.argmax(s))
            w = np.zeros(3)
            w[b] = 1.0
        conf[j] = float(np.max(s))
        devs = np.full(3, np.nan)
        for b in range(3):
            if recent[b]:
                devs[b] = lv[j, b] - usual_level_db(np.array(recent[b][-history:]))
        m = np.isfinite(devs) & (w > 0)
        out[j] = float(np.sum(w[m] * devs[m]) / np.sum(w[m])) if m.any() else 0.0
        for b in range(3):
            if s[b] >= min_snr:
                recent[b].append(lv[j, b])
    return out, conf


# --------------------------------------------------------------------------- scoring

def score(scenes: list[dict], impacts: list[np.ndarray], heavy_db=6.0, conf=None, heavy_conf=None) -> dict:
    imp, gain, tp, fp, fn = [], [], 0, 0, 0
    for k, (sc, im) in enumerate(zip(scenes, impacts)):
        for j in range(len(im)):
            if j < bw.MIN_READY_STEPS:
                continue
            h = bool(np.isfinite(im[j]) and im[j] >= heavy_db)
            if h and heavy_conf is not None and conf is not None:
                h = bool(conf[k][j] >= heavy_conf)
            g = sc["gain"][j]
            if not np.isfinite(g):
                fp += int(h and sc["heavy"])
                continue
            if np.isfinite(im[j]):
                imp.append(im[j])
                gain.append(g)
            if sc["heavy"]:
                th = g >= bw.HEAVY_DB / 2
                tp += int(h and th)
                fp += int(h and not th)
                fn += int((not h) and th)
    imp, gain = np.array(imp), np.array(gain)
    r = float(np.corrcoef(imp, gain)[0, 1]) if imp.size > 2 else float("nan")
    return {"r": r, "mae": float(np.mean(np.abs(imp - gain))) if imp.size else float("nan"),
            "P": tp / (tp + fp) if tp + fp else float("nan"), "R": tp / (tp + fn) if tp + fn else float("nan"),
            "n": int(imp.size)}


CONDS = [("all", lambda s: True),
         ("SNR>=3", lambda s: s["snr"] >= 3), ("SNR 12", lambda s: s["snr"] == 12), ("SNR 6", lambda s: s["snr"] == 6),
         ("SNR 3", lambda s: s["snr"] == 3), ("SNR 0", lambda s: s["snr"] == 0), ("SNR -3", lambda s: s["snr"] == -3),
         ("no AGC/jump", lambda s: not s["channel"].get("agc") and not s["channel"].get("jump")),
         ("AGC", lambda s: bool(s["channel"].get("agc"))), ("jump", lambda s: bool(s["channel"].get("jump"))),
         ("reverb", lambda s: bool(s["channel"].get("reverb"))), ("no reverb", lambda s: not s["channel"].get("reverb")),
         ("codec", lambda s: "codec" in s["channel"]), ("clip", lambda s: bool(s["channel"].get("clip"))),
         ("clean (no AGC/jump/clip/codec)", lambda s: not any(k in s["channel"] for k in ("agc", "jump", "clip", "codec"))),
         ("natural gains", lambda s: not s["heavy"]), ("heavy scenes", lambda s: s["heavy"])]


def breakdown(scenes, impacts, conf=None, heavy_conf=None, conds=CONDS):
    rows = []
    for name, fn in conds:
        idx = [k for k, s in enumerate(scenes) if fn(s)]
        s = score([scenes[k] for k in idx], [impacts[k] for k in idx],
                  conf=None if conf is None else [conf[k] for k in idx], heavy_conf=heavy_conf)
        rows.append((name, len(idx), s))
    return rows


def show(title, rows):
    print(f"\n{title}")
    for name, n, s in rows:
        print(f"  {name:32s} {n:4d} scenes {s['n']:6d} steps  r {s['r']:.3f}  MAE {s['mae']:.2f}  "
              f"heavy P {s['P']:.3f} R {s['R']:.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", required=True)
    c.add_argument("--tuning-only", action="store_true", help="only the tuning steps x tuning beds scenes")
    s = sub.add_parser("score")
    s.add_argument("--rows", required=True)
    s.add_argument("--held", action="store_true", help="also print held-out scenes")
    args = ap.parse_args(argv)
    if args.cmd == "collect":
        collect(args.out, tuning_only=args.tuning_only)
        return
    with open(args.rows, "rb") as fh:
        scenes = pickle.load(fh)
    groups = [("tuning", [s for s in scenes if is_tuning(s)])]
    if args.held:
        groups.append(("held-out", [s for s in scenes if not is_tuning(s)]))
    for gname, scs in groups:
        show(f"[{gname}] grader at collection time", breakdown(scs, [s["impact"] for s in scs]))
        show(f"[{gname}] LandingGrader of this tree, replayed on the stored features",
             breakdown(scs, [grade_now(s) for s in scs]))


def grade_now(sc: dict) -> np.ndarray:
    """Impacts of this tree's LandingGrader over one scene's stored step features (heavy: see score)."""
    from stepsound.grade.impact import LandingGrader

    g = LandingGrader()
    out = np.full(len(sc["X"]), np.nan)
    for j, row in enumerate(sc["X"]):
        gr = g.grade(dict(zip(sc["names"], map(float, row))))
        # score() calls a step heavy at impact >= 6 dB; a step the grader would not call heavy
        # (low confidence) is reported just below the threshold so that score() agrees
        out[j] = gr.impact_db if gr.heavy or not (gr.impact_db >= g.heavy_db) else np.nextafter(g.heavy_db, -1)
    return out


if __name__ == "__main__":
    main()


def render_variant(spec, data, banks, *, noise=True, channel=True):
    """bench_world.render with the bed (``noise=False``: silent) and/or the channel after the room
    (``channel=False``: no EQ, AGC, jump, clipping, codec) switched off; the random draws are the
    same, so the steps, gains and room are those of the benchmark scene."""
    import bench_world as w

    orig = (w.mic_eq, w.agc, w.codec, w.bed_audio)
    rng_state = {}
    try:
        if not channel:
            w.mic_eq = lambda y, rate, rng: (orig[0](y, rate, rng), y)[1]
            w.agc = lambda y, rate: y
            w.codec = lambda y, rate, kind, kbps: y
        if not noise:
            w.bed_audio = lambda *a: (lambda b: (b[0] * 0.0, b[1]))(orig[3](*a))
        y, rate, truth, gains, stop = w.render(spec, data, banks)
    finally:
        w.mic_eq, w.agc, w.codec, w.bed_audio = orig
    return y, rate, truth, gains, stop, rng_state
