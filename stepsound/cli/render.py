"""``stepsound render``: write a cue track (WAV/FLAC/OGG/MP3) for a phone or MP3 player."""
from __future__ import annotations

import json
import sys

from stepsound.cli.support import add_aliased_option, metronome_settings
from stepsound.cue.render import RenderSettings, render_cue_track
from stepsound.cue.sounds import CLICK_SOUNDS
from stepsound.units import format_duration, parse_duration_s

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    """Arguments of ``stepsound render``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--plan", metavar="FILE|PRESET", help="cadence plan: a TOML file or a preset (see `stepsound plans`)")
    src.add_argument("--spm", type=float, metavar="SPM", help="constant cadence [steps/min]")
    parser.add_argument("--baseline-spm", type=float, metavar="SPM", help="your measured cadence, for relative plans (+5%%)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="output .wav, .flac, .ogg or .mp3")
    parser.add_argument("--duration", metavar="TIME", help="length, e.g. 45min (default: the plan's, or the music's)")
    parser.add_argument("--sample-rate", type=int, metavar="HZ", help="output rate (default: the music's, else 44100)")
    parser.add_argument("--channels", type=int, choices=(1, 2), help="output channels (default: the music's, else 1)")
    parser.add_argument("--sound", choices=CLICK_SOUNDS, help="beat sound (default: the plan's, else woodblock)")
    add_aliased_option(parser, "--volume", ("--level-db",), dest="level_db", type=float, metavar="DBFS",
                       help="beat peak level [dBFS] (default: the plan's, else -6)")
    parser.add_argument("--accent-every", type=int, metavar="N", help="accent every Nth step (2: one foot)")
    parser.add_argument("--accent-sound", choices=CLICK_SOUNDS, help="sound of accented steps")
    parser.add_argument("--music", metavar="FILE", help="mix the clicks over this music file")
    parser.add_argument("--music-db", type=float, default=-6.0, metavar="DB", help="music gain [dB] (default -6)")
    parser.add_argument("--subtype", metavar="NAME", help="libsndfile subtype, e.g. PCM_24, FLOAT (WAV/FLAC)")
    parser.add_argument("--no-csv", action="store_true", help="do not write the <output>.clicks.csv sidecar")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def run(args) -> int:
    """``stepsound render``."""
    settings = RenderSettings(
        output=args.output, cues=metronome_settings(args),
        duration_s=parse_duration_s(args.duration, allow_zero=False) if args.duration else None,
        sample_rate=args.sample_rate, channels=args.channels, music=args.music, music_db=args.music_db,
        subtype=args.subtype, clicks_csv=not args.no_csv)
    result, label = render_cue_track(settings, say=lambda line: print(f"stepsound: {line}", file=sys.stderr))
    summary = {
        "output": str(result.output),
        "clicks_csv": str(result.clicks_csv) if result.clicks_csv else None,
        "source": label,
        "duration_s": result.duration_s,
        "sample_rate": result.sample_rate,
        "channels": result.channels,
        "beats": result.n_beats,
        "audible_beats": result.n_audible,
        "clipped_samples": result.clipped_samples,
        "speed_x_realtime": round(result.speed, 1),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"wrote {result.output} ({format_duration(result.duration_s)}, {label}, {result.n_audible} clicks"
            f" of {result.n_beats} steps, {result.speed:.0f}x real time)"
            + (f"; click list: {result.clicks_csv}" if result.clicks_csv else ""),
            file=sys.stderr,
        )
    if result.clipped_samples:
        print(
            f"stepsound: warning: {result.clipped_samples} samples clipped; lower --music-db or --volume",
            file=sys.stderr,
        )
    return 0


