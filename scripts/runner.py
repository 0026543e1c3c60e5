"""One experiment from start to DONE: nets, training, model selection, scores (§3.3, §4.3).

``fold<k>``: trains on the other folds' subjects, validates on fold k at every
``solver.test_interval`` iterations (loss and p(genuine) kept), for ``solver.max_iter``.
``full``: reads the finished folds' curves (scripts.selection), retrains on all train
subjects for the selected number of iterations and scores the test set.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from configs import dump_config
from data_prep import hdf5_layout as layout
from eval.scores import write_scores
from scripts import experiments as X
from scripts import selection
from scripts.trainer import (TrainingError, caffe_log_to, caffe_mode, predict_shards, read_list,
                             score_rows, train)


def prep_dir(run) -> Path:
    return Path(run) / "prep"


def schedule(cfg: dict, max_iter: int | None = None) -> dict:
    s = cfg["solver"]
    mi = int(s["max_iter"] if max_iter is None else max_iter)
    return {"base_lr": float(s["base_lr"]), "lr_policy": s["lr_policy"], "gamma": float(s["gamma"]),
            "stepvalue": [int(v) for v in s["stepvalues"] if int(v) < mi], "max_iter": mi,
            "test_interval": int(s["test_interval"]), "snapshot": int(s["snapshot"])}


def check_combo(cfg: dict, exp: X.Experiment) -> None:
    """The experiment's (scale, T) must be one that data preparation builds."""
    sc, Ts = [float(x) for x in cfg["samples"]["scales"]], [int(t) for t in cfg["samples"]["seq_lengths"]]
    if not any(math.isclose(exp.scale, s) for s in sc) or exp.T not in Ts:
        raise TrainingError(f"experiment {exp.name}: scale {exp.scale} / T {exp.T} is not prepared by "
                            f"this config (samples.scales={sc}, samples.seq_lengths={Ts}); add them "
                            f"there and run `make prep` again")
    if int(cfg["net"]["input_size"]) != int(cfg["samples"]["size"]):
        raise TrainingError(f"net.input_size ({cfg['net']['input_size']}) must equal samples.size "
                            f"({cfg['samples']['size']}): the net reads the prepared crops as they are")


def run_experiment(cfg: dict, run, spec: str, gpu: int | None = None, log=print) -> Path:
    """Train (or resume) one experiment; a finished one is skipped. Returns its folder."""
    from prototxt import generate as G
    exp = X.parse(spec)
    d = exp.dir(run)
    if (d / "DONE").exists():
        log(f"[train] {exp.name}/{exp.split}: already finished ({d / 'DONE'}), skipped")
        return d
    check_combo(cfg, exp)
    if exp.fold is not None and exp.fold not in X.fold_ids(cfg):
        raise TrainingError(f"{spec}: fold {exp.fold} is not among folds 1..{cfg['folds']['use']} "
                            f"(folds.use)")
    d.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, d / "config.yaml")
    prep = prep_dir(run)
    sel = None
    if exp.split == "full":
        sel = selection.select(cfg, run, exp)
        selection.save(sel, d / "selection.json")
        selection.plot_selection(sel, d / "selection.png", f"{exp.name}: model selection (§4.3)")
        log(f"[train] {exp.name}/full: {sel['iterations']} iterations selected ({sel['rule']})")
        train_list, val_list = layout.list_file(prep, exp.scale, exp.T, "train"), None
        sp = schedule(cfg, sel["iterations"])
    else:
        train_list = layout.list_file(prep, exp.scale, exp.T, f"fold{exp.fold}_train")
        val_list = layout.list_file(prep, exp.scale, exp.T, f"fold{exp.fold}_val")
        sp = schedule(cfg)
    read_list(train_list)
    val_shards = read_list(val_list) if val_list else None
    # The exact nets of this run (the solver is rewritten by the trainer, see write_solver).
    G.write_experiment_nets(cfg, exp.model, exp.T, train_list.resolve(),
                            (val_list or train_list).resolve(), d,
                            source=f"{d / 'config.yaml'}")
    t0 = time.time()
    with caffe_log_to(d / "caffe.log") as console:
        info = train(cfg, exp, d, sp, val_shards, gpu=gpu, console=console)
        done = {"experiment": f"{exp.name}/{exp.split}", "train": info,
                "seconds": round(time.time() - t0, 1)}
        if exp.fold is not None:
            # The fold model's validation scores at its last iteration; model selection
            # (the full run) rewrites them at the selected iteration.
            selection.write_val_scores(d, sp["max_iter"])
        if exp.split == "full":
            caffe = caffe_mode(gpu)
            net = caffe.Net(str(d / "deploy.prototxt"), str(d / "model.caffemodel"), caffe.TEST)
            shards = read_list(layout.list_file(prep, exp.scale, exp.T, "test"))
            ts = time.time()
            s, y, meta = predict_shards(net, shards, int(cfg["train"]["score_batch"]))
            write_scores(d / "scores_test.csv", score_rows(s, meta))
            done.update(test_samples=int(len(s)), scoring_seconds=round(time.time() - ts, 1),
                        threshold=sel["threshold"], selected_iterations=sel["iterations"])
            if sel["threshold"] is not None:
                (d / "threshold.json").write_text(json.dumps(
                    {"threshold": sel["threshold"], "rule": sel["threshold_rule"]}, indent=1))
            print(f"[train] {exp.name}/full: {len(s)} test samples scored -> {d / 'scores_test.csv'}",
                  file=console)
    tmp = d / "DONE.tmp"
    tmp.write_text(json.dumps(done, indent=1))
    os.replace(tmp, d / "DONE")
    return d
