"""Validation thresholds, computed once (paper §4.4).

The paper sets the test threshold with "the average EER on validation folds". Two
readings, both computed here for every protocol (``eval.protocols``) and both score
levels (sample, video = mean of each video's sample scores):

* ``pooled`` (ours, used for every HTER): ``eval.metrics.eer_threshold`` of the fold
  models' validation scores pooled -- each validation sample scored once, by the model
  that did not see its subject;
* ``fold_mean``: the mean over folds of each fold's own EER threshold.

Model selection (scripts/training/selection.py) computes them from the fold models' validation
scores at the selected iteration and saves them in ``full/selection.json`` (the scores
themselves in ``full/scores_val.csv``); ``eval.tables`` reads them from there and never
recomputes them. NaN scores are dropped here
(failures to acquire have no score to place a threshold on).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from data_prep.casia import GENUINE
from eval import metrics
from eval.protocols import PROTOCOLS, mask
from eval.scores import ScoreRow, as_arrays, read_scores, video_level

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


def fold_arrays(rows: list[ScoreRow], level: str) -> dict:
    """One fold's validation rows as arrays, per sample or per video."""
    return as_arrays(video_level(rows) if level == "video" else rows)


def validation_thresholds(fold_rows: list[list[ScoreRow]]) -> dict:
    """{level: {protocol: {"pooled": t, "fold_mean": t}}} from the fold models' validation
    rows at the selected iteration, one list per fold."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.FailureToAcquireWarning)
        for level in LEVELS:
            folds = [fold_arrays(f, level) for f in fold_rows]
            out[level] = {p: protocol_thresholds(folds, p) for p in PROTOCOLS}
    return out


def split_folds(rows: list[ScoreRow], fold_clients: dict, where: str) -> list[list[ScoreRow]]:
    """The pooled validation rows of full/scores_val.csv back into their folds, in the
    order of ``fold_clients`` ({fold: ["<dataset>/<subject>", ...]}, selection.json)."""
    owner = {}
    for fold, clients in fold_clients.items():
        for c in clients:
            if owner.setdefault(c, fold) != fold:
                raise ValueError(f"{where}: subject {c} is in {owner[c]} and {fold}")
    folds = {f: [] for f in fold_clients}
    for r in rows:
        c = f"{r.dataset}/{r.subject}"
        if c not in owner:
            raise ValueError(f"{where}: a validation row of {c} belongs to no fold of fold_clients")
        folds[owner[c]].append(r)
    return list(folds.values())
