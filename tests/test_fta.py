"""Failures to acquire: test videos and windows that preparation skipped count in every
protocol, as bob.measure counts them (FAR = FMR (1 - FTA), FRR = FTA + FNMR (1 - FTA))."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from configs import load_config
from eval import metrics, scores, tables
from synthetic_scores import write_experiment


def test_farfrr_fta_is_bobs_formula():
    neg, pos = [0.1, float("nan"), 0.9], [0.8, float("nan")]
    far, frr = metrics.farfrr_fta(neg, pos, 0.5)
    fmr, fnmr = metrics.farfrr([0.1, 0.9], [0.8], 0.5)
    assert far == pytest.approx(fmr * (1 - 1 / 3)) == pytest.approx(1 / 3)
    assert frr == pytest.approx(0.5 + fnmr * (1 - 0.5)) == pytest.approx(0.5)
    assert metrics.farfrr_fta([0.1, 0.9], [0.8], 0.5) == metrics.farfrr([0.1, 0.9], [0.8], 0.5)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_skipped_test_videos_count_as_fta_in_every_protocol(tmp_path):
    cfg = load_config(None, ["eval.bootstrap_resamples=20"])
    root = tmp_path / "results"
    d = write_experiment(root, "cnn", 1, 2.6, 2.6, seed=3)
    write_experiment(root, "peephole", 7, 1.8, 3.0, seed=4)
    # two genuine videos of test subject 3 were skipped: one wholly, one in part
    rows = scores.read_scores(d / "full" / "scores_test.csv")
    scores.write_scores(d / "full" / "scores_test.csv",
                        [r for r in rows if (r.subject, r.video) != (3, "1")], split="test")
    (d / "full" / "fta.json").write_text(json.dumps({"videos": [
        {"video": "test_release/3/1.avi", "subject": 3, "stem": "1", "windows_possible": 6,
         "windows_scored": 0, "missing": 6, "reason": "no face found in any of 40 frames"},
        {"video": "test_release/3/HR_1.avi", "subject": 3, "stem": "HR_1", "windows_possible": 8,
         "windows_scored": 6, "missing": 2, "reason": "windows without a face in all 1 frames"}]}))
    tables.run(root, tmp_path / "out", cfg=cfg, log=lambda s: None)
    prot = {r["protocol"]: r for r in _rows(tmp_path / "out" / "protocols.csv")
            if r["experiment"] == "cnn_T1_s2.6"}
    assert int(prot["overall"]["fta_test"]) == 8
    assert int(prot["normal"]["fta_test"]) == 6 and int(prot["high"]["fta_test"]) == 2
    assert int(prot["low"]["fta_test"]) == 0
    assert int(prot["warped"]["fta_test"]) == 8      # genuine videos belong to every attack protocol
    # HTER recomputed with the skipped windows as genuine false rejections
    test = scores.read_scores(d / "full" / "scores_test.csv")
    thr = json.loads((d / "full" / "selection.json").read_text())["thresholds"]["sample"]["overall"]["pooled"]
    neg = [r.score for r in test if r.label == 0]
    pos = [r.score for r in test if r.label == 1] + [float("nan")] * 8
    far, frr = metrics.farfrr_fta(neg, pos, thr)
    assert float(prot["overall"]["hter_test"]) == pytest.approx(100 * (far + frr) / 2)
    assert frr > metrics.farfrr(neg, [p for p in pos if not np.isnan(p)], thr)[1]
    iso = {r["experiment"]: r for r in _rows(tmp_path / "out" / "iso.csv")}
    assert int(iso["cnn_T1_s2.6"]["fta"]) == 8
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "FRR = FTA + FNMR" in md and "cnn_T1_s2.6: 8 test window(s) in 2 video(s), 1 of them" in md
    # video level: the wholly skipped video is one failure to acquire, the other keeps a score
    tables.run(root, tmp_path / "v", level="video", cfg=cfg, log=lambda s: None)
    ov = [r for r in _rows(tmp_path / "v" / "protocols.csv")
          if r["experiment"] == "cnn_T1_s2.6" and r["protocol"] == "overall"][0]
    assert int(ov["fta_test"]) == 1


@pytest.mark.slow
def test_full_runs_list_every_unscored_test_video(tiny_run):
    videos = json.loads((tiny_run / "prep" / "videos.json").read_text())
    test = {(v["subject"], v["stem"]) for v in videos if v["split"] == "test"}
    for name in ("cnn_T1_s1.8", "peephole_T3_s1.8"):
        full = tiny_run / "experiments" / name / "full"
        fta = json.loads((full / "fta.json").read_text())
        scored = {(r.subject, r.video) for r in scores.read_scores(full / "scores_test.csv")}
        listed = {(e["subject"], e["stem"]) for e in fta["videos"] if e["windows_scored"] == 0}
        assert scored | listed == test and not scored & listed
        assert "FRR = FTA + FNMR (1 - FTA)" in fta["rule"]
