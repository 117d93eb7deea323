#!/usr/bin/env python
"""Train the learned step-onset model (stepsound/detect/models/stepnet.npz).

Training data: domain-randomized scenes from bench_world's own scene builder
(:func:`bench_world.render`: events placed on a cadence profile over a bed, room
reverb, mic EQ, AGC, level jump, clipping, MP3/Opus, 8-96 kHz, cadences
60-240 with stops, limps and intervals) built from the *tuning* sources only:

- step banks ``bbc`` and ``moodist`` (events cut from ../shared/data/footsteps);
  version 2 (``--hand-input``) adds ``--augment`` variants of each event:
  resampled by 0.88-1.12 (pitch and duration together; the onset kept at
  its place), a random low/high shelf (+-8 dB), so the banks hold
  (1 + augment) times as many events;
- beds ``street``, ``domestic`` and ``speech``; version 2 adds three bed
  families generated here from scratch (:func:`generated_bed`): steady
  coloured noise, motor hum with harmonics plus broadband hiss, and periodic
  thumps at non-step rates (0.2-0.7 Hz or 6-15 Hz) over noise.  These are
  *not* bench_world's held-out ``treadmill``/``ticking`` bed models;
- event SNR drawn uniformly from -6 to +15 dB; seeds in their own namespace
  (``stable_seed("stepnet-train", i)``), so no scene equals a benchmark scene.

Nothing held out by bench_world (step banks mii and synth, beds machine,
music, treadmill, ticking, the mii recordings) is read.  Audio is read at run
time from ../shared/data; only the trained weights are written to the
repository.

Features are computed by the Cython front end itself
(:meth:`stepsound.detect._stepnet.StepNet.features`), and with ``--hand-input``
the three extra inputs (functions of the hand-made ODF) by the detector core
itself (:meth:`stepsound.detect._core.StepDetector.trace`), so training and
inference see the same numbers.  Labels per hop: 1 for hops starting 0-24 ms after a true
onset, ignored from -10 to 0 ms and from 24 to 90 ms after it (the step's own
decay: the detector's refractory interval covers it), 0 elsewhere.

Model: causal dilated 1-D convolutions (PyTorch for training only; stepsound
never imports torch), exported as plain arrays.

Run from the repository root (one process, one thread)::

    PYTHONPATH=. .venv/bin/python bench/train_stepnet.py --scenes 320 --minutes 12
    # version 2 (the shipped model, 2026-12-03; written as stepnet2.npz, then moved to stepnet.npz):
    PYTHONPATH=. .venv/bin/python bench/train_stepnet.py --hand-input --scenes 480 --minutes 10 \
        --cache /tmp/stepnet2_cache.npz --out stepsound/detect/models/stepnet2.npz

Needs PyTorch (CPU build is enough:
``pip install torch --index-url https://download.pytorch.org/whl/cpu``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _common import single_thread_env, stable_seed  # noqa: E402

single_thread_env()

import numpy as np  # noqa: E402

import bench_world as bw  # noqa: E402
from stepsound.detect.stepnet import DEFAULT_CENTRES_HZ, DEFAULT_Q, MODEL_PATH, feature_extractor  # noqa: E402

TRAIN_STEPS = bw.TUNING_STEPS
TRAIN_BEDS = bw.TUNING_BEDS
GEN_BEDS = ("gen_colour", "gen_motor", "gen_thump")
N_EXTRA = 3      # extra inputs of version 2 (columns 0-2 of StepDetector.trace)
POS_S = (0.0, 0.024)
IGNORE_S = ((-0.010, 0.0), (0.024, 0.090))
FLOOR_UP, FLOOR_DOWN = 2.0, 8.0


def hop_of(rate: int) -> int:
    return max(1, int(round(0.002 * rate)))


def labels(n_hops: int, hop: int, rate: int, truth_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-hop target (0/1) and weight mask (0 = ignored) for true onsets [s]."""
    y = np.zeros(n_hops, np.float32)
    m = np.ones(n_hops, np.float32)
    start = np.arange(n_hops) * hop / rate
    for t in truth_s:
        for a, b in IGNORE_S:
            m[(start >= t + a) & (start < t + b)] = 0.0
    for t in truth_s:
        sel = (start >= t + POS_S[0]) & (start < t + POS_S[1])
        y[sel] = 1.0
        m[sel] = 1.0
    return y, m


# --------------------------------------------------------------------------- version 2 data

def generated_bed(family: str, n: int, rate: int, rng) -> np.ndarray:
    """A bed generated from scratch (unit RMS): not a bench_world source.

    Parameters
    ----------
    family : str
        ``gen_colour``: steady noise with a spectral slope of -6..+3 dB/octave
        (white to brown-ish), slowly level-modulated (+-2 dB);
        ``gen_motor``: a hum (fundamental 30-200 Hz, 2-12 harmonics of random
        amplitude, slight frequency wobble) plus band-limited hiss (lower edge
        300-3000 Hz) of random weight;
        ``gen_thump``: thumps at a non-step rate (0.2-0.7 Hz or 6-15 Hz;
        decaying 40-200 Hz sines, or short noise clicks) over coloured noise.
    n : int [samples]
    rate : int [Hz]
    rng : numpy.random.Generator

    Returns
    -------
    y : np.ndarray [shape=(n,), float64]
    """
    from scipy.signal import butter, sosfilt

    t = np.arange(n) / rate

    def coloured(slope_db_oct: float) -> np.ndarray:
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1.0 / rate)
        f[0] = f[1]
        spec *= (f / 1000.0) ** (slope_db_oct / (20 * np.log10(2)))
        z = np.fft.irfft(spec, n)
        return z / (np.std(z) + 1e-12)

    if family == "gen_colour":
        y = coloured(rng.uniform(-6.0, 3.0))
        y *= 10 ** (2.0 * np.sin(2 * np.pi * rng.uniform(0.02, 0.2) * t + rng.uniform(0, 6.3)) / 20)
    elif family == "gen_motor":
        f0 = rng.uniform(30.0, 200.0)
        phase = 2 * np.pi * f0 * np.cumsum(1 + 0.005 * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * t)) / rate
        hum = sum(rng.uniform(0.1, 1.0) * np.sin(k * phase + rng.uniform(0, 6.3))
                  for k in range(1, int(rng.integers(2, 13)) + 1) if k * f0 < 0.45 * rate)
        lo = min(rng.uniform(300.0, 3000.0), 0.3 * rate)
        hiss = sosfilt(butter(2, [lo, 0.45 * rate], "bandpass", fs=rate, output="sos"), rng.standard_normal(n))
        w = rng.uniform(0.2, 3.0)
        y = hum / (np.std(hum) + 1e-12) + w * hiss / (np.std(hiss) + 1e-12)
    elif family == "gen_thump":
        per_s = rng.uniform(0.2, 0.7) if rng.random() < 0.5 else rng.uniform(6.0, 15.0)
        m = int(0.08 * rate)
        tt = np.arange(m) / rate
        if rng.random() < 0.5:
            shape = np.sin(2 * np.pi * rng.uniform(40, 200) * tt) * np.exp(-tt / rng.uniform(0.005, 0.03))
        else:
            shape = rng.standard_normal(m) * np.exp(-tt / rng.uniform(0.001, 0.006))
        th = np.zeros(n)
        for start in np.arange(rng.uniform(0, 1 / per_s), n / rate, 1 / per_s):
            a = int((start + rng.normal(0, 0.003)) * rate)
            if 0 <= a < n:
                th[a:a + m] += shape[:min(m, n - a)] * rng.uniform(0.6, 1.0)
        y = th / (np.std(th) + 1e-12) + rng.uniform(0.1, 1.0) * coloured(rng.uniform(-6.0, 0.0))
    else:
        raise ValueError(family)
    y = y - np.mean(y)
    return y / (np.sqrt(np.mean(y * y)) + 1e-12)


def augment_bank(bank: list, n_aug: int, rng) -> list:
    """The events of a bank plus ``n_aug`` variants of each (resampled, shelved), onset kept at PRE_S.

    Parameters
    ----------
    bank : list of (event, rate)
        Events as :func:`bench_world.load_banks` gives them (unit power over
        the 50 ms after the onset, which is ``PRE_S`` into the event).
    n_aug : int
    rng : numpy.random.Generator

    Returns
    -------
    bank : list of (event, rate)
    """
    from scipy.signal import butter, sosfilt

    out = list(bank)
    for ev, rate in bank:
        pre = int(round(bw.PRE_S * rate))
        unit = int(round(bw.UNIT_WIN_S * rate))
        for _ in range(n_aug):
            f = rng.uniform(0.88, 1.12)          # played f times slower: pitch / f, duration * f
            e = bw.resample(ev, rate, int(round(rate * f)))   # at the original rate
            new_pre = int(round(pre * f))
            e = e[new_pre - pre:] if new_pre >= pre else np.concatenate([np.zeros(pre - new_pre), e])
            fc = rng.uniform(150.0, min(3000.0, 0.4 * rate))
            kind = "lowpass" if rng.random() < 0.5 else "highpass"
            g = 10 ** (rng.uniform(-8.0, 8.0) / 20) - 1.0
            e = e + g * sosfilt(butter(1, fc, kind, fs=rate, output="sos"), e)
            p = np.mean(e[pre:pre + unit] ** 2)
            out.append((e / np.sqrt(p + 1e-20), rate))
    return out


def hand_inputs(y: np.ndarray, rate: int) -> np.ndarray:
    """The extra inputs of version 2 per hop, from the detector core itself.

    Returns
    -------
    x : np.ndarray [shape=(hops, 3), float64]
        ``log1p(hand)``, ``hand / (peak + 6)``, ``log1p(peak)`` (see
        :meth:`stepsound.detect._core.StepDetector.trace`).
    """
    from stepsound.detect.detector import Detector

    det = Detector(rate)
    assert det.hop_length == hop_of(rate)
    return det._core.trace(np.ascontiguousarray(y, np.float32))[:, :N_EXTRA]


def scene_spec(i: int, duration_s: float, beds: tuple) -> "bw.Scene":
    rng = np.random.default_rng(stable_seed("stepnet-train", i) % 2**32)
    sf = TRAIN_STEPS[int(rng.integers(len(TRAIN_STEPS)))]
    bf = beds[int(rng.integers(len(beds)))]
    snr = float(rng.uniform(-6.0, 15.0))
    return bw.Scene(i, sf, bf, snr, int(rng.integers(1_000_000)), duration_s, heavy=bool(rng.random() < 0.5))


def render_scene(spec, data: Path, banks: dict):
    """bench_world.render, with the generated bed families added."""
    orig = bw.bed_audio

    def bed_audio(data_, family, n, rate, rng):
        if family in GEN_BEDS:
            return generated_bed(family, n, rate, rng), family
        return orig(data_, family, n, rate, rng)

    bw.bed_audio = bed_audio
    try:
        return bw.render(spec, data, banks)
    finally:
        bw.bed_audio = orig


def make_scene(i: int, data: Path, banks: dict, duration_s: float, v2: bool = False):
    spec = scene_spec(i, duration_s, TRAIN_BEDS + GEN_BEDS if v2 else TRAIN_BEDS)
    y, rate, truth, gains, stop = render_scene(spec, data, banks)
    hop = hop_of(rate)
    fe = feature_extractor(rate, hop, DEFAULT_CENTRES_HZ, DEFAULT_Q, FLOOR_UP, FLOOR_DOWN)
    f = fe.features(np.ascontiguousarray(y, np.float32))
    if v2:
        x = hand_inputs(y, rate)
        assert len(x) == len(f)
        f = np.hstack([f, x.astype(np.float32)])
    t, m = labels(len(f), hop, rate, truth)
    return f, t, m, spec


def train_banks(data: Path, v2: bool, n_aug: int) -> dict:
    banks = bw.load_banks(data)
    banks = {k: v for k, v in banks.items() if k in TRAIN_STEPS}   # held-out banks never used
    if v2 and n_aug > 0:
        rng = np.random.default_rng(stable_seed("stepnet-augment") % 2**32)
        banks = {k: augment_bank(v, n_aug, rng) for k, v in banks.items()}
    return banks


def build_cache(path: Path, n: int, data: Path, duration_s: float, v2: bool = False, n_aug: int = 0):
    banks = train_banks(data, v2, n_aug)
    print("events per bank: " + ", ".join(f"{k} {len(v)}" for k, v in banks.items()), flush=True)
    feats, ys, ms, info = [], [], [], []
    t0 = time.perf_counter()
    for i in range(n):
        f, t, m, spec = make_scene(i, data, banks, duration_s, v2)
        feats.append(f)
        ys.append(t)
        ms.append(m)
        info.append((spec.step_family, spec.bed_family, spec.snr_db, spec.rate, spec.profile))
        if (i + 1) % 20 == 0:
            print(f"  {i + 1}/{n} scenes, {time.perf_counter() - t0:.0f} s", flush=True)
    lens = np.array([len(f) for f in feats])
    np.savez(path, feats=np.concatenate(feats), ys=np.concatenate(ys), ms=np.concatenate(ms), lens=lens,
             info=np.array(json.dumps(info)))


# --------------------------------------------------------------------------- model

def build_model(n_in: int, channels: int, dilations: tuple, kernel: int):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList()
            self.dil = list(dilations) + [1]
            c_in = n_in
            for d in dilations:
                self.convs.append(nn.Conv1d(c_in, channels, kernel, dilation=d))
                c_in = channels
            self.convs.append(nn.Conv1d(c_in, 1, 1))

        def forward(self, x):          # x: (batch, features, time)
            for i, conv in enumerate(self.convs):
                pad = (conv.kernel_size[0] - 1) * conv.dilation[0]
                x = conv(torch.nn.functional.pad(x, (pad, 0)))
                if i + 1 < len(self.convs):
                    x = torch.relu(x)
            return x[:, 0, :]          # logits

    return Net()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=320)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--cache", default="/tmp/stepnet_train_cache.npz", help="feature cache (outside the repo)")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--minutes", type=float, default=12.0, help="training time budget")
    ap.add_argument("--channels", type=int, default=24)
    ap.add_argument("--dilations", default="1,2,4,8")
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--pos-weight", type=float, default=2.0)
    ap.add_argument("--out", default=str(MODEL_PATH))
    ap.add_argument("--data", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hand-input", action="store_true",
                    help="version 2: the hand-made ODF as extra inputs, generated beds, augmented events")
    ap.add_argument("--augment", type=int, default=3, help="variants per event (version 2)")
    args = ap.parse_args(argv)
    v2 = args.hand_input
    data = bw.find_data(args.data)
    if data is None:
        print("train_stepnet: shared data folder not found")
        return 1
    cache = Path(args.cache)
    if args.rebuild or not cache.exists():
        print(f"building {args.scenes} training scenes ({args.duration:g} s) from tuning sources "
              f"{TRAIN_STEPS} x {TRAIN_BEDS + (GEN_BEDS if v2 else ())}")
        build_cache(cache, args.scenes, data, args.duration, v2, args.augment)
    z = np.load(cache)
    feats, ys, ms, lens = z["feats"], z["ys"], z["ms"], z["lens"]
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    n_sc = len(lens)
    n_val = max(1, n_sc // 10)
    val_idx = np.arange(n_sc - n_val, n_sc)
    tr_idx = np.arange(n_sc - n_val)
    tr_rows = np.concatenate([np.arange(starts[i], starts[i] + lens[i]) for i in tr_idx])
    mean = feats[tr_rows].mean(axis=0).astype(np.float64)
    scale = feats[tr_rows].std(axis=0).astype(np.float64) + 1e-3
    print(f"{n_sc} scenes, {len(feats)} hops, positives {ys.mean():.3f}, ignored {1 - ms.mean():.3f}")

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    X = torch.from_numpy(((feats - mean) / scale).astype(np.float32))
    Y = torch.from_numpy(ys)
    M = torch.from_numpy(ms)
    dil = tuple(int(d) for d in args.dilations.split(","))
    net = build_model(feats.shape[1], args.channels, dil, args.kernel)
    n_params = sum(p.numel() for p in net.parameters())
    rf = 1 + sum((args.kernel - 1) * d for d in dil)
    print(f"model: {len(dil)} conv layers x {args.channels} ch, kernel {args.kernel}, dilations {dil}; "
          f"{n_params} parameters; receptive field {rf} hops")
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    crop, batch = 1000, 32
    warm = rf

    def sample_batch(idx):
        xs, yb, mb = [], [], []
        for _ in range(batch):
            i = int(rng.choice(idx))
            a = starts[i] + int(rng.integers(0, lens[i] - crop - warm))
            xs.append(X[a:a + crop + warm])
            yb.append(Y[a + warm:a + crop + warm])
            mb.append(M[a + warm:a + crop + warm])
        return torch.stack(xs).transpose(1, 2), torch.stack(yb), torch.stack(mb)

    def loss_of(x, y, m):
        logit = net(x)[:, warm:]
        w = m * (1.0 + (args.pos_weight - 1.0) * y)
        return (torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none") * w).sum() / w.sum()

    def val_loss():
        net.eval()
        with torch.no_grad():
            tot = 0.0
            for i in val_idx:
                a, n = starts[i], lens[i]
                x = X[a:a + n].T[None]
                tot += float(loss_of(torch.nn.functional.pad(x, (warm, 0)), Y[None, a:a + n], M[None, a:a + n]))
        net.train()
        return tot / len(val_idx)

    t0 = time.perf_counter()
    budget = args.minutes * 60
    step = 0
    best = (float("inf"), None)
    while time.perf_counter() - t0 < budget:
        frac = (time.perf_counter() - t0) / budget
        for g in opt.param_groups:
            g["lr"] = 3e-3 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
        x, y, m = sample_batch(tr_idx)
        loss = loss_of(x, y, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            vl = val_loss()
            if vl < best[0]:
                best = (vl, {k: v.detach().clone() for k, v in net.state_dict().items()})
            print(f"  step {step}  train {float(loss.detach()):.4f}  val {vl:.4f}  {time.perf_counter() - t0:.0f} s", flush=True)
    vl = val_loss()
    if vl < best[0]:
        best = (vl, {k: v.detach().clone() for k, v in net.state_dict().items()})
    net.load_state_dict(best[1])
    print(f"best validation loss {best[0]:.4f} after {step} steps")

    # export
    out = {"centres_hz": np.array(DEFAULT_CENTRES_HZ), "q": np.array(DEFAULT_Q), "in_mean": mean,
           "in_scale": scale, "n_layers": np.array(len(net.convs)), "floor_up_db_s": np.array(FLOOR_UP),
           "floor_down_db_s": np.array(FLOOR_DOWN), "n_extra": np.array(N_EXTRA if v2 else 0)}
    for i, conv in enumerate(net.convs):
        out[f"w{i}"] = conv.weight.detach().double().numpy()
        out[f"b{i}"] = conv.bias.detach().double().numpy()
        out[f"d{i}"] = np.array(conv.dilation[0])
    info = {"trained_on": {"step_banks": list(TRAIN_STEPS), "beds": list(TRAIN_BEDS),
                           "generated_beds": list(GEN_BEDS) if v2 else [],
                           "augmented_variants_per_event": int(args.augment) if v2 else 0,
                           "snr_db": [-6, 15], "scenes": int(n_sc), "scene_s": float(args.duration)},
            "extra_inputs": ["log1p(hand_odf)", "hand_odf / (peak + 6)", "log1p(peak)"] if v2 else [],
            "held_out_never_read": {"step_banks": ["mii", "synth"],
                                    "beds": ["machine", "music", "treadmill", "ticking"]},
            "labels": {"positive_s": list(POS_S), "ignored_s": [list(r) for r in IGNORE_S]},
            "architecture": {"kernel": args.kernel, "dilations": list(dil), "channels": args.channels,
                             "parameters": int(n_params)},
            "validation_bce": best[0], "steps": step}
    out["info"] = np.array(json.dumps(info))
    np.savez(args.out, **out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")

    # the Cython inference must agree with the trained network
    from stepsound.detect.stepnet import load_model, make_stepnet

    load_model.cache_clear()
    i = int(val_idx[0])
    a, n = starts[i], lens[i]
    with torch.no_grad():
        ref = torch.sigmoid(net(X[a:a + n].T[None]))[0].numpy()
    spec_rate = json.loads(str(z["info"]))[i][3]
    # re-render that scene and run the Cython model on its audio
    banks = train_banks(data, v2, args.augment)
    spec = scene_spec(i, args.duration, TRAIN_BEDS + GEN_BEDS if v2 else TRAIN_BEDS)
    y, rate, *_ = render_scene(spec, data, banks)
    assert rate == spec_rate
    sn = make_stepnet(rate, hop_of(rate), len(y) + 16, args.out)
    if v2:
        # the whole path: the detector core computes the extra inputs and evaluates the model
        from stepsound.detect.detector import Detector, DetectorConfig

        det = Detector(rate, DetectorConfig(model=args.out))
        p = det._core.trace(np.ascontiguousarray(y, np.float32))[:, 3] / det.config.model_scale
    else:
        p = sn.process(np.ascontiguousarray(y, np.float32))
    print(f"Cython vs torch on a validation scene: max |dp| = {np.max(np.abs(p[:len(ref)] - ref)):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
