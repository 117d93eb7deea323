"""Regenerate the bundled audio fixtures (synthetic scenes with exact truth).

Usage (from the repository root)::

    python audio_fixtures/make_fixtures.py            # writes into audio_fixtures/
    python audio_fixtures/make_fixtures.py --out DIR  # somewhere else
    python audio_fixtures/make_fixtures.py --list     # describe, write nothing

Every fixture is a pure function of the arguments below (see
:func:`stepsynth.synth_run`), so rerunning this script reproduces the
committed files sample for sample.  For each ``NAME`` it writes ``NAME.flac``
(16-bit mono), ``NAME.steps.csv`` (truth) and ``NAME.meta.json`` (everything
else: cadence schedule, runner, room, mic, noise parameters, gains, per-step
details).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repository root, so this runs without installing

from stepsynth import synth_run  # noqa: E402

#: One loudness block every 6 s: 0, +3, +6, 0, -4, +6, 0, +3, -4, 0 dB.
LOUDNESS_BLOCKS_DB = (0.0, 3.0, 6.0, 0.0, -4.0, 6.0, 0.0, 3.0, -4.0, 0.0)
LOUDNESS_BLOCK_S = 6.0


def loudness_level_db(time_s: float) -> float:
    """Step level [dB] of the loudness fixture at ``time_s`` (blocks of 6 s)."""
    k = min(int(time_s // LOUDNESS_BLOCK_S), len(LOUDNESS_BLOCKS_DB) - 1)
    return LOUDNESS_BLOCKS_DB[k]


#: The same room for both calibration recordings (same runner, same treadmill).
CALIBRATION_ROOM = {"rt60_s": 0.35, "drr_db": 9.0}

FIXTURES = {
    "treadmill_run": dict(
        about="150 s run on a treadmill, heel strikes, cadence drifting 162 -> 170 spm, +6 dB SNR "
        "(the README's demo input; a live coaching replay uses its first 60 s as warm-up)",
        duration_s=150.0,
        sample_rate=22050,
        cadence_spm=[(0.0, 162.0), (150.0, 170.0)],
        seed=101,
        snr_db=6.0,
        noise="treadmill",
        strike="heel",
        mic_gain_db=-10.0,
    ),
    "treadmill_quiet_steps": dict(
        about="40 s, light forefoot running at 176 spm, treadmill noise at 0 dB SNR",
        duration_s=40.0,
        sample_rate=16000,
        cadence_spm=176.0,
        seed=102,
        snr_db=0.0,
        noise="treadmill",
        strike="forefoot",
        mic_gain_db=-4.0,
    ),
    "loudness_steps": dict(
        about="60 s, heel strikes at 170 spm whose level changes in 6 s blocks by "
        "0, +3, +6, 0, -4, +6, 0, +3, -4, 0 dB (plus natural jitter; truth level_db is exact), +12 dB SNR",
        duration_s=60.0,
        sample_rate=16000,
        cadence_spm=170.0,
        seed=103,
        snr_db=12.0,
        noise="treadmill",
        strike="heel",
        mic_gain_db=-6.0,
        step_level_db=loudness_level_db,
    ),
    "heel_calibration": dict(
        about="25 s, runner 200 landing heel first on purpose, 168 spm, +12 dB SNR",
        duration_s=25.0,
        sample_rate=16000,
        cadence_spm=168.0,
        seed=201,
        runner_seed=200,
        snr_db=12.0,
        noise="treadmill",
        strike="heel",
        mic_gain_db=-4.0,
        reverb=CALIBRATION_ROOM,
    ),
    "forefoot_calibration": dict(
        about="25 s, the same runner 200 landing on the forefoot on purpose, 168 spm, +12 dB SNR",
        duration_s=25.0,
        sample_rate=16000,
        cadence_spm=168.0,
        seed=202,
        runner_seed=200,
        snr_db=12.0,
        noise="treadmill",
        strike="forefoot",
        mic_gain_db=-4.0,
        reverb=CALIBRATION_ROOM,
    ),
}


def make(name: str, out_dir: str) -> dict:
    """Synthesise fixture ``name`` and write its three files into ``out_dir``."""
    spec = dict(FIXTURES[name])
    about = spec.pop("about")
    duration_s = spec.pop("duration_s")
    sample_rate = spec.pop("sample_rate")
    t0 = time.perf_counter()
    scene = synth_run(duration_s, sample_rate, **spec)
    elapsed = time.perf_counter() - t0
    scene.meta["fixture"] = {"name": name, "about": about, "script": "audio_fixtures/make_fixtures.py"}
    if name == "loudness_steps":
        scene.meta["fixture"]["level_blocks_db"] = list(LOUDNESS_BLOCKS_DB)
        scene.meta["fixture"]["level_block_s"] = LOUDNESS_BLOCK_S
    path = os.path.join(out_dir, name + ".flac")
    scene.write(path, os.path.join(out_dir, name + ".steps.csv"), path_meta_json=os.path.join(out_dir, name + ".meta.json"))
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()[:16]
    return {
        "name": name,
        "steps": len(scene.steps),
        "seconds": scene.duration_s,
        "synth_s": elapsed,
        "bytes": os.path.getsize(path),
        "sha256": digest,
        "peak_dbfs": scene.meta["peak_dbfs"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=HERE, help="output folder (default: audio_fixtures/)")
    parser.add_argument("--list", action="store_true", help="describe the fixtures and exit")
    parser.add_argument("names", nargs="*", help="fixtures to make (default: all)")
    args = parser.parse_args(argv)
    if args.list:
        for name, spec in FIXTURES.items():
            print(f"{name}: {spec['about']}")
        return 0
    names = args.names or list(FIXTURES)
    unknown = [n for n in names if n not in FIXTURES]
    if unknown:
        print(f"make_fixtures: unknown fixture(s) {unknown}; known: {list(FIXTURES)}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for name in names:
        r = make(name, args.out)
        total += r["bytes"]
        print(
            f"{r['name']:24s} {r['seconds']:6.1f} s {r['steps']:4d} steps  peak {r['peak_dbfs']:6.1f} dBFS  "
            f"{r['bytes'] / 1e6:5.2f} MB  synth {r['synth_s']:.2f} s  sha256 {r['sha256']}",
            file=sys.stderr,
        )
    print(f"total audio {total / 1e6:.2f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
