"""The shape of the code: short functions, an acyclic import graph, and no citation of
files or tracker numbers from outside the repository."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("configs", "data_prep", "eval", "prototxt", "scripts")
MAX_LINES = 60


def _sources(dirs=PACKAGES):
    for d in dirs:
        yield from sorted((ROOT / d).glob("*.py"))


def long_functions(paths, limit: int = MAX_LINES) -> list[str]:
    """'path:line name (n lines)' of every def longer than ``limit`` lines."""
    out = []
    for p in paths:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(f"{p.name}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_is_over_60_lines():
    assert long_functions(_sources()) == []


def test_the_length_check_can_fail(tmp_path):
    p = tmp_path / "long.py"
    p.write_text("def f():\n" + "    x = 1\n" * 61)
    assert len(long_functions([p])) == 1


def _module(p: Path) -> str:
    return ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Project module -> project modules it imports (at any depth in the file)."""
    mods = {_module(p): p for p in _sources()}
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for n in names:
                if n in mods and n != m:
                    graph[m].add(n)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                c = visit(n)
                if c:
                    return c
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            c = visit(m)
            if c:
                return c
    return None


def test_import_graph_is_acyclic():
    assert find_cycle(import_graph()) is None


def test_the_cycle_check_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_citation_of_outside_files_or_tracker_numbers():
    pat = re.compile(r"REFERENCE\.md|STYLE\.md|\b[Ii]ssue\s*#?\d+")
    hits = []
    for p in list(_sources(PACKAGES + ("tests",))) + sorted((ROOT / "configs").glob("*.yaml")):
        if p.name == Path(__file__).name:
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if pat.search(line):
                hits.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()}")
    assert hits == []
