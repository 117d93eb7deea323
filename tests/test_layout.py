"""The package's layout: the data flow is visible and acyclic.

Every import of a stepsound module by another (at the top of a file or inside a function) is read from the
source with :mod:`ast`; the graph must have no cycle, the CLI must be the only place that parses arguments,
and ``import stepsound`` must stay light (no sounddevice, matplotlib or scipy.signal).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stepsound"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stepsound"):
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("stepsound")]
            for t in targets:
                if t in modules and t != name and t != "stepsound":
                    graph[name].add(t)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycles():
    graph = _imports()
    assert len(graph) > 30          # the walk found the package
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_cli_parses_arguments():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if "argparse" in p.read_text(encoding="utf-8") and p.parent.name != "cli"]
    assert offenders == []


def test_nothing_below_the_cli_imports_it():
    graph = _imports()
    users = sorted(m for m, deps in graph.items()
                   if not m.startswith("stepsound.cli") and m != "stepsound.__main__"
                   and any(d.startswith("stepsound.cli") for d in deps))
    assert users == []


def test_import_stepsound_stays_light():
    code = ("import sys, stepsound; stepsound.analyze_array; "
            "print(','.join(m for m in ('sounddevice', 'matplotlib', 'scipy.signal', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
