"""One experiment from start to DONE: nets, training, model selection, scores (§3.3, §4.3).

``fold<k>``: trains on the other folds' subjects, validates on fold k at every
``solver.test_interval`` iterations (loss and p(genuine) kept), for ``solver.max_iter``.
``full``: reads the finished folds' curves (scripts.training.selection), retrains on all train
subjects for the selected number of iterations and scores the test set.

The config is checked when it is loaded (configs.load_experiment_config): the
experiment's (scale, T) is prepared and net.input_size == samples.size.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from configs import dump_config, grammar
from configs.errors import TrainingError
from configs.schedule import Schedule
from configs.files import write_json_atomic
from data_prep import hdf5_layout as layout
from eval.scores import write_scores
from scripts.training import selection
from scripts.training.caffe_io import caffe_log_to, caffe_mode, predict_shards, read_list, score_rows
from scripts.training.trainer import train


FTA_RULE = ("every test video or window that preparation skipped is a failure to acquire in "
            "every protocol; HTER leaves them out (the paper: 'simply remove the bad faces'; "
            "bob.measure), and bob's one FTA rate over both classes is reported beside it with "
            "FAR = FMR (1 - FTA), FRR = FTA + FNMR (1 - FTA)")


def prep_dir(run) -> Path:
    return grammar.RunLayout(run).prep


@dataclass
class Plan:
    """What one experiment trains on: list files, schedule, and (full runs) the selection."""
    train_list: Path
    val_list: Path | None
    schedule: Schedule
    sel: dict | None = None


def plan_fold(cfg: dict, run, exp: grammar.Experiment) -> Plan:
    prep = prep_dir(run)
    return Plan(layout.list_file(prep, exp.scale, exp.T, f"fold{exp.fold}_train"),
                layout.list_file(prep, exp.scale, exp.T, f"fold{exp.fold}_val"), Schedule.from_config(cfg))


def plan_full(cfg: dict, run, exp: grammar.Experiment, d: Path, log) -> Plan:
    """Model selection over the finished folds (§4.3), saved beside the full run."""
    sel, folds = selection.select(cfg, run, exp)
    selection.write_val_scores(d, folds, selection.val_split(cfg))
    selection.save(sel, d / "selection.json")
    selection.plot_selection(sel, d / "selection.png", f"{exp.name}: model selection (§4.3)")
    log(f"[train] {exp.name}/full: {sel['iterations']} iterations selected ({sel['rule']})")
    return Plan(layout.list_file(prep_dir(run), exp.scale, exp.T, "train"), None,
                Schedule.from_config(cfg, sel["iterations"]), sel)


def test_fta(prep: Path, exp: grammar.Experiment, meta: dict) -> list[dict]:
    """The test videos with windows preparation could not build for this (scale, T), copied
    from its record (data_prep.pipeline.test_windows: no face found in the video, or
    windows without a face in all T frames). Each entry: the video, the windows it would
    have with a face in every frame, the windows scored, and ``missing`` (at least 1 for a
    video with no window at all). The tables count them as failures to acquire
    (eval.metrics.rates_with_fta). The scored windows must be the ones prepared."""
    path = layout.test_windows_file(prep, exp.scale, exp.T)
    if not path.is_file():
        raise TrainingError(f"{path} not found: the prepared data predates its test-window record; "
                            f"run data preparation again (make prep, or the table target), which "
                            f"writes it without rebuilding the samples")
    stems = [v.decode() if isinstance(v, bytes) else str(v) for v in meta["stem"]]
    names = meta["dataset"] if "dataset" in meta else ["casia"] * len(stems)
    got = Counter(zip(map(str, names), (int(s) for s in meta["subject"]), stems))
    out = []
    for v in json.loads(path.read_text())["videos"]:
        k = got.get((v["dataset"], int(v["subject"]), v["stem"]), 0)
        if k != v["windows_built"]:
            raise TrainingError(f"{path}: {v['video']} has {v['windows_built']} prepared test "
                                f"window(s) but {k} were scored: the record and the shards "
                                f"disagree; run data preparation again")
        missing = max(v["windows_possible"] - k, 1 if k == 0 else 0)
        if missing:
            out.append({"video": v["video"], "dataset": v["dataset"], "subject": int(v["subject"]),
                        "stem": v["stem"], "windows_possible": v["windows_possible"],
                        "windows_scored": k, "missing": missing, "reason": v["reason"]})
    return out


def score_test(cfg: dict, run, exp: grammar.Experiment, d: Path, sel: dict, gpu, console) -> dict:
    """Score the test set with the final model (§4.4); write scores_test.csv,
    threshold.json and fta.json (the test videos and windows preparation skipped)."""
    caffe = caffe_mode(gpu)
    net = caffe.Net(str(d / "deploy.prototxt"), str(d / "model.caffemodel"), caffe.TEST)
    shards = read_list(layout.list_file(prep_dir(run), exp.scale, exp.T, "test"))
    ts = time.time()
    s, y, meta = predict_shards(net, shards, int(cfg["train"]["score_batch"]))
    write_scores(d / "scores_test.csv", score_rows(s, meta), split="test")
    fta = test_fta(prep_dir(run), exp, meta)
    write_json_atomic(d / "fta.json", {"rule": FTA_RULE, "videos": fta})
    if sel["threshold"] is not None:
        write_json_atomic(d / "threshold.json", selection.threshold_record(sel))
    print(f"[train] {exp.name}/full: {len(s)} test samples scored -> {d / 'scores_test.csv'}",
          file=console)
    return {"test_samples": int(len(s)), "scoring_seconds": round(time.time() - ts, 1),
            "threshold": sel["threshold"], "selected_iterations": sel["iterations"]}


def run_experiment(cfg: dict, run, spec: str, gpu: int | None = None, log=print) -> Path:
    """Train (or resume) one experiment; a finished one is skipped. Returns its folder."""
    from prototxt import generate as G
    exp = grammar.parse(spec)
    d = exp.dir(run)
    if (d / "DONE").exists():
        log(f"[train] {exp.name}/{exp.split}: already finished ({d / 'DONE'}), skipped")
        return d
    if exp.fold is not None and exp.fold not in grammar.fold_ids(cfg):
        raise TrainingError(f"{spec}: fold {exp.fold} is not among folds 1..{cfg['folds']['use']} "
                            f"(folds.use)")
    d.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, d / "config.yaml")
    plan = plan_full(cfg, run, exp, d, log) if exp.split == "full" else plan_fold(cfg, run, exp)
    read_list(plan.train_list)
    val_shards = read_list(plan.val_list) if plan.val_list else None
    # The exact nets of this run; the trainer writes the solver with its schedule.
    G.write_experiment_nets(cfg, exp.model, exp.T, plan.train_list.resolve(),
                            (plan.val_list or plan.train_list).resolve(), d,
                            source=f"{d / 'config.yaml'}", solver=False)
    t0 = time.time()
    with caffe_log_to(d / "caffe.log") as console:
        info = train(cfg, exp, d, plan.schedule, val_shards, gpu=gpu, console=console)
        done = {"experiment": f"{exp.name}/{exp.split}", "train": info,
                "seconds": round(time.time() - t0, 1)}
        if exp.split == "full":
            done.update(score_test(cfg, run, exp, d, plan.sel, gpu, console))
    write_json_atomic(d / "DONE", done)
    return d
