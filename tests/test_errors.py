"""One error family and one exit-code table (configs/errors.py) for every command.

The table: every code has one meaning, the docstring states the constants, no class or
module restates a code as a number. The family: every error class the user can meet is a
``UserError`` whose code is in the table. The commands: every ``python -m`` module's
``main`` goes through ``errors.cli`` and none writes its own ``error:`` line.
"""
from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys

import pytest

from configs import errors

from test_code_shape import PACKAGES, ROOT, _module, _sources


def _constants() -> dict[str, int]:
    return {k: v for k, v in vars(errors).items() if k.startswith("EXIT_") and isinstance(v, int)}


# ---------------------------------------------------------------- the table
def test_every_code_has_one_meaning():
    c = _constants()
    assert len(set(c.values())) == len(c), c                    # no two names for one code
    assert set(errors.EXIT_CODES) == set(c.values())            # each code has its meaning
    assert len(set(errors.EXIT_CODES.values())) == len(errors.EXIT_CODES)
    assert sorted(c.values()) == list(range(len(c)))            # 0..N, no gaps


def test_the_docstring_table_is_the_constants():
    rows = re.findall(r"^(\d+)\s+(EXIT_\w+)\s", errors.__doc__, re.M)
    assert {name: int(code) for code, name in rows} == _constants()


def test_errors_imports_only_the_standard_library():
    tree = ast.parse((ROOT / "configs" / "errors.py").read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= set(sys.stdlib_module_names) | {"__future__"}, mods


def numeric_codes(paths) -> list[str]:
    """'path:line' of every exit code written as a number outside configs/errors.py: an
    ``EXIT_* = 3`` constant, an ``exit_code = 3`` class attribute, a ``return 3`` in a
    command's main."""
    out = []
    for p in paths:
        if p.name == "errors.py" and p.parent.name == "configs":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                names = [t.id if isinstance(t, ast.Name) else getattr(t, "attr", "") for t in node.targets]
                if any(n.startswith("EXIT_") or n == "exit_code" for n in names):
                    out.append(f"{p.name}:{node.lineno}")
            if isinstance(node, ast.FunctionDef) and node.name in ("main", "_main"):
                for r in ast.walk(node):
                    if isinstance(r, ast.Return) and isinstance(r.value, ast.Constant) \
                            and r.value.value not in (0, None):
                        out.append(f"{p.name}:{r.lineno}")
    return out


def test_no_exit_code_is_written_as_a_number():
    assert numeric_codes(_sources()) == []


def test_the_number_check_can_fail(tmp_path):
    p = tmp_path / "bad.py"
    p.write_text("EXIT_X = 3\nclass E:\n    exit_code = 4\ndef main(argv=None):\n    return 2\n")
    assert len(numeric_codes([p])) == 3


def test_predict_codes_are_the_tables():
    from scripts.inference import predictor as P
    for name in ("EXIT_OK", "EXIT_USAGE", "EXIT_MISSING", "EXIT_UNREADABLE", "EXIT_NO_FACE",
                 "EXIT_MODEL", "EXIT_BACKEND"):
        assert getattr(P, name) == getattr(errors, name)
    with pytest.raises(ValueError):
        P.PredictError(42, "a code outside the table")
    for p in _sources():       # every PredictError names its code by an EXIT_* constant
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) \
                    == "PredictError":
                a = node.args[0]
                assert getattr(a, "attr", getattr(a, "id", "")).startswith("EXIT_"), f"{p.name}:{node.lineno}"


def test_bundle_check_uses_the_table():
    """check.sh needs no Python: it restates the two codes it needs; they are the table's."""
    sh = (ROOT / "scripts" / "build" / "bundle_check.sh").read_text()
    named = dict(re.findall(r"\b(EXIT_\w+)=(\d+)", sh))
    assert named and all(int(v) == getattr(errors, k) for k, v in named.items()), named
    codes = re.findall(r"\bfinish (\$?\w+)", sh)
    assert codes and all(c.lstrip("$") in named or int(c) in (errors.EXIT_OK, errors.EXIT_FAILED)
                         for c in codes), codes
    assert "finish $EXIT_NO_GPU" in sh and "finish 3" not in sh


# ---------------------------------------------------------------- the family
def _error_modules() -> list[str]:
    """Modules that define a class on an exception base (a name with Error or Exception)."""
    out = []
    for p in _sources():
        tree = ast.parse(p.read_text())
        bases = [ast.unparse(b) for n in tree.body if isinstance(n, ast.ClassDef) for b in n.bases]
        if any(re.search(r"Error|Exception", b) for b in bases):
            out.append(_module(p))
    return out


def _subclasses(cls) -> set:
    out = set()
    for c in cls.__subclasses__():
        out |= {c} | _subclasses(c)
    return out


def test_every_error_class_is_a_user_error_with_a_code_from_the_table():
    classes = {}
    for m in _error_modules():
        mod = importlib.import_module(m)
        for name, obj in vars(mod).items():
            if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__ == m:
                classes[f"{m}.{name}"] = obj
    assert {"data_prep.index.DatasetError", "eval.summary.SummaryError", "scripts.slurm.driver.SlurmError",
            "scripts.inference.predictor.PredictError", "configs.errors.TrainingDiverged"} <= set(classes)
    outside = [n for n, c in classes.items() if not issubclass(c, errors.UserError)]
    assert outside == [], f"error classes outside the UserError family: {outside}"
    for c in _subclasses(errors.UserError) | {errors.UserError}:
        assert c.exit_code in errors.EXIT_CODES and c.exit_code not in (errors.EXIT_OK, errors.EXIT_FAILED), c


def test_a_code_other_than_2_belongs_to_one_class():
    """Subclasses inherit; only one class of the project sets each special code."""
    owners = {}
    for c in _subclasses(errors.UserError):
        if "exit_code" in vars(c) and c.__module__.split(".")[0] in PACKAGES:
            owners.setdefault(c.exit_code, []).append(c.__qualname__)
    assert all(len(v) == 1 for v in owners.values()), owners
    assert errors.EXIT_USAGE not in owners        # 2 is UserError's own, never restated
    assert owners[errors.EXIT_NO_GPU] == ["GPUUnavailable"]
    assert owners[errors.EXIT_DIVERGED] == ["TrainingDiverged"]


# ---------------------------------------------------------------- the wrapper
def test_cli_prints_one_line_and_returns_the_class_code(capsys):
    @errors.cli
    def gpu(argv=None):
        raise errors.GPUUnavailable("no GPU here")

    @errors.cli(also=(ValueError,))
    def value(argv=None):
        raise ValueError("a bad value")

    @errors.cli
    def bug(argv=None):
        raise KeyError("a bug keeps its traceback")

    assert gpu([]) == errors.EXIT_NO_GPU
    assert capsys.readouterr().err == "error: no GPU here\n"
    assert value([]) == errors.EXIT_USAGE
    assert capsys.readouterr().err == "error: a bad value\n"
    with pytest.raises(KeyError):
        bug([])
    assert errors.SubcommandFailed("x", errors.EXIT_DIVERGED).exit_code == errors.EXIT_DIVERGED
    assert errors.SubcommandFailed("x", -6).exit_code == errors.EXIT_CAFFE_ABORTED


def test_caffe_aborting_the_training_is_one_error_with_its_code(tmp_path, monkeypatch, capsys):
    """scripts.train's supervisor: a child that a signal ended (a failed Caffe CHECK)."""
    from scripts import train
    log = tmp_path / "experiments" / "cnn_T1_s2.6" / "fold1" / "caffe.log"
    log.parent.mkdir(parents=True)
    log.write_text("I0101 fine\nF0101 net.cpp:42] Check failed: shape\n")
    monkeypatch.delenv("LSTMCNN_TRAIN_CHILD", raising=False)
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: -6)
    rc = train.main(["--experiment", "cnn_T1_s2.6/fold1", "--run", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == errors.EXIT_CAFFE_ABORTED and err.count("error:") == 1, err
    assert err.startswith("error: Caffe aborted (SIGABRT)") and "Check failed: shape" in err


def _is_cli(dec) -> bool:
    f = dec.func if isinstance(dec, ast.Call) else dec
    return getattr(f, "attr", getattr(f, "id", "")) == "cli"


def command_problems(paths) -> list[str]:
    """What keeps a ``python -m`` module off the one error output: a main not decorated
    with ``errors.cli``, its own ``error:`` line on stderr, a ``SystemExit("message")``."""
    out = []
    for p in paths:
        tree = ast.parse(p.read_text())
        is_cmd = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)
        mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        # a thin command runs the main of its library module, which is checked there
        thin = any(isinstance(n, ast.ImportFrom) and (n.module or "").startswith("scripts.")
                   and [a.name for a in n.names] == ["main"] for n in tree.body)
        if is_cmd and not thin and not (mains and any(_is_cli(d) for d in mains[0].decorator_list)):
            out.append(f"{p.name}: main without @errors.cli")
        for n in ast.walk(tree):
            if not isinstance(n, ast.Call):
                continue
            name = getattr(n.func, "id", getattr(n.func, "attr", ""))
            text = ast.unparse(n.args[0]) if n.args else ""
            if name == "print" and any(k.arg == "file" and "stderr" in ast.unparse(k.value) for k in n.keywords) \
                    and re.match(r"f?['\"]([\w.]+: )?error\b|f?['\"][\w]+\.\w+: ", text):
                out.append(f"{p.name}:{n.lineno}: writes its own error line")
            if name == "SystemExit" and n.args and isinstance(n.args[0], (ast.Constant, ast.JoinedStr)):
                out.append(f"{p.name}:{n.lineno}: SystemExit with a message")
    return out


def test_every_command_uses_the_wrapper():
    paths = [p for p in _sources() if p != ROOT / "configs" / "errors.py"]
    assert command_problems(paths) == []
    cmds = [p for p in paths if 'if __name__ == "__main__"' in p.read_text()]
    assert len(cmds) > 20 and ROOT / "data_prep" / "__main__.py" in cmds


def test_the_wrapper_check_can_fail(tmp_path):
    p = tmp_path / "cmd.py"
    p.write_text("import sys\n"
                 "def main(argv=None):\n"
                 "    print(f'data_prep: error: {argv}', file=sys.stderr)\n"
                 "    print('scripts.curves: no such folder', file=sys.stderr)\n"
                 "    raise SystemExit('unknown preset')\n"
                 "if __name__ == '__main__':\n"
                 "    raise SystemExit(main())\n")
    assert len(command_problems([p])) == 4


@pytest.mark.parametrize("cmd", [
    ["scripts.experiments", "makefile", "--run", "{tmp}/run"],
    ["data_prep", "--out", "{tmp}/prep"],
    ["eval.tables", "--results", "{tmp}", "--out", "{tmp}/tables"],
])
def test_a_bad_config_exits_2_with_one_error_line(tmp_path, cmd):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("solver:\n  max_itr: 5\n")
    args = [a.format(tmp=tmp_path) for a in cmd] + ["--config", str(cfg)]
    out = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, GLOG_minloglevel="2"))
    assert out.returncode == errors.EXIT_USAGE, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr, lines
    assert "solver.max_itr" in lines[0]
