"""Experiments: names, folders and the lists the Makefile builds (paper §4.3, Table 2).

An experiment is fixed by model, T, scale and split. Its folder is

    RUN/experiments/<model>_T<T>_s<scale>/<split>/      split = fold<k> or full

e.g. ``runs/synth-paper/experiments/peephole_T7_s1.8/fold3``. Models: ``cnn`` (T = 1),
``lstm`` (Caffe's built-in LSTM, no peepholes) and ``peephole`` (the paper's Eq. 2-7).
A finished experiment has a ``DONE`` file; that file is the Makefile's target.

Command line (used by the Makefile)::

    python -m scripts.experiments folds|table1|sweep --config C --run RUN
    python -m scripts.experiments combos [--of table1|sweep|all] --config C   (SCALE:T ...)
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

MODELS = ("cnn", "lstm", "peephole")
_NAME = re.compile(r"^(cnn|lstm|peephole)_T(\d+)_s(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Experiment:
    model: str
    T: int
    scale: float
    split: str  # "fold<k>" or "full"

    @property
    def name(self) -> str:
        return exp_name(self.model, self.T, self.scale)

    @property
    def fold(self) -> int | None:
        return int(self.split[4:]) if self.split.startswith("fold") else None

    def dir(self, run: str | Path) -> Path:
        return Path(run) / "experiments" / self.name / self.split


def exp_name(model: str, T: int, scale: float) -> str:
    return f"{model}_T{int(T)}_s{float(scale):.1f}"


def parse(spec: str) -> Experiment:
    """``cnn_T1_s2.6/fold1`` or ``peephole_T7_s1.8/full`` -> Experiment."""
    name, _, split = spec.strip("/").partition("/")
    m = _NAME.match(name)
    if not m:
        raise ValueError(f"experiment {spec!r}: expected <model>_T<T>_s<scale>[/fold<k>|/full] "
                         f"with model in {MODELS}, e.g. peephole_T7_s1.8/fold1")
    model, T, scale = m.group(1), int(m.group(2)), float(m.group(3))
    if model == "cnn" and T != 1:
        raise ValueError(f"experiment {spec!r}: the CNN takes one frame, so T must be 1")
    if model != "cnn" and T < 2:
        raise ValueError(f"experiment {spec!r}: an LSTM-CNN needs T >= 2 frames")
    split = split or "full"
    if not (split == "full" or re.fullmatch(r"fold[1-9]\d*", split)):
        raise ValueError(f"experiment {spec!r}: split must be fold<k> or full, got {split!r}")
    return Experiment(model, T, scale, split)


def fold_ids(cfg: dict) -> list[int]:
    """Folds whose models are trained for model selection: 1..folds.use (§4.3)."""
    return list(range(1, int(cfg["folds"]["use"]) + 1))


def table1_names(cfg: dict) -> list[str]:
    return [parse(n).name for n in cfg["experiments"]["table1"]]


def sweep_names(cfg: dict) -> list[str]:
    e = cfg["experiments"]
    names = []
    for model in e["sweep_models"]:
        for T in ([1] if model == "cnn" else e["sweep_T"]):
            for s in e["sweep_scales"]:
                names.append(exp_name(model, T, s))
    return names


def combos(cfg: dict, of: str = "all") -> list[tuple[float, int]]:
    """The (scale, T) that data preparation must build for the experiments of ``of``:
    table1 (`make reproduce-table1`), sweep (`make scale-sweep`) or all."""
    names = {"table1": table1_names(cfg), "sweep": sweep_names(cfg),
             "all": table1_names(cfg) + sweep_names(cfg)}[of]
    out = set()
    for n in names:
        x = parse(n)
        out.add((x.scale, x.T))
    return sorted(out)


def main(argv=None) -> int:
    from configs import load_config
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("folds", "table1", "sweep", "combos"))
    ap.add_argument("--config", default=None)
    ap.add_argument("--run", default="runs/default")
    ap.add_argument("--of", choices=("table1", "sweep", "all"), default="all",
                    help="with combos: the experiments whose (scale, T) are listed")
    a = ap.parse_args(argv)
    cfg = load_config(a.config)
    if a.what == "folds":
        print(" ".join(str(k) for k in fold_ids(cfg)))
    elif a.what == "combos":
        print(" ".join(f"{s:.1f}:{T}" for s, T in combos(cfg, a.of)))
    else:
        names = table1_names(cfg) if a.what == "table1" else sweep_names(cfg)
        print(" ".join(str(Path(a.run) / "experiments" / n / "full" / "DONE") for n in dict.fromkeys(names)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
