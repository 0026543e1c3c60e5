"""Synthetic score files in the experiment layout of ``eval.tables``, for tests and
for trying ``make tables`` before any training has run. Not data: made-up scores.

Each subject gets a random offset (so samples of one subject are correlated, which
is why the bootstrap resamples subjects), video replays are the hardest attack and
low quality the hardest quality, and a model's ``skill`` sets how far the classes are
apart. Scores are p(genuine) = sigmoid(logit).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from configs import grammar
from data_prep.casia import CASIA_FOLDS, GENUINE, STEMS, SUBJECTS
from configs.files import write_json_atomic
from eval.scores import make_row, write_scores
from eval.thresholds import validation_thresholds

_ATTACK_SHIFT = {"warped": 1.0, "cut": 0.8, "video": 0.3}
_QUALITY_SHIFT = {"low": -0.4, "normal": 0.0, "high": 0.4}


def synthetic_rows(subjects, skill: float, samples_per_video: int, rng, nan_rate: float = 0.0):
    rows = []
    for s in subjects:
        offset = rng.normal(0.0, 0.8)
        for stem, info in STEMS.items():
            sep = skill + _QUALITY_SHIFT[info.quality]
            if info.label == GENUINE:
                mu = sep + offset
            else:
                mu = -sep * _ATTACK_SHIFT[info.attack] + offset
            logit = rng.normal(mu, 1.0, samples_per_video)
            p = 1.0 / (1.0 + np.exp(-logit))
            if nan_rate:
                p[rng.random(samples_per_video) < nan_rate] = np.nan
            rows += [make_row(s, stem, 3 * i, float(v)) for i, v in enumerate(p)]
    return rows


def write_experiment(root: Path, model: str, T: int, scale: float, skill: float, seed: int,
                     folds=(1, 2, 3, 4, 5), test_subjects=SUBJECTS["test"],
                     samples_per_video: int = 6, nan_rate: float = 0.0) -> Path:
    """Write ``<root>/<model>_T<T>_s<scale>/full/``: the pooled validation scores of the
    folds (``scores_val.csv``), ``scores_test.csv`` and ``selection.json`` with its
    validation thresholds and each fold's subjects, as model selection saves them."""
    rng = np.random.default_rng(seed)
    d = Path(root) / grammar.exp_name(model, T, scale)
    val = [synthetic_rows(CASIA_FOLDS[k - 1], skill, samples_per_video, rng, nan_rate) for k in folds]
    write_scores(d / "full" / "scores_val.csv", [r for f in val for r in f], split="train")
    write_scores(d / "full" / "scores_test.csv",
                 synthetic_rows(test_subjects, skill, samples_per_video, rng, nan_rate), split="test")
    # What model selection saves beside the full run (scripts/training/selection.py).
    write_json_atomic(d / "full" / "selection.json", {
        "thresholds": validation_thresholds(val),
        "fold_clients": {f"fold{k}": [f"casia/{s}" for s in CASIA_FOLDS[k - 1]] for k in folds}})
    write_json_atomic(d / "full" / "fta.json", {"videos": []})   # nothing skipped
    return d


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="write synthetic score files for a dry run of make tables")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1701)
    a = ap.parse_args(argv)
    write_experiment(a.out, "cnn", 1, 2.6, 2.6, a.seed)
    write_experiment(a.out, "cnn", 1, 1.0, 2.2, a.seed + 1)
    write_experiment(a.out, "peephole", 7, 1.8, 3.0, a.seed + 2, nan_rate=0.01)
    write_experiment(a.out, "lstm", 7, 1.8, 2.8, a.seed + 3, folds=(1, 2))
    write_experiment(a.out, "peephole", 7, 1.0, 2.4, a.seed + 4)
    print(f"synthetic score files written under {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
