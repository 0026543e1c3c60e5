"""One validation threshold, one source: model selection computes it, and selection.json,
full/threshold.json and every table carry that same value (paper §4.4)."""
from __future__ import annotations

import pytest

import csv
import json
from pathlib import Path

import numpy as np

from configs import load_config
from eval import metrics, tables

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def _pooled_val(exp: Path, it: int, folds=(1, 2)):
    """The fold models' validation p(genuine) at iteration ``it``, pooled, per class."""
    per_fold = []
    for k in folds:
        z = np.load(exp / f"fold{k}" / "val_scores.npz")
        s, y = z[f"iter_{it}"].astype(np.float64), z["label"]
        per_fold.append((s[y == 0], s[y == 1]))
    neg = np.concatenate([n for n, _ in per_fold])
    pos = np.concatenate([p for _, p in per_fold])
    return neg, pos, per_fold


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_selection_threshold_json_and_tables_carry_one_threshold(tiny_run, tmp_path):
    exp = tiny_run / "experiments" / "cnn_T1_s1.8"
    sel = json.loads((exp / "full" / "selection.json").read_text())
    neg, pos, per_fold = _pooled_val(exp, sel["iterations"])
    t = metrics.eer_threshold(neg, pos)
    # the check can tell the classes apart: swapped arguments give another value
    assert metrics.eer_threshold(pos, neg) != t
    assert sel["threshold"] == t
    assert sel["thresholds"]["sample"]["overall"]["pooled"] == t
    assert json.loads((exp / "full" / "threshold.json").read_text())["threshold"] == t
    fold_mean = float(np.mean([metrics.eer_threshold(n, p) for n, p in per_fold]))
    assert sel["threshold_fold_mean"] == fold_mean

    cfg = load_config(TINY)
    cfg["eval"]["bootstrap_resamples"] = 20
    tables.run(tiny_run / "experiments", tmp_path / "t", cfg=cfg, log=lambda s: None)
    t1 = [r for r in _rows(tmp_path / "t" / "table1.csv") if r["experiment"] == "cnn_T1_s1.8"]
    assert float(t1[0]["threshold"]) == t
    assert float(t1[0]["threshold_fold_mean"]) == fold_mean
    prot = [r for r in _rows(tmp_path / "t" / "protocols.csv")
            if r["experiment"] == "cnn_T1_s1.8" and r["protocol"] == "overall"]
    assert float(prot[0]["threshold"]) == t
    iso = [r for r in _rows(tmp_path / "t" / "iso.csv") if r["experiment"] == "cnn_T1_s1.8"]
    assert float(iso[0]["threshold"]) == t
    md = (tmp_path / "t" / "table1.md").read_text()
    assert f"{t:.6g}" in md and f"{fold_mean:.6g}" in md
