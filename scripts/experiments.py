"""The make plan of one run, generated from the experiment grammar (configs/grammar.py).

Command line (the Makefile runs it when the config changes)::

    python -m scripts.experiments makefile --config C --run RUN     (writes RUN/experiments.mk)

``RUN/experiments.mk`` holds the whole plan, for make and for a reader (`cat` it): the
experiment lists of Table 1 and of the sweep, each (scale, T) they need, a rule per fold
run (after its prepared data), a rule per full run (after its folds: model selection
reads their curves, paper §4.3) and a rule per prepared (scale, T). make keeps what it
is good at: `-j N`, skipping finished work, `make -n`. Recipes use the Makefile's
``$(PY)``, ``$(GPU_ARG)``, ``$(PREP_ONE)`` and ``$(SYNTH_DEP)``.

The config is checked first (configs.load_experiment_config): a bad key, an experiment
whose (scale, T) is not prepared, or net.input_size != samples.size is one ``error:``
line on stderr and exit status 2, before any work.
"""
from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from configs import config_files, errors, grammar
from configs.errors import UserError
from data_prep import hdf5_layout as L

LISTS = ("table1", "sweep", "all")


def _rel(p: Path) -> str:
    """A config file as the Makefile names it: relative to the working folder when inside it."""
    try:
        return os.path.relpath(p) if p.resolve().is_relative_to(Path.cwd().resolve()) else str(p)
    except ValueError:
        return str(p)


def _names(cfg: dict, of: str) -> list[str]:
    names = {"table1": grammar.table1_names(cfg), "sweep": grammar.sweep_names(cfg),
             "all": grammar.table1_names(cfg) + grammar.sweep_names(cfg)}[of]
    return list(dict.fromkeys(names))


def _header(cfg: dict, config: str, run: grammar.RunLayout, sources: list[str]) -> list[str]:
    done = {of: [str(run.done(grammar.parse(n))) for n in _names(cfg, of)] for of in LISTS}
    combos = {of: [f"{grammar.scale_str(s)}:{T}" for s, T in grammar.combos(cfg, of)] for of in LISTS}
    out = ["# The make plan of this run, generated from its config by",
           f"#   python -m scripts.experiments makefile --config {shlex.quote(config)} --run {run.root}",
           "# and included by the Makefile, which remakes it when a PLAN_SOURCES file changes.",
           "# Edit the config, not this file.",
           f"PLAN_CONFIG := {config}",
           f"PLAN_SOURCES := {' '.join(sources)}"]
    for of in LISTS:
        out.append(f"PLAN_DONE_{of} := {' '.join(done[of])}")
    for of in LISTS:
        out.append(f"PLAN_COMBOS_{of} := {' '.join(combos[of])}")
    return out


def _experiment_rules(cfg: dict, config: str, run: grammar.RunLayout, name: str) -> list[str]:
    full = grammar.parse(name)
    folds = [full.with_split(f"fold{k}") for k in grammar.fold_ids(cfg)]
    train = f"$(PY) -m scripts.train --config {shlex.quote(config)} --run {run.root}"
    manifest = _manifest(run, full.scale, full.T)
    out = ["", f"# {name}: {len(folds)} fold run(s) on {manifest.parent.name}, then the full run"]
    for f in folds:
        out += [f"{run.done(f)}: | {manifest}",
                f"\t{train} --experiment {name}/{f.split} $(GPU_ARG)"]
    out += [f"{run.done(full)}: {' '.join(str(run.done(f)) for f in folds)}",
            f"\t{train} --experiment {name}/full $(GPU_ARG)"]
    return out


def _manifest(run: grammar.RunLayout, scale: float, T: int) -> Path:
    """A prepared (scale, T)'s manifest, written last (data_prep/hdf5_layout.py)."""
    return L.combo_dir(run.prep, scale, T) / "manifest.json"


def plan_text(cfg: dict, config: str, run: str | Path) -> str:
    """RUN/experiments.mk for ``cfg`` (loaded from ``config``)."""
    layout = grammar.RunLayout(run)
    sources = [_rel(p) for p in config_files(config)]
    lines = _header(cfg, config, layout, sources)
    for name in _names(cfg, "all"):
        lines += _experiment_rules(cfg, config, layout, name)
    lines.append("")
    lines.append("# Prepared data, one (scale, T) at a time when an experiment is made directly")
    for s, T in grammar.combos(cfg, "all"):
        lines += [f"{_manifest(layout, s, T)}: $(SYNTH_DEP)", f"\t$(PREP_ONE) --only {grammar.scale_str(s)}:{T}"]
    return "\n".join(lines) + "\n"


@errors.cli
def main(argv=None) -> int:
    from configs import load_experiment_config
    from configs.files import write_text_atomic
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("makefile",))
    ap.add_argument("--config", required=True, help="the run's configs/*.yaml")
    ap.add_argument("--run", required=True, help="the run folder (no spaces: make names its files)")
    ap.add_argument("--out", help="where to write the plan (default RUN/experiments.mk; - for stdout)")
    a = ap.parse_args(argv)
    if " " in a.run:
        raise UserError(f"--run {a.run!r} holds a space: make cannot name its targets with spaces")
    cfg = load_experiment_config(a.config)
    text = plan_text(cfg, a.config, a.run)
    if a.out == "-":
        print(text, end="")
    else:
        out = Path(a.out) if a.out else grammar.RunLayout(a.run).plan
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
