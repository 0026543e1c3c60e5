"""Cross-dataset runs: train on one data set (or three, MCIO leave-one-out), test on another.

    python -m scripts.cross prepare  --config C --train casia [replay ...] --test replay --run RUN
    python -m scripts.cross evaluate --config C --run RUN

``prepare`` writes each synthetic tree that is missing (when a data set's root is the
default of ``cross.roots``), prepares every data set once into ``cross.prep_dir/<name>``
(data_prep: its own splits, protocol, folds or development set) and composes ``RUN/prep``:
list files whose entries point into those folders: ``train``, ``fold<k>_train``,
``fold<k>_val`` from the source set(s), ``test`` and ``dev`` from the target. The usual
experiment targets then train there (scripts/training/runner.py: model selection on the sources'
validation data, test scores of the target). ``evaluate`` scores the target's
development data with each final model and writes the cross-dataset table (eval/cross.py).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from configs import dump_config, errors, grammar
from configs.errors import UserError
from configs.files import write_json_atomic, write_text_atomic
from data_prep import datasets
from data_prep import hdf5_layout as L


def dataset_cfg(cfg: dict, name: str) -> dict:
    """The config a data set is prepared with: the cross config, its name, root, protocol."""
    c = json.loads(json.dumps(cfg))
    c["dataset"] = dict(c["dataset"], name=name, root=cfg["cross"]["roots"][name],
                        protocol=cfg["cross"]["protocols"][name])
    return c


def _ensure_tree(cfg: dict, name: str, root: Path) -> None:
    if (root / "synth_manifest.json").exists() or root.is_dir():
        return
    if str(root) != str(Path(cfg["cross"]["roots"][name])) or "synth" not in str(root):
        raise UserError(f"{datasets.TITLES[name]} root {root} not found")
    print(f"[cross] writing the synthetic {datasets.TITLES[name]}-layout set to {root}", flush=True)
    if name == "casia":
        from data_prep import synth
        synth.generate(synth.synth_params(cfg, cfg["cross"]["casia_preset"]), root,
                       workers=os.cpu_count() or 1)
    else:
        from data_prep import synth_layouts
        synth_layouts.generate(synth_layouts.layout_params(cfg, name), root,
                               workers=os.cpu_count() or 1)


def _lists(prep: Path, scale: float, T: int, which: str) -> list[Path]:
    return L.read_list(L.list_file(prep, scale, T, which))


def compose(cfg: dict, sources: list[str], target: str, run: Path) -> None:
    """RUN/prep: the sources' training and validation lists, the target's test and dev."""
    base = Path(cfg["cross"]["prep_dir"])
    out = grammar.RunLayout(run).prep
    for scale, T in grammar.combos(cfg, "table1"):
        d = L.combo_dir(out, scale, T)
        d.mkdir(parents=True, exist_ok=True)
        lists = {"train": [], "test": _lists(base / target, scale, T, "test"),
                 "dev": _lists(base / target, scale, T, "dev")}
        for k in grammar.fold_ids(cfg):
            lists[f"fold{k}_train"], lists[f"fold{k}_val"] = [], []
        for s in sources:
            sc = dataset_cfg(cfg, s)
            lists["train"] += _lists(base / s, scale, T, "train")
            # a source validated on its dev set has one fold: every cross fold uses it
            for k in grammar.fold_ids(cfg):
                f = 1 if datasets.uses_dev(sc) else k
                lists[f"fold{k}_train"] += _lists(base / s, scale, T, f"fold{f}_train")
                lists[f"fold{k}_val"] += _lists(base / s, scale, T, f"fold{f}_val")
        for which, paths in lists.items():
            write_text_atomic(d / f"{which}.txt",
                              "".join(os.path.relpath(p, d.resolve()) + "\n" for p in paths))
        # the target's test videos and the windows preparation built of them (FTA)
        shutil.copyfile(L.test_windows_file(base / target, scale, T), L.test_windows_file(out, scale, T))
        write_json_atomic(d / "manifest.json", {"scale": scale, "T": T, "sources": sources,
                                                "target": target, "lists": sorted(lists)})
    for f in ("videos.json", "report.json"):       # the target's videos and its prep report
        shutil.copyfile(base / target / f, out / f)
    write_json_atomic(run / "cross.json", {"sources": sources, "target": target,
                                           "protocols": {n: datasets.resolve_protocol(
                                               n, cfg["cross"]["protocols"][n])
                                               for n in sources + [target]}})


def prepare(cfg: dict, sources: list[str], target: str, run: Path) -> None:
    from data_prep import pipeline
    if target in sources:
        raise UserError(f"the test set {target} is also a training set: {sources}")
    for name in dict.fromkeys(sources + [target]):
        c = dataset_cfg(cfg, name)
        root = Path(c["dataset"]["root"])
        _ensure_tree(cfg, name, root)
        out = Path(cfg["cross"]["prep_dir"]) / name
        print(f"[cross] preparing {datasets.TITLES[name]} ({root}) into {out}", flush=True)
        pipeline.run(c, root, out, progress=False, only=grammar.combos(cfg, "table1"))
    run.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run / "config.yaml")
    compose(cfg, sources, target, run)
    print(f"[cross] {'+'.join(sources)} -> {target}: lists in {run / 'prep'}", flush=True)


def score_dev(cfg: dict, run: Path) -> None:
    """scores_dev.csv of each finished experiment: the target's development data."""
    from eval.scores import write_scores
    from scripts.training.caffe_io import caffe_mode, predict_shards, read_list, score_rows
    caffe = caffe_mode(None)
    for name in grammar.table1_names(cfg):
        exp = grammar.parse(name + "/full")
        d = exp.dir(run)
        if (d / "scores_dev.csv").exists():
            continue
        net = caffe.Net(str(d / "deploy.prototxt"), str(d / "model.caffemodel"), caffe.TEST)
        s, _, meta = predict_shards(net, read_list(L.list_file(run / "prep", exp.scale, exp.T, "dev")),
                                    int(cfg["train"]["score_batch"]))
        write_scores(d / "scores_dev.csv", score_rows(s, meta), split="dev")


@errors.cli(also=(ValueError, FileNotFoundError))
def main(argv=None) -> int:
    from configs import load_experiment_config
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("prepare", "evaluate"))
    ap.add_argument("--config", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--train", nargs="+", default=[], help="source data set(s)")
    ap.add_argument("--test", default=None, help="target data set")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")   # Caffe's net-setup log, before import
    cfg = load_experiment_config(a.config, a.set)
    run = Path(a.run)
    if a.what == "prepare":
        for n in a.train + [a.test]:
            datasets.check_name(n)
        prepare(cfg, a.train, a.test, run)
    else:
        from eval import cross
        score_dev(cfg, run)
        cross.write_table(cfg, run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
