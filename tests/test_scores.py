"""Score files (eval/scores.py): round trip, bob's columns and client ids, older files,
stem facts, video-level scores."""
import csv

import numpy as np
import pytest

from data_prep.casia import STEMS
from eval import scores
from synthetic_scores import synthetic_rows


def test_score_file_round_trip_and_bob_columns(tmp_path):
    rows = synthetic_rows([1, 2], 2.0, 3, np.random.default_rng(0), nan_rate=0.2)
    p = scores.write_scores(tmp_path / "s.csv", rows, split="test")
    back = scores.read_scores(p)
    assert len(back) == len(rows) == 2 * 12 * 3
    for a, b in zip(rows, back):
        assert a._replace(score=0.0) == b._replace(score=0.0)
        assert (np.isnan(a.score) and np.isnan(b.score)) or a.score == b.score  # exact
    with open(p) as f:
        first = next(csv.DictReader(f))
    assert list(first)[:5] == ["claimed_id", "test_label", "is_bonafide", "attack_type", "score"]
    assert first["is_bonafide"] == ("True" if STEMS[first["video"]].label == 1 else "False")
    assert [x.name for x in tmp_path.iterdir()] == ["s.csv"]  # no temp file left


def test_pooled_train_and_test_scores_have_distinct_bob_client_ids(tmp_path):
    """bob.db.casia_fasd: train folder k is client k, test folder k is client k + 20. A file
    pooling validation (train) and test rows of the same folder numbers has no id collision."""
    rng = np.random.default_rng(1)
    train = scores.write_scores(tmp_path / "val.csv", synthetic_rows([1, 5, 20], 2.0, 2, rng),
                                split="train")
    test = scores.write_scores(tmp_path / "test.csv", synthetic_rows([1, 5, 30], 2.0, 2, rng),
                               split="test")
    ids = {}
    for p, split in ((train, "train"), (test, "test")):
        with open(p) as f:
            rows = list(csv.DictReader(f))
        assert {r["split"] for r in rows} == {split}
        ids[split] = {(int(r["subject"]), int(r["claimed_id"])) for r in rows}
        assert all(r["test_label"].startswith(f"{split}_release/{r['subject']}/") for r in rows)
    assert ids["train"] == {(1, 1), (5, 5), (20, 20)}
    assert ids["test"] == {(1, 21), (5, 25), (30, 50)}
    pooled = [c for s in ids.values() for _, c in s]
    assert len(pooled) == len(set(pooled))
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        scores.write_scores(tmp_path / "x.csv", [], split="holdout")
    assert not (tmp_path / "x.csv").exists()


def test_older_score_files_without_split_still_read(tmp_path):
    """Files written before the client ids changed (claimed_id = folder, no split column)."""
    old = tmp_path / "old.csv"
    old.write_text("claimed_id,test_label,is_bonafide,attack_type,score,subject,video,quality,frame,label\n"
                   "3,3/1/0,True,genuine,0.75,3,1,normal,0,1\n"
                   "3,3/HR_4/6,False,video,nan,3,HR_4,high,6,0\n")
    a, b = scores.read_scores(old)
    assert (a.subject, a.video, a.label, a.score) == (3, "1", 1, 0.75)
    assert (b.attack, b.frame) == ("video", 6) and np.isnan(b.score)


def test_write_scores_fills_stem_facts_and_refuses_contradictions(tmp_path):
    p = scores.write_scores(tmp_path / "a.csv", [{"subject": 3, "video": "HR_4", "frame": 7, "score": 0.25}],
                            split="test")
    (r,) = scores.read_scores(p)
    assert (r.label, r.attack, r.quality, r.frame) == (0, "video", "high", 7)
    bad = scores.ScoreRow(3, "HR_4", 1, "genuine", "high", 0, 0.5)
    with pytest.raises(ValueError, match="HR_4"):
        scores.write_scores(p, [bad], split="test")
    assert scores.read_scores(p) == [r]  # the old file is untouched
    with pytest.raises(ValueError, match="unknown CASIA video stem"):
        scores.make_row(1, "9", 0, 0.5)


def test_video_level_is_mean_without_nan():
    nan = float("nan")
    rows = [scores.make_row(1, "1", f, s) for f, s in ((0, 0.2), (3, 0.4), (6, nan))]
    rows += [scores.make_row(1, "3", 0, nan), scores.make_row(2, "1", 0, 0.9)]
    v = scores.video_level(rows)
    assert [(r.subject, r.video, r.frame) for r in v] == [(1, "1", -1), (1, "3", -1), (2, "1", -1)]
    assert v[0].score == pytest.approx(0.3)   # (0.2 + 0.4) / 2, the NaN sample left out
    assert np.isnan(v[1].score)               # every sample NaN: the video is a failure to acquire
    assert v[2].score == 0.9
