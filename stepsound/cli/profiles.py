"""``stepsound profiles``: list, show and delete runner profiles.

``stepsound profiles`` lists them, ``stepsound profiles show NAME`` shows one
calibration, ``stepsound profiles delete NAME`` removes one.  A name that is
not a profile is one line naming the known ones (exit 1); an invalid name or
a missing NAME is a usage error (exit 2).
"""
from __future__ import annotations

import json
import sys

from stepsound.errors import ParameterError, StoreError
from stepsound.grade.profiles import check_name, delete_profile, list_profiles, load_profile, profile_path

__all__ = ["add_arguments", "run"]

ACTIONS = ("list", "show", "delete")


def add_arguments(p) -> None:
    """Arguments of ``stepsound profiles``."""
    p.add_argument("action", nargs="?", default="list", choices=ACTIONS,
                   help="list the profiles (default), show one, or delete one")
    p.add_argument("name", nargs="?", metavar="NAME", help="profile name (for show and delete)")
    p.add_argument("--json", action="store_true", help="machine-readable output (list and show)")


def _known(name: str) -> None:
    """StoreError naming the known profiles when ``name`` is not one of them."""
    if not profile_path(name).exists():
        known = list_profiles()
        hint = f"known profiles: {', '.join(known)}" if known else "no profiles yet"
        raise StoreError(f"no profile named {name!r} ({hint})")


def _row(name: str) -> dict:
    """One listing row; a profile that cannot be read says why instead of failing the listing."""
    try:
        prof = load_profile(name)
    except StoreError as exc:
        return {"name": name, "error": str(exc)}
    r = prof.report
    return {"name": name, "created": prof.created, "verdict": r.verdict,
            "cv_accuracy": round(r.cv_accuracy, 3), "heavy_db": prof.heavy_db,
            "steps": r.n_heel + r.n_forefoot}


def run(args) -> int:
    """``stepsound profiles [list | show NAME | delete NAME]``."""
    if args.action == "list":
        if args.name is not None:
            raise ParameterError(f"'profiles list' takes no NAME (got {args.name!r}); use 'profiles show NAME'")
        rows = [_row(n) for n in list_profiles()]
        if args.json:
            print(json.dumps({"profiles": rows}, indent=1))
        elif not rows:
            print("no profiles yet (stepsound calibrate --name NAME ... creates one)")
        for row in rows if not args.json else ():
            if "error" in row:
                print(f"{row['name']:20}  unreadable: {row['error']}")
            else:
                heavy = "default" if row["heavy_db"] is None else f"+{row['heavy_db']:g} dB"
                print(f"{row['name']:20}  {row['created'][:10]:10}  {100 * row['cv_accuracy']:3.0f}% told apart "
                      f"({row['verdict']}), {row['steps']} steps, heavy {heavy}")
        return 0
    if args.name is None:
        raise ParameterError(f"'profiles {args.action}' needs a NAME (see `stepsound profiles`)")
    check_name(args.name)
    _known(args.name)
    if args.action == "show":
        prof = load_profile(args.name)
        if args.json:
            print(json.dumps(prof.to_dict(), indent=1))
        else:
            from stepsound.grade.calibrate import format_report

            print(format_report(prof, profile_path(args.name)).replace("  saved to ", "  stored in "))
            print(f"  calibrated {prof.created} from {', '.join(prof.sources) or 'unknown sources'}")
        return 0
    path = profile_path(args.name)
    delete_profile(args.name)
    print(f"deleted profile {args.name!r} ({path})", file=sys.stderr)
    return 0
