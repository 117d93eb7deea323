"""Benchmark ``stepsound render``: speed (× real time) and peak memory for a long track.

Each case runs in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own.

    python bench/bench_render.py                 # 3 h WAV + 3 h FLAC + 30 min OGG, print a table
    python bench/bench_render.py --append        # also append it to bench/RESULTS.md

The output files go to a temporary directory and are deleted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CASES = [
    # (label, render arguments, track length [s])
    ("10 min, 170 spm, WAV 44.1 kHz mono", ["--spm", "170", "--duration", "10min"], 600, "wav"),
    ("3 h, 170 spm, WAV 44.1 kHz mono", ["--spm", "170", "--duration", "3h"], 3 * 3600, "wav"),
    ("3 h, 170 spm, FLAC 44.1 kHz mono", ["--spm", "170", "--duration", "3h"], 3 * 3600, "flac"),
    ("30 min plan subliminal, OGG Vorbis", ["--plan", "subliminal", "--baseline-spm", "165", "--duration", "30min"], 1800, "ogg"),
    ("schedule only (no audio): 3 h", None, 3 * 3600, None),
]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
args, ext, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if args is None:
    from stepsound.cue.metronome import Metronome
    m = Metronome(44100, cadence_spm=170)
    pos = 0
    while pos < 3 * 3600 * 44100:
        pos += 44100 * 60
        m.skip_to(pos)
        m.read_clicks()
else:
    from stepsound.cli.main import main
    rc = main(["render", *args, "-o", out])
    assert rc == 0, rc
elapsed = time.perf_counter() - t0
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"elapsed_s": elapsed, "peak_rss_mb": rss1 / 1024, "rss_before_mb": rss0 / 1024}}))
"""


def run_case(args, ext, tmp):
    out = os.path.join(tmp, f"bench.{ext or 'wav'}")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(repo=str(REPO)), json.dumps(args), ext or "", out],
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["file_mb"] = os.path.getsize(out) / 1e6 if args is not None and os.path.exists(out) else 0.0
    for f in Path(tmp).iterdir():
        f.unlink()
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, render_args, length_s, ext in CASES:
            res = run_case(render_args, ext, tmp)
            speed = length_s / res["elapsed_s"]
            rows.append((label, res["elapsed_s"], speed, res["peak_rss_mb"], res["file_mb"]))
            print(
                f"{label:<40} {res['elapsed_s']:7.2f} s  {speed:8.0f}x real time  peak RSS {res['peak_rss_mb']:6.1f} MB"
                f"  file {res['file_mb']:7.1f} MB",
                flush=True,
            )
    if args.append:
        lines = [
            "",
            "## Metronome / render",
            "",
            f"`python bench/bench_render.py` on {platform.machine()} ({os.cpu_count()} cores), Python"
            f" {platform.python_version()}, {time.strftime('%Y-%m-%d')}. Each case in a fresh process;"
            " peak RSS is the whole process (Python + numpy + scipy + soundfile loaded), so a flat figure"
            " across track lengths means the render itself streams. Wall time includes the command line's imports.",
            "",
            "| case | wall time | speed | peak RSS | file |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, el, speed, rss, mb in rows:
            lines.append(f"| {label} | {el:.2f} s | {speed:,.0f}× real time | {rss:.0f} MB | {mb:.0f} MB |")
        results = HERE / "RESULTS.md"
        existing = results.read_text() if results.exists() else "# Benchmark results\n"
        results.write_text(existing.rstrip("\n") + "\n" + "\n".join(lines) + "\n")
        print(f"appended to {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
