#!/usr/bin/env python
"""Speed and memory of stepsound's detector and ``analyze``, side by side with librosa.

(a) core cost per 256-sample block: ``Detector(rate)._core.process`` fed a 60 s
    synthetic treadmill scene in 256-sample blocks, at 16, 44.1 and 48 kHz
    (median of repeated passes; per-call percentiles from one individually timed
    pass), plus the Python ``Detector.process`` and ``Engine.process`` per
    256-sample block (what a live session pays per audio callback);
(b) ``analyze_file`` end to end on a 10-minute 44.1 kHz FLAC and WAV (single
    process), the ``stepsound analyze`` command on the same FLAC, and librosa
    (``librosa.load`` + ``onset_strength`` + ``onset_detect``) on the same file,
    after a warm-up so numba's first-call compilation is not counted (median and
    best of 5 runs); librosa's peak memory on that file in a fresh process;
(c) peak memory (the child's max RSS from ``os.wait4``, forked from a small launcher) and speed of
    ``python -m stepsound analyze`` on a 3-hour 22.05 kHz FLAC, generated in
    60 s chunks so the generator itself stays small;
(d) a cProfile of ``analyze_file`` on the 10-minute file (top 15 functions).

All audio is synthesised into a temporary folder and deleted afterwards.

Run from the repository root::

    PYTHONPATH=. python bench/bench_speed.py            # ~2 min on 2 cores (3 h file: ~1 min of it)
    PYTHONPATH=. python bench/bench_speed.py --quick    # 2-minute file, 20-minute long file, ~20 s

Results are printed; a summary replaces the ``## Speed and memory`` section of
bench/RESULTS.md (``--no-write`` to skip).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _common import (REPO_DIR, header_lines, md_table, run_header, single_thread_env, text_table,  # noqa: E402
                     update_results_section)

single_thread_env()

import numpy as np  # noqa: E402

BLOCK = 256
CORE_RATES = (16000, 44100, 48000)
LIBROSA_HOP = 512


# --------------------------------------------------------------------------- audio generation

def write_synth_file(path: Path, duration_s: float, sample_rate: int, chunk_s: float = 60.0,
                     subtype: str | None = None) -> float:
    """Stream a long synthetic treadmill run to ``path`` in ``chunk_s`` pieces.

    Each chunk is an independent ``synth_run`` scene (seed = chunk index,
    cadence 155-180 steps/min, treadmill noise at +6 dB), so only one chunk is
    in memory at a time.  Returns the generation time [s].
    """
    import soundfile as sf

    from stepsynth import synth_run

    t0 = time.perf_counter()
    n_chunks = int(math.ceil(duration_s / chunk_s))
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype=subtype) as fh:
        for k in range(n_chunks):
            dur = min(chunk_s, duration_s - k * chunk_s)
            spm = 155.0 + 25.0 * ((k * 7) % 11) / 10.0
            scene = synth_run(dur, sample_rate, cadence_spm=spm, seed=1000 + k, snr_db=6.0,
                              noise="treadmill", strike=("heel", "forefoot", "mixed")[k % 3])
            fh.write(scene.audio)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- (a) core

#: Detector configuration of part (a) (None: the default); --model sets it.
CORE_CONFIG = None


def bench_core(reps: int) -> list[dict]:
    from stepsound.detect.detector import Detector
    from stepsound.engine import Engine
    from stepsynth import synth_run

    rows = []
    for rate in CORE_RATES:
        y = synth_run(60.0, rate, cadence_spm=170.0, seed=7, snr_db=6.0, noise="treadmill", strike="mixed").audio
        y = np.ascontiguousarray(y, dtype=np.float32)
        n_blocks = len(y) // BLOCK
        blocks = [y[i * BLOCK:(i + 1) * BLOCK] for i in range(n_blocks)]
        det = Detector(rate, CORE_CONFIG)
        core = det._core
        proc = core.process
        for b in blocks:  # warm-up pass
            proc(b)
        per_block = []
        for _ in range(reps):
            core.reset()
            t0 = time.perf_counter()
            for b in blocks:
                proc(b)
            per_block.append((time.perf_counter() - t0) / n_blocks)
        # one individually timed pass for the distribution (includes ~0.05 us of timer overhead)
        core.reset()
        each = np.empty(n_blocks)
        clock = time.perf_counter_ns
        for i, b in enumerate(blocks):
            t0 = clock()
            proc(b)
            each[i] = clock() - t0
        # the Python wrapper and the whole engine, per 256-sample block
        wrap = []
        for _ in range(max(1, reps // 2)):
            d = Detector(rate, CORE_CONFIG)
            t0 = time.perf_counter()
            for b in blocks:
                d.process(b)
            wrap.append((time.perf_counter() - t0) / n_blocks)
        eng = []
        for _ in range(max(1, reps // 2)):
            e = Engine(rate, CORE_CONFIG)
            t0 = time.perf_counter()
            for b in blocks:
                e.process(b)
            eng.append((time.perf_counter() - t0) / n_blocks)
        budget_us = 1e6 * BLOCK / rate
        rows.append({
            "rate": rate, "blocks": n_blocks, "reps": reps, "hop": det.hop_length,
            "core_us": 1e6 * float(np.median(per_block)),
            "core_p50_us": float(np.percentile(each, 50)) / 1e3,
            "core_p99_us": float(np.percentile(each, 99)) / 1e3,
            "core_max_us": float(each.max()) / 1e3,
            "detector_us": 1e6 * float(np.median(wrap)),
            "engine_us": 1e6 * float(np.median(eng)),
            "budget_us": budget_us,
        })
    return rows


# --------------------------------------------------------------------------- (b) analyze vs librosa

def time_analyze(path: Path, reps: int) -> dict:
    from stepsound.analyze import analyze_file

    walls, cpus = [], []
    steps = 0
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        a = analyze_file(str(path))
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        steps = len(a.steps)
    return {"wall": float(np.median(walls)), "best": float(np.min(walls)), "cpu": float(np.median(cpus)),
            "steps": steps, "duration": a.duration_s}


def time_breakdown(path: Path, reps: int) -> dict:
    """Wall time of decoding alone, decoding + Detector, decoding + Engine (median of reps) [s]."""
    from stepsound.detect.detector import Detector
    from stepsound.engine import Engine
    from stepsound.audio.files import FileSource

    def one(make):
        src = FileSource(str(path))
        proc = make(src.info.sample_rate)
        t0 = time.perf_counter()
        for block in src.blocks():
            if proc is not None:
                proc(block)
        return time.perf_counter() - t0

    out = {}
    for name, make in (("decode", lambda rate: None), ("detector", lambda rate: Detector(rate).process),
                       ("engine", lambda rate: Engine(rate).process)):
        out[name] = float(np.median([one(make) for _ in range(reps)]))
    return out


def librosa_onsets(path: Path, sr) -> int:
    import librosa

    y, rate = librosa.load(str(path), sr=sr)
    env = librosa.onset.onset_strength(y=y, sr=rate)
    wait = max(0, math.ceil(0.2 * rate / LIBROSA_HOP) - 1)
    return len(librosa.onset.onset_detect(onset_envelope=env, sr=rate, units="time", wait=wait))


def time_librosa(path: Path, reps: int, sr) -> dict:
    walls, cpus = [], []
    n = 0
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        n = librosa_onsets(path, sr)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"wall": float(np.median(walls)), "best": float(np.min(walls)), "cpu": float(np.median(cpus)),
            "onsets": n}


# librosa on a file in a fresh process (for its peak memory); numba's compiled kernels are cached on disk
LIBROSA_CHILD = """
import math, sys
import librosa
y, sr = librosa.load(sys.argv[1], sr=None)
env = librosa.onset.onset_strength(y=y, sr=sr)
librosa.onset.onset_detect(onset_envelope=env, sr=sr, units="time", wait=max(0, math.ceil(0.2 * sr / 512) - 1))
"""


def warm_up_librosa(tmp: Path) -> None:
    import soundfile as sf

    p = tmp / "warmup.wav"
    rng = np.random.default_rng(0)
    for rate in (22050, 44100):
        sf.write(str(p), (0.1 * rng.standard_normal(rate * 5)).astype(np.float32), rate)
        librosa_onsets(p, None)
        librosa_onsets(p, 22050)


# A tiny launcher: the measured command is forked from this small process, not from the
# benchmark (Linux carries a parent's resident-set high-water mark over fork+exec into the
# child's ru_maxrss, so a child forked from a 400 MB benchmark would report >= 400 MB).
_LAUNCHER = """
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"wall": time.perf_counter() - t0, "cpu": ru.ru_utime + ru.ru_stime,
               "maxrss_kb": ru.ru_maxrss, "rc": os.waitstatus_to_exitcode(status)}, fh)
"""


def run_child(cmd: list[str], tmp: Path, tag: str) -> dict:
    """Run a command; return its wall time, CPU time, peak RSS [MB] and exit code (from os.wait4)."""
    import json

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_DIR) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    report = tmp / f"{tag}.rusage.json"
    with open(tmp / f"{tag}.out", "wb") as out, open(tmp / f"{tag}.err", "wb") as err:
        rc = subprocess.call([sys.executable, "-c", _LAUNCHER, str(report)] + cmd, stdout=out, stderr=err, env=env,
                             cwd=str(tmp))
    stderr = (tmp / f"{tag}.err").read_text(errors="replace")[-500:]
    if rc != 0 or not report.exists():
        return {"wall": float("nan"), "cpu": float("nan"), "maxrss_mb": float("nan"), "rc": rc or 1,
                "stderr": stderr}
    r = json.loads(report.read_text())
    return {"wall": r["wall"], "cpu": r["cpu"], "maxrss_mb": r["maxrss_kb"] / 1024.0, "rc": r["rc"],
            "stderr": stderr}


def analyze_cmd(path: Path, json_out: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "stepsound", "analyze", str(path), "--quiet", "--jobs", "1"]
    if json_out is not None:
        cmd += ["--json", str(json_out)]
    return cmd


# --------------------------------------------------------------------------- (d) profile

def profile_analyze(path: Path, top: int = 15) -> tuple[str, list[tuple]]:
    from stepsound.analyze import analyze_file

    prof = cProfile.Profile()
    prof.enable()
    analyze_file(str(path))
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    total = stats.total_tt
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _callers) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]:
        where = f"{os.path.relpath(file, REPO_DIR) if file.startswith(str(REPO_DIR)) else os.path.basename(file)}"
        rows.append((f"{where}:{line}({func})", nc, tt, ct, 100.0 * tt / total if total else 0.0))
    return buf.getvalue(), rows


# --------------------------------------------------------------------------- main

def _hours(h: float) -> str:
    return f"{h:g}-hour" if h >= 1 else f"{60 * h:g}-minute"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions, 2-minute and 20-minute files")
    p.add_argument("--file-minutes", type=float, default=None, help="length of the speed file (default 10)")
    p.add_argument("--long-hours", type=float, default=None, help="length of the memory file (default 3)")
    p.add_argument("--long-rate", type=int, default=22050, help="sample rate of the memory file (default 22050)")
    p.add_argument("--skip-long", action="store_true", help="skip the long-file memory test")
    p.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    p.add_argument("--model", default=None,
                   help="part (a) with this DetectorConfig.model ('none': hand-made ODF, 'stepnet'); implies "
                        "--core-only --no-write")
    args = p.parse_args(argv)
    if args.model is not None:
        from stepsound.detect.detector import DetectorConfig

        global CORE_CONFIG
        CORE_CONFIG = DetectorConfig().replace(model=None if args.model == "none" else args.model)
        print(f"(a) only, DetectorConfig.model = {CORE_CONFIG.model!r}")
        rows = bench_core(3 if args.quick else 9)
        for r in rows:
            print(f"  {r['rate']} Hz hop {r['hop']}: core {r['core_us']:.2f} µs/block (p50 {r['core_p50_us']:.2f}, "
                  f"p99 {r['core_p99_us']:.2f}, max {r['core_max_us']:.1f}), Detector.process {r['detector_us']:.2f},"
                  f" Engine.process {r['engine_us']:.2f} µs; budget {r['budget_us']:.0f} µs")
        return 0
    file_min = args.file_minutes or (2.0 if args.quick else 10.0)
    long_h = args.long_hours or (1.0 / 3.0 if args.quick else 3.0)
    reps_core = 3 if args.quick else 9
    reps_file = 2 if args.quick else 5
    header = run_header()
    t_start = time.perf_counter()
    summary: dict = {}

    print(f"(a) core cost per {BLOCK}-sample block ({reps_core} passes over 60 s of audio per rate)...", flush=True)
    core_rows = bench_core(reps_core)
    cols = ["rate Hz", "hop", "core µs/block (median)", "per-call p50/p99/max µs", "Detector.process µs",
            "Engine.process µs", "block budget µs", "core % of real time"]
    rows = [[r["rate"], r["hop"], f"{r['core_us']:.2f}",
             f"{r['core_p50_us']:.2f}/{r['core_p99_us']:.2f}/{r['core_max_us']:.1f}", f"{r['detector_us']:.2f}",
             f"{r['engine_us']:.2f}", f"{r['budget_us']:.0f}", f"{100 * r['core_us'] / r['budget_us']:.3f}"]
            for r in core_rows]
    print(text_table(cols, rows))
    summary["core"] = (cols, rows)

    with tempfile.TemporaryDirectory(prefix="stepsound-bench-") as tmpname:
        tmp = Path(tmpname)
        # ---------------------------------------------------------------- (b)
        print(f"\n(b) generating a {file_min:g}-minute 44.1 kHz file (FLAC and WAV)...", flush=True)
        flac = tmp / "run10.flac"
        wav = tmp / "run10.wav"
        gen_s = write_synth_file(flac, 60.0 * file_min, 44100)
        import soundfile as sf

        data, rate = sf.read(str(flac), dtype="float32")
        sf.write(str(wav), data, rate, subtype="PCM_16")
        del data
        print(f"   generated in {gen_s:.1f} s; FLAC {flac.stat().st_size / 1e6:.1f} MB, "
              f"WAV {wav.stat().st_size / 1e6:.1f} MB", flush=True)
        warm_up_librosa(tmp)
        time_analyze(wav, 1)  # warm the page cache and imports
        res = {}
        for label, path in (("FLAC", flac), ("WAV", wav)):
            res[("stepsound", label)] = time_analyze(path, reps_file)
            res[("librosa", label)] = time_librosa(path, reps_file, None)
        res[("librosa sr=22050", "FLAC")] = time_librosa(flac, reps_file, 22050)
        cli = run_child(analyze_cmd(flac, tmp / "cli.json"), tmp, "cli10")
        parts = {label: time_breakdown(path, reps_file) for label, path in (("FLAC", flac), ("WAV", wav))}
        dur = 60.0 * file_min
        lib_mem = run_child([sys.executable, "-c", LIBROSA_CHILD, str(flac)], tmp, "librosa10")
        cols_b = ["what", "file", "wall s median (best)", "CPU s", "× real time (median)",
                  "librosa / stepsound wall, median (best)"]
        rows_b = []
        for label in ("FLAC", "WAV"):
            ss = res[("stepsound", label)]
            lb = res[("librosa", label)]
            rows_b.append([f"stepsound analyze_file ({ss['steps']} steps)", label,
                           f"{ss['wall']:.2f} ({ss['best']:.2f})", f"{ss['cpu']:.2f}", f"{dur / ss['wall']:.0f}", ""])
            rows_b.append([f"librosa load(sr=None)+onset_strength+onset_detect ({lb['onsets']} onsets)", label,
                           f"{lb['wall']:.2f} ({lb['best']:.2f})", f"{lb['cpu']:.2f}", f"{dur / lb['wall']:.0f}",
                           f"{lb['wall'] / ss['wall']:.1f}× ({lb['best'] / ss['best']:.1f}×)"])
        lb22 = res[("librosa sr=22050", "FLAC")]
        ssf = res[("stepsound", "FLAC")]
        rows_b.append(["librosa with load's default sr=22050 (resampling)", "FLAC",
                       f"{lb22['wall']:.2f} ({lb22['best']:.2f})", f"{lb22['cpu']:.2f}", f"{dur / lb22['wall']:.0f}",
                       f"{lb22['wall'] / ssf['wall']:.1f}× ({lb22['best'] / ssf['best']:.1f}×)"])
        rows_b.append(["`python -m stepsound analyze --json` (subprocess, incl. start-up)", "FLAC",
                       f"{cli['wall']:.2f}", f"{cli['cpu']:.2f}", f"{dur / cli['wall']:.0f}",
                       f"peak RSS {cli['maxrss_mb']:.0f} MB"])
        rows_b.append(["librosa load+onset_strength+onset_detect (subprocess, incl. start-up)", "FLAC",
                       f"{lib_mem['wall']:.2f}", f"{lib_mem['cpu']:.2f}", f"{dur / lib_mem['wall']:.0f}",
                       f"peak RSS {lib_mem['maxrss_mb']:.0f} MB"])
        print(f"\n   {file_min:g}-minute file, median of {reps_file} run(s), single process:")
        print(text_table(cols_b, rows_b))
        if cli["rc"] != 0:
            print("   CLI failed:", cli["stderr"])
        summary["file"] = (cols_b, rows_b)
        cols_p = ["file", "decode (FileSource.blocks)", "Detector.process", "cadence + grading + events (Engine)",
                  "analyze_file bookkeeping", "analyze_file total"]
        rows_p = []
        for label in ("FLAC", "WAV"):
            pt, total = parts[label], res[("stepsound", label)]["wall"]
            stages = [pt["decode"], pt["detector"] - pt["decode"], pt["engine"] - pt["detector"],
                      total - pt["engine"]]
            rows_p.append([label] + [f"{x:.3f} s ({100 * x / total:.0f}%)" for x in stages] + [f"{total:.3f} s"])
        print("\n   where analyze_file's time goes (differences of separately timed passes, wall time):")
        print(text_table(cols_p, rows_p))
        summary["parts"] = (cols_p, rows_p)

        # ---------------------------------------------------------------- (d) profile
        print(f"\n(d) cProfile of analyze_file on the {file_min:g}-minute FLAC (top 15 by own time):", flush=True)
        text, prof_rows = profile_analyze(flac)
        print(text)
        summary["profile"] = prof_rows

        # ---------------------------------------------------------------- (c)
        if not args.skip_long:
            print(f"\n(c) generating a {_hours(long_h)} {args.long_rate} Hz FLAC in 60 s chunks...", flush=True)
            long_flac = tmp / "long.flac"
            gen_s = write_synth_file(long_flac, 3600.0 * long_h, args.long_rate)
            print(f"   generated in {gen_s:.0f} s; {long_flac.stat().st_size / 1e6:.0f} MB", flush=True)
            base = run_child([sys.executable, "-c", "import stepsound.analyze, soundfile, scipy.signal"], tmp, "base")
            plain = run_child(analyze_cmd(long_flac, None), tmp, "long_plain")
            with_json = run_child(analyze_cmd(long_flac, tmp / "long.json"), tmp, "long_json")
            dur_l = 3600.0 * long_h
            cols_c = ["command", "wall s", "CPU s", "× real time", "peak RSS MB"]
            rows_c = [["python -c 'import stepsound.analyze' (baseline)", f"{base['wall']:.2f}", f"{base['cpu']:.2f}",
                       "", f"{base['maxrss_mb']:.0f}"],
                      ["stepsound analyze FILE --quiet --jobs 1", f"{plain['wall']:.1f}", f"{plain['cpu']:.1f}",
                       f"{dur_l / plain['wall']:.0f}", f"{plain['maxrss_mb']:.0f}"],
                      ["stepsound analyze FILE --json OUT --quiet --jobs 1", f"{with_json['wall']:.1f}",
                       f"{with_json['cpu']:.1f}", f"{dur_l / with_json['wall']:.0f}", f"{with_json['maxrss_mb']:.0f}"]]
            for r in (plain, with_json):
                if r["rc"] != 0:
                    print("   analyze failed:", r["stderr"])
            json_mb = (tmp / "long.json").stat().st_size / 1e6 if (tmp / "long.json").exists() else float("nan")
            print(f"\n   {_hours(long_h)} {args.long_rate} Hz FLAC ({long_flac.stat().st_size / 1e6:.0f} MB; JSON "
                  f"output {json_mb:.0f} MB):")
            print(text_table(cols_c, rows_c))
            summary["long"] = (cols_c, rows_c, long_h, args.long_rate, long_flac.stat().st_size / 1e6, json_mb)

    elapsed = time.perf_counter() - t_start
    # target check
    ss = res[("stepsound", "FLAC")]
    lb = res[("librosa", "FLAC")]
    checks = [
        f"core ≤ 5 µs per 256-sample block: {max(r['core_us'] for r in core_rows):.2f} µs worst rate "
        f"({'met' if max(r['core_us'] for r in core_rows) <= 5 else 'MISSED'})",
        f"analyze ≥ 1000× real time: {dur / ss['wall']:.0f}× on the {file_min:g}-min 44.1 kHz FLAC "
        f"({'met' if dur / ss['wall'] >= 1000 else 'MISSED'})",
        f"≥ 5× librosa: {lb['wall'] / ss['wall']:.1f}× median ({lb['best'] / ss['best']:.1f}× best-of-runs; librosa "
        f"at the file's rate, FLAC) "
        f"({'met' if lb['wall'] / ss['wall'] >= 5 else 'MISSED'})",
    ]
    if "long" in summary:
        peak = max(plain["maxrss_mb"], with_json["maxrss_mb"])
        checks.append(f"peak memory ≤ 200 MB on a {_hours(long_h)} file: {peak:.0f} MB "
                      f"({'met' if peak <= 200 else 'MISSED'})")
    print("\nTargets:")
    for c in checks:
        print("  -", c)
    print(f"total {elapsed:.0f} s")

    if not args.no_write:
        lines = header_lines(header)
        lines += ["", f"Wall time of the whole script {elapsed / 60:.1f} min. Synthetic audio (treadmill noise, "
                  "+6 dB) generated into a temporary folder.", "",
                  f"### Core cost per {BLOCK}-sample block",
                  "",
                  f"`Detector(rate)._core.process` on 60 s of audio in {BLOCK}-sample blocks: median over "
                  f"{reps_core} passes of (pass time / blocks); per-call percentiles from one individually timed pass "
                  "(timer overhead included). `Detector.process` / `Engine.process`: the Python layers a live "
                  "callback would call per block.", "",
                  md_table(*summary["core"]), "",
                  f"### analyze end to end ({file_min:g}-minute 44.1 kHz mono file, one process)", "",
                  f"Median (and best) of {reps_file} runs; librosa warmed up first (numba compilation excluded); "
                  "librosa's time includes `librosa.load`. librosa's time varies a lot between runs (its STFT of a "
                  "10-minute file allocates several hundred MB).", "",
                  md_table(*summary["file"]), "",
                  "Where `analyze_file`'s time goes (differences of separately timed passes over the same file: "
                  "decoding alone, + `Detector.process`, + the rest of `Engine.process`):", "",
                  md_table(*summary["parts"]), ""]
        if "long" in summary:
            cols_c, rows_c, lh, lr, mb, jmb = summary["long"]
            lines += [f"### Peak memory, {_hours(lh)} {lr} Hz FLAC ({mb:.0f} MB on disk, JSON output {jmb:.0f} MB)", "",
                      "Peak RSS of the child process (`os.wait4` rusage `ru_maxrss`, the child forked from a small "
                      "launcher so the benchmark's own memory does not leak into the figure).", "",
                      md_table(cols_c, rows_c), ""]
        lines += [f"### Where analyze spends its time (cProfile, {file_min:g}-minute FLAC, top 10 by own time)", "",
                  md_table(["function", "calls", "own s", "cumulative s", "own %"],
                           [[f"`{r[0]}`", r[1], f"{r[2]:.3f}", f"{r[3]:.3f}", f"{r[4]:.1f}"]
                            for r in summary["profile"][:10]]), "",
                  "(cProfile adds overhead to every Python call, so Python-side shares are inflated relative to "
                  "the Cython core.)", "",
                  "### Targets", ""] + [f"- {c}" for c in checks]
        update_results_section("Speed and memory", "\n".join(lines))
        print("wrote the 'Speed and memory' section of bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
