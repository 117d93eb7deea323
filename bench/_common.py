"""Helpers shared by the benchmark scripts (not part of the stepsound package).

- :func:`shared_data_dir` finds the third-party evaluation recordings
  (``../shared/data`` next to the repository, or ``$STEPSOUND_SHARED_DATA``);
  they are read in place and never copied into the repository;
- :func:`update_results_section` replaces one ``## `` section of
  ``bench/RESULTS.md`` and keeps every other section untouched;
- :func:`run_header` gives the date, machine note, revision and command line
  printed above every result.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
import sys
import zlib
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"

#: Machine note written with every result (the benchmark machine has 2 cores).
MACHINE_NOTE = "2 cores"


def single_thread_env() -> None:
    """Keep numeric libraries to one thread each (call before importing numpy)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def shared_data_dir() -> Path | None:
    """The shared evaluation-data folder, or None when it does not exist.

    ``$STEPSOUND_SHARED_DATA`` overrides the default
    ``<repo>/../shared/data``.
    """
    env = os.environ.get("STEPSOUND_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


def stable_seed(*parts) -> int:
    """A deterministic seed from labels (``hash()`` of a str is randomised per run)."""
    text = "|".join(str(p) for p in parts)
    return zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF


def git_revision() -> str:
    """Short commit of the working tree, with ``+dirty`` when stepsound/ has local changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "stepsound", "setup.py"], cwd=REPO_DIR,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev or "unknown") + ("+dirty" if dirty else "")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def command_line() -> str:
    """The command that produced the results, as a user would type it."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO_DIR)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths = ["." if os.path.abspath(p) == str(REPO_DIR) else p for p in paths] or ["."]
    if "." not in paths:
        paths.insert(0, ".")
    return f"PYTHONPATH={os.pathsep.join(paths)} python " + " ".join([script] + sys.argv[1:])


def run_header() -> dict:
    """Date, machine, revision and command of this run."""
    return {
        "date": _dt.date.today().isoformat(),
        "machine": f"{MACHINE_NOTE} ({cpu_model()}, {os.cpu_count()} logical CPUs visible), "
                   f"Python {platform.python_version()}",
        "revision": git_revision(),
        "command": command_line(),
    }


def header_lines(header: dict) -> list[str]:
    return [
        f"Measured {header['date']} on {header['machine']}; stepsound revision `{header['revision']}`.",
        "",
        "Command (from the repository root):",
        "",
        "```",
        header["command"],
        "```",
    ]


def update_results_section(title: str, body: str, path: Path = RESULTS_PATH) -> None:
    """Replace (or append) the section ``## {title}`` of RESULTS.md.

    A section runs from its ``## `` heading to the next ``## `` heading.  Other
    sections (written by other scripts and people) are kept as they are.
    """
    heading = f"## {title}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    new_section = heading + "\n\n" + body.strip("\n") + "\n"
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda m: new_section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + new_section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def md_table(columns: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table (``align``: one of 'l'/'r' per column, default l then r)."""
    align = align or ("l" + "r" * (len(columns) - 1))
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join(sep) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def text_table(columns: list[str], rows: list[list]) -> str:
    """A plain fixed-width table for the terminal."""
    cells = [[str(c) for c in columns]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    out = []
    for k, r in enumerate(cells):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
