"""The experiment grammar: models, T, scales and names, stated once (paper §4.3, Table 2).

An experiment is fixed by model, T, scale and split. Its folder is

    RUN/experiments/<model>_T<T>_s<scale>/<split>/      split = fold<k> or full

e.g. ``runs/synth-paper/experiments/peephole_T7_s1.8/fold3``. Models: ``cnn`` (T = 1),
``lstm`` (Caffe's built-in LSTM, no peepholes) and ``peephole`` (the paper's Eq. 2-7).
A scale is always written with one decimal (``s1.0``, never ``s1``), in experiment
names, prepared-data folders (``s1.8_T7``) and prototxt folders (``s1.8``).

This module imports only the standard library, so that configs, data_prep, prototxt,
scripts and eval can all import it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError

MODELS = ("cnn", "lstm", "peephole")
_NAME = re.compile(r"^(cnn|lstm|peephole)_T(\d+)_s(\d+(?:\.\d+)?)$")
_SPLIT = re.compile(r"^fold([1-9]\d*)$")


class GrammarError(UserError, ValueError):
    """A model, T, scale, experiment name or config does not follow the grammar."""


# ---------------------------------------------------------------- names
def scale_str(scale: float) -> str:
    """The one scale formatter: ``1.0``, ``1.8``, ``2.6``."""
    return f"{float(scale):.1f}"


def check_model(model: str, T: int) -> None:
    """The model/T rule: the CNN takes one frame; an LSTM-CNN needs T >= 2 (§3.2)."""
    if model not in MODELS:
        raise GrammarError(f"model {model!r}; expected one of {MODELS}")
    if model == "cnn" and T != 1:
        raise GrammarError(f"the CNN takes one frame (T = 1), got T = {T}")
    if model != "cnn" and T < 2:
        raise GrammarError(f"{model}: T must be >= 2 (paper: 3, 5, 7, 9), got T = {T}")


def model_name(model: str, T: int) -> str:
    """``cnn``, ``lstm_T7``, ``peephole_T3``: the stem of every generated net file."""
    check_model(model, T)
    return "cnn" if model == "cnn" else f"{model}_T{T}"


def exp_name(model: str, T: int, scale: float) -> str:
    return f"{model}_T{int(T)}_s{scale_str(scale)}"


def combo_name(scale: float, T: int) -> str:
    """Folder of one prepared (scale, T): ``s1.8_T7``."""
    return f"s{scale_str(scale)}_T{int(T)}"


def scale_dir(scale: float) -> str:
    """Folder of one scale's committed nets and solvers: ``s1.8``."""
    return f"s{scale_str(scale)}"


def same_scale(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), abs_tol=1e-9)


def parse_name(name: str) -> tuple[str, int, float]:
    """``peephole_T7_s1.8`` -> ("peephole", 7, 1.8); the model/T rule is checked."""
    m = _NAME.match(name)
    if not m:
        raise GrammarError(f"experiment {name!r}: expected <model>_T<T>_s<scale> with model in "
                           f"{MODELS}, e.g. peephole_T7_s1.8")
    model, T, scale = m.group(1), int(m.group(2)), float(m.group(3))
    try:
        check_model(model, T)
    except GrammarError as e:
        raise GrammarError(f"experiment {name!r}: {e}") from None
    return model, T, scale


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
        m = _SPLIT.match(self.split)
        return int(m.group(1)) if m else None

    def dir(self, run: str | Path) -> Path:
        return RunLayout(run).exp_dir(self)

    def with_split(self, split: str) -> "Experiment":
        return Experiment(self.model, self.T, self.scale, split)


class RunLayout:
    """The one statement of a run folder's layout::

        RUN/experiments.mk                 the make plan (python -m scripts.experiments makefile)
        RUN/prep/                          prepared data (its inside: data_prep/hdf5_layout.py)
        RUN/experiments/<name>/<split>/    one experiment (split fold<k> or full)
        RUN/tables/                        tables and figures (eval.tables)
        RUN/slurm/                         Slurm job scripts and logs (scripts/slurm/driver.py)
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    prep = property(lambda self: self.root / "prep")
    experiments = property(lambda self: self.root / "experiments")
    tables = property(lambda self: self.root / "tables")
    slurm = property(lambda self: self.root / "slurm")
    plan = property(lambda self: self.root / "experiments.mk")

    def exp_dir(self, exp: Experiment) -> Path:
        return self.experiments / exp.name / exp.split

    def done(self, exp: Experiment) -> Path:
        """The file whose presence means the experiment finished (scripts/training)."""
        return self.exp_dir(exp) / "DONE"


def parse(spec: str) -> Experiment:
    """``cnn_T1_s2.6/fold1`` or ``peephole_T7_s1.8/full`` -> Experiment (split: full if absent)."""
    name, _, split = spec.strip("/").partition("/")
    m = _NAME.match(name)
    if not m:
        raise GrammarError(f"experiment {spec!r}: expected <model>_T<T>_s<scale>[/fold<k>|/full] "
                           f"with model in {MODELS}, e.g. peephole_T7_s1.8/fold1")
    model, T, scale = m.group(1), int(m.group(2)), float(m.group(3))
    if model == "cnn" and T != 1:
        raise GrammarError(f"experiment {spec!r}: the CNN takes one frame, so T must be 1")
    if model != "cnn" and T < 2:
        raise GrammarError(f"experiment {spec!r}: an LSTM-CNN needs T >= 2 frames")
    split = split or "full"
    if not (split == "full" or _SPLIT.match(split)):
        raise GrammarError(f"experiment {spec!r}: split must be fold<k> or full, got {split!r}")
    return Experiment(model, T, scale, split)


def parse_split(name: str) -> int | None:
    """``fold3`` -> 3; anything else -> None."""
    m = _SPLIT.match(name)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------- the config's experiments
def fold_ids(cfg: dict) -> list[int]:
    """Folds whose models are trained for model selection: 1..folds.use (§4.3); a data
    set validated on its development set has the one fold (data_prep/datasets.py)."""
    from data_prep import datasets   # standard library only, like this module
    if datasets.uses_dev(cfg):
        return [1]
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


def prepared_combos(cfg: dict) -> list[tuple[float, int]]:
    """Every (scale, T) data preparation builds: samples.scales x samples.seq_lengths."""
    s = cfg["samples"]
    return [(float(sc), int(T)) for sc in s["scales"] for T in s["seq_lengths"]]


def is_prepared(cfg: dict, scale: float, T: int) -> bool:
    return any(same_scale(scale, a) and int(T) == b for a, b in prepared_combos(cfg))


def check_config(cfg: dict, source: str = "the config") -> None:
    """Before any work: every experiment's (scale, T) is one that preparation builds,
    and the net reads the prepared crops as they are (net.input_size == samples.size)."""
    size, inp = int(cfg["samples"]["size"]), int(cfg["net"]["input_size"])
    if inp != size:
        raise GrammarError(f"{source}: net.input_size ({inp}) must equal samples.size ({size}): "
                           f"the net reads the prepared crops as they are")
    try:
        names = list(dict.fromkeys(table1_names(cfg) + sweep_names(cfg)))
    except GrammarError as e:
        raise GrammarError(f"{source}: experiments: {e}") from None
    missing = [n for n in names if not is_prepared(cfg, *_scale_T(n))]
    if missing:
        s = cfg["samples"]
        raise GrammarError(f"{source}: experiment(s) {', '.join(missing)} need a (scale, T) that "
                           f"data preparation does not build (samples.scales={list(s['scales'])}, "
                           f"samples.seq_lengths={list(s['seq_lengths'])}); add them there or "
                           f"remove the experiments from experiments.*")


def _scale_T(name: str) -> tuple[float, int]:
    _, T, scale = parse_name(name)
    return scale, T
