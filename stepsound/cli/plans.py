"""``stepsound plans``: list the built-in cadence plans, or show one resolved against a baseline."""
from __future__ import annotations

from stepsound.coach.plans import list_presets, load_plan


def add_arguments(parser) -> None:
    """Arguments of ``stepsound plans``."""
    parser.add_argument("name", nargs="?", metavar="FILE|PRESET", help="show one plan (its spans) instead of the list")
    parser.add_argument("--baseline-spm", type=float, metavar="SPM", help="resolve relative targets (default 160 for display)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    """List the presets, or show one plan resolved against a baseline."""
    import json

    from stepsound.units import format_duration

    if args.name is None:
        presets = list_presets()
        if args.json:
            print(json.dumps([{"name": n, "description": d} for n, d in presets]))
        else:
            width = max(len(n) for n, _ in presets)
            for n, d in presets:
                print(f"{n:<{width}}  {d}")
        return 0
    plan = load_plan(args.name)
    baseline = args.baseline_spm if args.baseline_spm is not None else (plan.baseline_spm or 160.0)
    tm = plan.resolve(baseline)
    if args.json:
        print(
            json.dumps(
                {
                    "name": plan.name,
                    "description": plan.description,
                    "baseline_spm": baseline,
                    "duration_s": tm.duration_s,
                    "spans": [
                        {"start_s": s.start_s, "end_s": s.end_s, "start_spm": s.start_spm, "end_spm": s.end_spm,
                         "audible": s.audible, "label": s.label}
                        for s in tm.spans
                    ],
                }
            )
        )
        return 0
    print(f"{plan.name}: {plan.description}")
    print(f"baseline {baseline:g} spm, {format_duration(tm.duration_s)} total")
    for s in tm.spans:
        spm = f"{s.start_spm:.1f}" if s.start_spm == s.end_spm else f"{s.start_spm:.1f} -> {s.end_spm:.1f}"
        print(f"  {format_duration(s.start_s):>7} - {format_duration(s.end_s):>7}  {spm:>14} spm"
              f"  {'' if s.audible else '(silent)  '}{s.label}")
    if tm.feedback is not None:
        f = tm.feedback
        print(f"  faded feedback: audible {f.audible_from:.0%} -> {f.audible_to:.0%} of each"
              f" {format_duration(f.cycle_s)} from {format_duration(f.start_s)} to {format_duration(f.end_s)}")
    return 0
