"""Validation thresholds, computed once (paper §4.4).

The paper sets the test threshold with "the average EER on validation folds". Two
readings, both computed here for every protocol (``eval.protocols``) and both score
levels (sample, video = mean of each video's sample scores):

* ``pooled`` (ours, used for every HTER): ``eval.metrics.eer_threshold`` of the fold
  models' validation scores pooled -- each validation sample scored once, by the model
  that did not see its subject;
* ``fold_mean``: the mean over folds of each fold's own EER threshold.

Model selection (scripts/selection.py) computes them from the folds' scores_val.csv at
the selected iteration and saves them in ``full/selection.json``; ``eval.tables``
reads them from there and never recomputes them. NaN scores are dropped here
(failures to acquire have no score to place a threshold on).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from data_prep.casia import GENUINE
from eval import metrics
from eval.protocols import PROTOCOLS, mask
from eval.scores import as_arrays, read_scores, video_level

LEVELS = ("sample", "video")


def load_scores(path: Path, level: str, extra_rows=()) -> dict:
    """A score file as arrays (``eval.scores.as_arrays``), per sample or per video;
    ``extra_rows`` (e.g. NaN rows of skipped windows) are added before the video means."""
    rows = read_scores(path)
    if not rows:
        raise ValueError(f"{path}: no score rows")
    rows = list(rows) + list(extra_rows)
    return as_arrays(video_level(rows) if level == "video" else rows)


def att_gen(arr: dict, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(attack scores, genuine scores) of the rows selected by ``sel``."""
    s = arr["score"][sel]
    g = arr["label"][sel] == GENUINE
    return s[~g], s[g]


def protocol_thresholds(folds: list[dict], protocol: str) -> dict:
    """``pooled`` and ``fold_mean`` thresholds of one protocol; None where a class is missing."""
    pooled = {k: np.concatenate([f[k] for f in folds]) for k in folds[0]}
    va, vg = map(metrics.scored, att_gen(pooled, mask(pooled, protocol)))
    if min(va.size, vg.size) == 0:
        return {"pooled": None, "fold_mean": None}
    per_fold = []
    for f in folds:
        a, g = map(metrics.scored, att_gen(f, mask(f, protocol)))
        if a.size and g.size:
            per_fold.append(metrics.eer_threshold(a, g))
    return {"pooled": float(metrics.eer_threshold(va, vg)),
            "fold_mean": float(np.mean(per_fold)) if per_fold else None}


def validation_thresholds(fold_files: list[Path]) -> dict:
    """{level: {protocol: {"pooled": t, "fold_mean": t}}} from the folds' scores_val.csv."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.FailureToAcquireWarning)
        for level in LEVELS:
            folds = [load_scores(Path(p), level) for p in fold_files]
            out[level] = {p: protocol_thresholds(folds, p) for p in PROTOCOLS}
    return out
