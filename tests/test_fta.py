"""Failures to acquire: test videos and windows that preparation skipped are counted in
every protocol; HTER leaves them out (the paper: "simply remove the bad faces"; bob.measure's
metrics command), and bob's FTA rate, FAR = FMR (1 - FTA) and FRR = FTA + FNMR (1 - FTA)
stand beside it."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from configs import load_config
from eval import metrics, scores, tables
from synthetic_scores import write_experiment


def test_rates_with_fta_are_bobs_formulas():
    """bob/measure/script/figure.py, Metrics._numbers: fmr, fnmr = farfrr(neg, pos, thr) on the
    scored samples; hter = (fmr + fnmr) / 2; far = fmr (1 - fta); frr = fta + fnmr (1 - fta),
    with utils.get_fta's one rate: all NaN scores over all scores, both classes together."""
    neg, pos = [0.1, float("nan"), 0.9, 0.7], [0.8, float("nan"), 0.3]
    r = metrics.rates_with_fta(neg, pos, 0.5)
    fta = 2 / 7                                  # not 1/4 and 1/3 per class
    fmr, fnmr = 2 / 3, 1 / 2                     # 0.9, 0.7 accepted of 3; 0.3 rejected of 2
    assert r.fta == pytest.approx(fta) and (r.fmr, r.fnmr) == (pytest.approx(fmr), pytest.approx(fnmr))
    assert r.hter == pytest.approx((fmr + fnmr) / 2)
    assert r.hter == pytest.approx(metrics.hter([0.1, 0.9, 0.7], [0.8, 0.3], 0.5))
    assert r.far == pytest.approx(fmr * (1 - fta)) and r.frr == pytest.approx(fta + fnmr * (1 - fta))
    clean = metrics.rates_with_fta([0.1, 0.9], [0.8], 0.5)      # no NaN: FAR = FMR, FRR = FNMR
    assert (clean.fta, clean.far, clean.frr) == (0.0, clean.fmr, clean.fnmr)


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
    # HTER over the scored samples; bob's FTA, FAR, FRR beside it in Table 1
    test = scores.read_scores(d / "full" / "scores_test.csv")
    thr = json.loads((d / "full" / "selection.json").read_text())["thresholds"]["sample"]["overall"]["pooled"]
    neg = [r.score for r in test if r.label == 0]
    pos = [r.score for r in test if r.label == 1]
    assert float(prot["overall"]["hter_test"]) == pytest.approx(100 * metrics.hter(neg, pos, thr))
    bob = metrics.rates_with_fta(neg, pos + [float("nan")] * 8, thr)
    assert bob.fta == pytest.approx(8 / (len(test) + 8))
    t1 = {r["experiment"]: r for r in _rows(tmp_path / "out" / "table1.csv") if r["experiment"]}
    row = t1["cnn_T1_s2.6"]
    assert float(row["fta_rate_test"]) == pytest.approx(100 * bob.fta)
    assert float(row["far_fta_test"]) == pytest.approx(100 * bob.far)
    assert float(row["frr_fta_test"]) == pytest.approx(100 * bob.frr)
    assert (int(row["fta_test_genuine"]), int(row["fta_test_attack"])) == (8, 0)
    assert float(row["hter_test"]) == pytest.approx(100 * bob.hter)
    iso = {r["experiment"]: r for r in _rows(tmp_path / "out" / "iso.csv")}
    assert int(iso["cnn_T1_s2.6"]["fta"]) == 8
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "FRR = FTA + FNMR" in md and "Skipped: 8 window(s) in 2 video(s)" in md
    assert "test_release/3/HR_1.avi" not in md        # the list is in fta.md, not the caption
    fta_md = (tmp_path / "out" / "fta.md").read_text()
    assert "| cnn_T1_s2.6 | test_release/3/1.avi | 6 | 0 | 6 |" in fta_md
    assert "| cnn_T1_s2.6 | test_release/3/HR_1.avi | 8 | 6 | 2 |" in fta_md
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


@pytest.mark.slow
def test_preparation_records_each_test_videos_windows(tiny_run):
    """OUT/<combo>/test_windows.json: every indexed test video, the windows it has with a
    face in every frame, the windows built (= the test samples in the shards), and a
    reason wherever fewer were built; the full run's fta.json is its shortfall."""
    import h5py
    from data_prep import hdf5_layout as L
    videos = json.loads((tiny_run / "prep" / "videos.json").read_text())
    rec = json.loads(L.test_windows_file(tiny_run / "prep", 1.8, 3).read_text())
    assert [v["video"] for v in rec["videos"]] == [v["video"] for v in videos if v["split"] == "test"]
    n = 0
    for shard in L.read_list(L.list_file(tiny_run / "prep", 1.8, 3, "test")):
        with h5py.File(shard) as f:
            n += len(f["label"])
    assert sum(v["windows_built"] for v in rec["videos"]) == n
    for v in rec["videos"]:
        assert v["windows_built"] <= v["windows_possible"]
        assert (v["reason"] is None) == (0 < v["windows_built"] == v["windows_possible"])
    fta = json.loads((tiny_run / "experiments" / "peephole_T3_s1.8" / "full" / "fta.json").read_text())
    short = [v["video"] for v in rec["videos"] if v["reason"] is not None]
    assert [e["video"] for e in fta["videos"]] == short


def test_scoring_copies_the_record_and_refuses_a_stale_one(tmp_path):
    from configs import grammar
    from configs.errors import TrainingError
    from data_prep import hdf5_layout as L
    from scripts.training.runner import test_fta
    exp = grammar.parse("peephole_T3_s1.8/full")
    path = L.test_windows_file(tmp_path, 1.8, 3)
    path.parent.mkdir(parents=True)
    v = lambda video, stem, possible, built, reason: {   # noqa: E731
        "video": video, "dataset": "casia", "subject": 3, "stem": stem,
        "windows_possible": possible, "windows_built": built, "reason": reason}
    path.write_text(json.dumps({"videos": [
        v("test_release/3/1.avi", "1", 6, 6, None),
        v("test_release/3/2.avi", "2", 6, 4, "windows without a face in all 3 frames"),
        v("test_release/3/HR_1.avi", "HR_1", 0, 0, "no face found in any of 40 frames")]}))
    meta = {"subject": np.array([3] * 10), "stem": np.array([b"1"] * 6 + [b"2"] * 4),
            "dataset": np.array(["casia"] * 10)}
    got = test_fta(tmp_path, exp, meta)
    assert [(e["stem"], e["windows_scored"], e["missing"]) for e in got] == [("2", 4, 2), ("HR_1", 0, 1)]
    assert got[1]["reason"] == "no face found in any of 40 frames"
    meta["stem"][-1] = b"1"       # a window scored that the record does not know
    with pytest.raises(TrainingError, match="disagree"):
        test_fta(tmp_path, exp, meta)
    path.unlink()
    with pytest.raises(TrainingError, match="run data preparation again"):
        test_fta(tmp_path, exp, meta)
