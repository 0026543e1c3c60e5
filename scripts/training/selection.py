"""Model selection over the subject-wise folds (paper §4.3).

"We train models on these five folds, and using the average loss of validation folds
to tune the model parameters. And then using the best parameter to retrain a model on
the whole train set."

What is tuned here: the number of training iterations (the validation points of the
solver schedule). Every fold model is validated at the same iterations; the mean of
the folds' validation-loss curves is taken at each, and the iteration with the lowest
mean (the earliest on a tie) is the one the final model is retrained for. Everything
else (learning rate, decay, batch) stays at the paper's values (configs/paper.yaml).

The validation threshold (§4.4, "HTER on test fold using the average EER on
validation folds to set threshold"): the fold models' validation scores at the
selected iteration are pooled (each validation sample is scored once, by the model
that did not see its subject) and ``eval.metrics.eer_threshold`` of the pooled set is
the threshold (``eval.thresholds``: every protocol, sample and video level, and the
paper's second reading, the mean of the per-fold EER thresholds). They are saved in
the full run's ``selection.json``, the pooled scores in its ``scores_val.csv``, both from
the arrays selection holds; ``eval.tables`` reads them from there. A fold folder is
never written to after its DONE.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from eval import metrics, thresholds
from eval.scores import ScoreRow, make_row, write_scores
from configs import grammar
from configs.errors import TrainingError
from configs.files import write_json_atomic
from scripts.training.caffe_io import META_KEYS, score_rows
from scripts.training.curves import read_curve, save_figure


def fold_dirs(cfg: dict, run, exp: grammar.Experiment) -> list[Path]:
    return [exp.with_split(f"fold{k}").dir(run) for k in grammar.fold_ids(cfg)]


def val_split(cfg: dict) -> str:
    """The split name of validation scores: ``dev`` where the data set's development set
    is the validation set (data_prep/datasets.py), else ``train`` (held-out train folds)."""
    from data_prep import datasets
    return "dev" if datasets.uses_dev(cfg) else "train"


def val_rows(fold_dir: Path, iteration: int) -> list[ScoreRow]:
    """A fold model's validation scores at ``iteration`` (its val_scores.npz), as score rows."""
    z = np.load(fold_dir / "val_scores.npz")
    s = z[f"iter_{iteration}"].astype(np.float64)
    meta = {k: z[k] for k in META_KEYS if k in z.files}
    return [make_row(r["subject"], r["video"], r["frame"], r["score"], r["dataset"])
            for r in score_rows(s, meta)]


def _curves(dirs: list[Path], exp: grammar.Experiment) -> dict:
    curves = {}
    for d in dirs:
        if not (d / "DONE").exists():
            raise TrainingError(f"model selection for {exp.name} needs {d} to be finished first "
                                f"(run `make` on its DONE target, or scripts.train --experiment "
                                f"{exp.name}/{d.name})")
        rows = [r for r in read_curve(d / "curve.csv") if r["val_loss"] is not None]
        curves[d.name] = {int(r["iter"]): r["val_loss"] for r in rows}
    return curves


def select(cfg: dict, run, exp: grammar.Experiment) -> tuple[dict, list]:
    """Pick the iteration count from the folds' curves; return the selection record and
    the fold models' validation rows at that iteration, one list per fold (the caller
    saves both beside the full run; the fold folders are never written to)."""
    dirs = fold_dirs(cfg, run, exp)
    if not dirs:
        return {"iterations": int(cfg["solver"]["max_iter"]), "folds": [], "threshold": None,
                "rule": "no folds configured (folds.use = 0): solver.max_iter"}, []
    curves = _curves(dirs, exp)
    common = sorted(set.intersection(*(set(c) for c in curves.values())) - {0})
    if not common:
        raise TrainingError(f"{exp.name}: the folds share no validation iteration; "
                            f"check solver.test_interval and solver.max_iter")
    mean = np.array([np.mean([curves[f][i] for f in curves]) for i in common])
    best = common[int(np.argmin(mean))]  # argmin takes the earliest on a tie
    # The fold models' validation scores at the selected iteration, pooled.
    folds = [val_rows(d, best) for d in dirs]
    pooled = [r for f in folds for r in f]
    neg = np.array([r.score for r in pooled if r.label == 0])
    pos = np.array([r.score for r in pooled if r.label == 1])
    thr = thresholds.validation_thresholds(folds)
    return {"iterations": int(best), "folds": [d.name for d in dirs],
            "fold_clients": {d.name: sorted({f"{r.dataset}/{r.subject}" for r in f})
                             for d, f in zip(dirs, folds)},
            "rule": "argmin over validation points of the mean fold validation loss",
            "mean_val_loss": dict(zip(map(str, common), map(float, mean))),
            "fold_val_loss": {f: {str(i): c[i] for i in common} for f, c in curves.items()},
            "threshold": thr["sample"]["overall"]["pooled"],
            "threshold_rule": "eer_threshold of the pooled fold validation "
                              "scores at the selected iteration",
            "threshold_fold_mean": thr["sample"]["overall"]["fold_mean"],
            "thresholds": thr,
            "eer_val_pooled": float(metrics.eer(neg, pos))}, folds


def write_val_scores(full_dir: Path, folds: list, split: str) -> Path | None:
    """full/scores_val.csv: the fold models' validation scores at the selected iteration,
    pooled (each validation sample scored once, by the model that did not see its
    subject), fold by fold; selection.json's ``fold_clients`` says which rows are whose."""
    if not folds:
        return None
    return write_scores(full_dir / "scores_val.csv", [r for f in folds for r in f], split=split)


def plot_selection(sel: dict, path: Path, title: str) -> None:
    if not sel.get("mean_val_loss"):
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for f, c in sel["fold_val_loss"].items():
        ax.plot([int(i) for i in c], list(c.values()), lw=1, alpha=0.5, label=f)
    m = sel["mean_val_loss"]
    ax.plot([int(i) for i in m], list(m.values()), "k-o", lw=2, label="mean of folds")
    ax.axvline(sel["iterations"], color="r", ls="--", label=f"selected: {sel['iterations']} iterations")
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def save(sel: dict, path: Path) -> None:
    write_json_atomic(path, sel)


VIDEO_RULE = ("eer_threshold of the validation videos' mean p(genuine) (fold models at the "
              "selected iteration, pooled)")


def threshold_record(sel: dict) -> dict:
    """What full/threshold.json holds: the selected sample-level validation threshold
    (the tables' HTER), and the video-level one that ``predict`` decides with, since it
    compares a video's mean score (§4.4's EER threshold, on video-level scores)."""
    return {"threshold": sel["threshold"], "rule": sel["threshold_rule"],
            "video_threshold": sel["thresholds"]["video"]["overall"]["pooled"],
            "video_rule": VIDEO_RULE}
