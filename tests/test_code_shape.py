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
        yield from sorted((ROOT / d).rglob("*.py"))


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


# ---------------------------------------------------------------- scripts/ by role
ROLES = ("training", "inference", "slurm", "diagnostics", "build")
COMMAND_LINES = 130          # a command at scripts/' top level parses arguments and delegates


def test_scripts_top_level_holds_only_commands():
    """Every module at scripts/' top level is a command (a main() run under
    ``__name__ == "__main__"``) and short; everything else sits in a role folder."""
    top = sorted(p for p in (ROOT / "scripts").glob("*.py") if p.name != "__init__.py")
    assert top, "no command at scripts/' top level"
    for p in top:
        text = p.read_text()
        assert "def main(" in text or "import main" in text, f"{p.name}: not a command (no main)"
        assert '__name__ == "__main__"' in text, f"{p.name}: not runnable with python -m"
        assert len(text.splitlines()) <= COMMAND_LINES, f"{p.name}: {len(text.splitlines())} lines; logic goes in a role folder"
    others = {p.name for p in (ROOT / "scripts").iterdir() if not p.name.startswith((".", "__"))} - {p.name for p in top}
    assert others == set(ROLES), others


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for n in graph.get(todo.pop(), ()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def test_the_training_core_imports_no_diagnostic():
    graph = import_graph()
    training = [m for m in graph if m.startswith("scripts.training.")]
    assert "scripts.training.trainer" in training and "scripts.training.runner" in training
    for m in training + ["scripts.train"]:
        bad = sorted(n for n in reaches(graph, m) if n.startswith("scripts.diagnostics."))
        assert bad == [], f"{m} reaches {bad}"


def test_the_reach_check_can_fail():
    assert reaches({"a": {"b"}, "b": {"scripts.diagnostics.bench"}}, "a") == {"b", "scripts.diagnostics.bench"}
