"""Live duplex benchmark: `stepsound run` with its own metronome in the room.

A recording of steps is played into a PulseAudio null sink while `stepsound run` listens on the
sink's monitor and plays its metronome into the same sink (the virtual duplex device of
`.ci/virtual-audio.sh`): the microphone hears the steps *and* our clicks, exactly as a laptop
next to a treadmill does, but with a known truth.

For each recording the clicks are set relative to the recording's steps (-10, 0 and +6 dB,
woodblock peak vs the median step peak) at a tempo 4 % above the recording's cadence, so clicks
sweep across every phase of the step cycle; each with the echo canceller on and off, plus one
session with the metronome off (heavy-share baseline).  Reported per session: F, precision and
recall at ±50 ms, the share of the missed steps that landed 0-120 ms after one of our clicks,
heavy share (with vs without the metronome), the round trip where our clicks really arrived in
that stream vs where the canceller put them, xruns.  First, ``--silent`` sessions with nothing playing
but the metronome (a runner not yet running): how many of our own clicks were counted as steps.

Recordings: the project's own `audio_fixtures/treadmill_run.flac` (synthetic, exact truth) and,
where ../shared/data exists, real footstep recordings (read in place, never copied; truth = their
`high` annotation rows).  Step times are found in the captured audio itself (cross-correlation
of the 3 s around each step with the source; a step no window matched takes its nearest matched
neighbour's lag), so player underruns cannot misalign them.

Usage::

    PYTHONPATH=. python bench/bench_live.py [--quick] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _signals import locate_in_recording, match  # noqa: E402

from _common import REPO_DIR, header_lines, md_table, run_header, shared_data_dir, update_results_section  # noqa: E402

VA = REPO_DIR / ".ci" / "virtual-audio.sh"


def recordings(quick: bool) -> list[dict]:
    """(name, path, truth times [s], ignore-near times [s]) of the recordings to play."""
    from stepsynth import read_truth_csv

    fx = REPO_DIR / "audio_fixtures" / "treadmill_run.flac"
    rate = sf.info(str(fx)).samplerate
    out = [{"name": "treadmill_run (own synth)", "path": fx, "duration": "25s",
            "truth": np.array([s.onset_sample for s in read_truth_csv(fx.with_suffix(".steps.csv"))]) / rate,
            "ignore": np.array([])}]
    data = shared_data_dir()
    if data is not None and not quick:
        for stem in ("moodist_walk_on_gravel", "bbc_07037012"):
            path = data / "footsteps" / f"{stem}.flac"
            csv = path.with_suffix(".steps.csv")
            if not path.exists() or not csv.exists():
                continue
            rows = [line.split(",") for line in csv.read_text().splitlines()
                    if line and not line.startswith("#") and not line.startswith("time_s")]
            high = np.array([float(r[0]) for r in rows if r[1] == "high"])
            low = np.array([float(r[0]) for r in rows if r[1] != "high"])
            dur = min(25.0, sf.info(str(path)).duration - 5.0)
            out.append({"name": f"{stem} (real)", "path": path, "duration": f"{dur:.0f}s", "truth": high,
                        "ignore": low})
    return out


def step_level(path: Path) -> float:
    """Median step peak [dBFS] of a recording (stepsound analyze)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "a.json"
        subprocess.run([sys.executable, "-m", "stepsound", "analyze", str(path), "--json", str(out), "--quiet"],
                       check=True, capture_output=True)
        doc = json.loads(out.read_text())
    peaks = [s["peak_db"] for s in doc["steps"] if s["peak_db"] is not None]
    return float(np.median(peaks))


def click_arrivals(mic: np.ndarray, rate: int, clicks_s: np.ndarray, volume: float) -> float | None:
    """Where our clicks really arrived in this stream [samples after their output sample]."""
    from stepsound.cue.metronome import Metronome
    from stepsound.echo.roundtrip import analyse_response, deconvolve

    met = Metronome(rate, cadence_spm=60, sound="woodblock", level_db=volume)
    one = np.zeros(rate, np.float32)
    met.render_into(one, 0)
    nz = np.flatnonzero(one)
    if not nz.size or not len(clicks_s):
        return None
    click = one[nz[0]:nz[0] + int(0.05 * rate)]
    played = np.zeros(len(mic) + rate, np.float32)
    for c in clicks_s:
        i = int(round(c * rate))
        if 0 <= i < len(played):
            seg = played[i:i + len(click)]
            seg += click[:len(seg)]
    est = analyse_response(deconvolve(mic, played[:len(mic)], rate // 2), rate)
    return est["arrival"] if est["peak_db"] >= 20 else None


def fill_unlocated(times: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """Place the moments the waveform match could not find (NaN) by their located neighbours.

    Our clicks, louder than a quiet step, can pull the normalised correlation of the
    window around that step below the match threshold, and a window that runs past either
    end of the source is not matched at all.  The step is still in the capture: dropping
    it from the truth would make its detection a false one.  The capture drifts
    from the source only by rare jumps (an underrun), so such a moment is placed with the
    lag (capture time - source time) of the nearest located moment in source time.
    """
    times, heard = np.asarray(times, float), np.asarray(heard, float).copy()
    ok = np.isfinite(heard)
    if not ok.any():
        return heard
    lag = heard[ok] - times[ok]
    t_ok = times[ok]
    for i in np.flatnonzero(~ok):
        heard[i] = times[i] + lag[int(np.argmin(np.abs(t_ok - times[i])))]
    return heard


def session(rec: dict, volume: float, target: float | None, echo: bool, workdir: Path, env: dict,
            rate: int) -> dict:
    """One live session; returns its figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "live.json"
    cmd = [sys.executable, "-m", "stepsound", "run", "--sample-rate", str(rate), "--input-device", "pulse",
           "--output-device", "pulse", "--duration", rec["duration"], "--no-display", "--volume", f"{volume:.1f}",
           "--json", str(out), "--record", str(workdir / "mic.flac"), "--db", str(workdir / "s.sqlite"),
           "--warmup", "5s"]
    cmd += ["--target", f"{target:.1f}", "--cues", "always"] if target else ["--cues", "none"]
    if not echo:
        cmd.append("--no-echo-cancel")
    player = subprocess.Popen(["paplay", f"--device={env['STEPSOUND_SINK']}", str(rec["path"])], env=env)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    finally:
        player.terminate()
        player.wait()
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    doc = json.loads(out.read_text())
    mic, mic_rate = sf.read(str(workdir / "mic.flac"), dtype="float32")
    src, src_rate = sf.read(str(rec["path"]), dtype="float32")
    times = np.concatenate([rec["truth"], rec["ignore"]])
    # 3 s windows: a walker's steps look alike, and with our clicks louder than them a short
    # window around one step can match its neighbour half a second away
    heard = locate_in_recording(mic, mic_rate, src, src_rate, times, half_window_s=1.5, search_s=0.25,
                                lag_range_s=(-60.0, 5.0), min_corr=0.3)
    heard = fill_unlocated(times, heard)
    heard_true, heard_ignore = heard[:len(rec["truth"])], heard[len(rec["truth"]):]
    span = len(mic) / mic_rate
    inside = (heard_true > 0.5) & (heard_true < span - 0.2)
    truth = np.sort(heard_true[inside])
    near_edge = heard_true[~inside & ~np.isnan(heard_true)]
    ignore = np.concatenate([near_edge, heard_ignore[~np.isnan(heard_ignore)]])
    steps = np.array([s["time_s"] for s in doc["steps"]])
    steps = np.array([t for t in steps if 0.45 < t < span - 0.15 and np.min(np.abs(ignore - t), initial=9.0) > 0.05])
    hits, misses, fas, _ = match(np.round(steps * 1000), np.round(truth * 1000), 50)
    p = hits / max(1, len(steps))
    r = hits / max(1, len(truth))
    clicks = np.array(doc["clicks_s"])
    s = doc["summary"]
    arrival = click_arrivals(mic, mic_rate, clicks, volume) if target else None
    ec = s.get("echo_cancel") or {}
    missed = [t for t in truth if np.min(np.abs(steps - t), initial=9.0) > 0.05]
    rt_rel = None
    if arrival is not None:
        rt_rel = [t for t in missed if np.any((t - (clicks + arrival / mic_rate) >= 0)
                                               & (t - (clicks + arrival / mic_rate) < 0.12))]
    return {"F": 2 * p * r / max(1e-9, p + r), "P": p, "R": r, "truth": len(truth), "extra": fas,
            "missed": len(missed), "missed_after_click": None if rt_rel is None else len(rt_rel),
            "heavy_share": s.get("heavy_share"), "xruns": s.get("xruns"), "startup_flags": s.get("startup_flags"),
            "arrival_ms": None if arrival is None else 1000 * arrival / mic_rate,
            "echo": ec, "clicks": len(clicks)}


def silent_session(workdir: Path, env: dict, rate: int, target: float = 170.0, volume: float = -6.0) -> dict:
    """A session with nothing playing but our own metronome: how many of its clicks counted as steps."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "silent.json"
    cmd = [sys.executable, "-m", "stepsound", "run", "--sample-rate", str(rate), "--input-device", "pulse",
           "--output-device", "pulse", "--duration", "12s", "--no-display", "--volume", f"{volume:.1f}",
           "--json", str(out), "--db", str(workdir / "s.sqlite"), "--warmup", "0s", "--target", f"{target:.1f}",
           "--cues", "always"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    doc = json.loads(out.read_text())
    s = doc["summary"]
    ec = s.get("echo_cancel") or {}
    return {"counted": len(doc["steps"]), "clicks": len(doc["clicks_s"]), "xruns": s.get("xruns"),
            "moves": ec.get("path_moves"), "erle_db": ec.get("erle_db")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="own recording only, one level")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--silent", type=int, default=5, help="sessions in a silent room (only our clicks heard)")
    ap.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    args = ap.parse_args()
    header = run_header()
    subprocess.run(["bash", str(VA), "start"], check=True, capture_output=True)
    env_text = subprocess.run(["bash", str(VA), "env"], check=True, capture_output=True, text=True).stdout
    env = dict(os.environ)
    for line in env_text.splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = v.strip("'\"")
    rate = int(env.get("STEPSOUND_SINK_RATE", "44100"))
    offsets = [0.0] if args.quick else [-10.0, 0.0, 6.0]
    rows = []
    silent_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.silent):
            res = silent_session(Path(tmp) / f"silent{k}", env, rate)
            row = (["error", "", "", "", ""] if "error" in res else
                   [str(res["counted"]), str(res["clicks"]), str(res["xruns"]), str(res["moves"]), str(res["erle_db"])])
            silent_rows.append([str(k + 1)] + row)
            print("silent room:", res, flush=True)
        for rec in recordings(args.quick):
            level = step_level(rec["path"])
            target = 1.04 * 60.0 / float(np.median(np.diff(rec["truth"])))   # 4 % over the true cadence
            base = session(rec, -20.0, None, True, Path(tmp) / "base", env, rate)
            for off in offsets:
                for echo in (True, False):
                    for rep in range(args.repeats):
                        vol = min(0.0, level + off)
                        res = session(rec, vol, target, echo, Path(tmp) / f"{off}{echo}{rep}", env, rate)
                        if "error" in res:
                            print(rec["name"], off, echo, "error:", res["error"], flush=True)
                            rows.append([rec["name"], f"{off:+.0f}", "on" if echo else "off", "error"] + [""] * 8)
                            continue
                        heavy = (f"{100 * (res['heavy_share'] or 0):.1f} / {100 * (base.get('heavy_share') or 0):.1f}"
                                 if "error" not in base else "–")
                        ec = res["echo"]
                        placed = "–" if not ec else f"{1000 * ec['arrival_samples'] / rate:.1f}"
                        row = [rec["name"], f"{off:+.0f}", "on" if echo else "off", f"{res['F']:.3f}", f"{res['P']:.3f}",
                               f"{res['R']:.3f}", f"{res['missed']}/{res['truth']}",
                               "–" if res["missed_after_click"] is None else str(res["missed_after_click"]),
                               heavy, "–" if res["arrival_ms"] is None else f"{res['arrival_ms']:.1f}", placed,
                               f"{res['xruns']} ({res['startup_flags']})"]
                        rows.append(row)
                        print(" | ".join(row), flush=True)
    subprocess.run(["bash", str(VA), "stop"], capture_output=True)
    cols = ["recording", "clicks re steps dB", "echo canceller", "F50", "P", "R", "missed", "missed 0-120 ms after a click",
            "heavy % with / without metronome", "clicks arrived ms", "canceller expects them ms", "xruns (start-up flags)"]
    table = md_table(cols, rows)
    if silent_rows:
        table = md_table(["silent-room session", "own clicks counted as steps", "clicks played", "xruns",
                          "canceller paths loaded", "ERLE dB"], silent_rows) + "\n\n" + table
    print(table)
    if args.write:
        body = "\n".join(header_lines(header)) + "\n\n" + __doc__.split("\n\n")[1] + "\n\n" + table + "\n"
        update_results_section("Live duplex: bench_live.py grid", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
