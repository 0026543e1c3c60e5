"""Score files, protocols and ``make tables`` end to end on small synthetic score files."""
import csv

import numpy as np
import pytest

from configs import load_config
from data_prep.casia import ATTACK_TYPES, QUALITIES, STEMS
from eval import metrics, scores, tables
from eval.protocols import PROTOCOLS, mask
from synthetic_scores import synthetic_rows, write_experiment


# ---------------------------------------------------------------- score files

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


def test_protocol_masks():
    rows = [scores.make_row(1, stem, 0, 0.5) for stem in STEMS]
    arr = scores.as_arrays(rows)
    assert PROTOCOLS == ("overall", "low", "normal", "high", "warped", "cut", "video")
    assert mask(arr, "overall").sum() == 12
    for q in QUALITIES:  # 1 genuine + 3 attacks of that quality
        sel = mask(arr, q)
        assert sel.sum() == 4 and set(arr["quality"][sel]) == {q}
    for a in ATTACK_TYPES:  # all 3 genuine + the 3 videos of that attack
        sel = mask(arr, a)
        assert sel.sum() == 6 and set(arr["attack"][sel]) == {"genuine", a}


# ---------------------------------------------------------------- make tables

@pytest.fixture()
def cfg():
    return load_config(None, ["eval.bootstrap_resamples=60"])


def _results(tmp_path):
    root = tmp_path / "results"
    write_experiment(root, "cnn", 1, 2.6, 2.5, 1, test_subjects=range(1, 11), samples_per_video=4)
    write_experiment(root, "cnn", 1, 1.4, 2.0, 2, test_subjects=range(1, 11), samples_per_video=4)
    write_experiment(root, "peephole", 7, 2.2, 3.0, 3, folds=(1, 2), test_subjects=range(1, 11),
                     samples_per_video=4, nan_rate=0.05)
    (root / "lstm_T5_s1.8" / "fold1").mkdir(parents=True)  # incomplete: no test scores
    (root / "notes").mkdir()                                # not an experiment
    return root


def test_make_tables_end_to_end(tmp_path, cfg):
    root = _results(tmp_path)
    logs = []
    out = tables.run(root, tmp_path / "out", cfg=cfg, note="demo: tiny synthetic", log=logs.append)
    for stem in ("table1", "table2", "protocols", "iso"):
        for ext in ("md", "csv", "tex"):
            assert (tmp_path / "out" / f"{stem}.{ext}").stat().st_size > 0
    for png in ("fig6_hter_vs_threshold", "roc", "det", "hist_cnn_T1_s2.6", "hist_peephole_T7_s2.2"):
        assert (tmp_path / "out" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "index" in out
    text = "\n".join(logs)
    assert "lstm_T5_s1.8: skipped" in text
    assert "peephole_T7_s2.2: 2 of 5 validation folds" in text
    assert "Table 1 peephole: peephole_T7_s2.2, configured setting (peephole_T7_s1.8) absent" in text
    assert "Table 1 cnn: cnn_T1_s2.6, the configured setting" in text

    md = (tmp_path / "out" / "table1.md").read_text()
    assert "sample-level" in md and "demo: tiny synthetic" in md
    assert "Correlation" in md and "30.33" in md and "LBP-TOP" in md

    # our CNN row equals a recomputation from the score files with eval.metrics
    with open(tmp_path / "out" / "table1.csv") as f:
        ours = {r["experiment"]: r for r in csv.DictReader(f) if r["source"] == "ours"}
    assert set(ours) == {"cnn_T1_s2.6", "peephole_T7_s2.2"}
    d = root / "cnn_T1_s2.6"
    val = scores.read_scores(d / "full" / "scores_val.csv")
    test = scores.read_scores(d / "full" / "scores_test.csv")
    vn = [r.score for r in val if r.label == 0]
    vp = [r.score for r in val if r.label == 1]
    tn = [r.score for r in test if r.label == 0]
    tp = [r.score for r in test if r.label == 1]
    t = metrics.eer_threshold(vn, vp)
    row = ours["cnn_T1_s2.6"]
    assert float(row["threshold"]) == pytest.approx(t)
    assert float(row["eer_val"]) == pytest.approx(100 * metrics.eer(vn, vp))
    assert float(row["hter_test"]) == pytest.approx(100 * metrics.hter(tn, tp, t))
    assert float(row["eer_test"]) == pytest.approx(100 * metrics.eer(tn, tp))
    assert float(row["hter_lo"]) <= float(row["hter_test"]) <= float(row["hter_hi"])
    assert float(row["d_hter_test"]) == pytest.approx(float(row["hter_test"]) - 7.34, abs=0.006)

    with open(tmp_path / "out" / "table2.csv") as f:
        t2 = list(csv.DictReader(f))
    cell = [r for r in t2 if r["model"] == "cnn" and float(r["scale"]) == 1.4][0]
    assert float(cell["paper_hter_test"]) == 7.89 and cell["hter_test"]
    with open(tmp_path / "out" / "protocols.csv") as f:
        prot = list(csv.DictReader(f))
    assert [r["protocol"] for r in prot if r["experiment"] == "cnn_T1_s2.6"] == list(PROTOCOLS)
    assert sum(int(r["fta_test"]) for r in prot if r["experiment"] == "peephole_T7_s2.2") > 0
    with open(tmp_path / "out" / "iso.csv") as f:
        iso = {r["experiment"]: r for r in csv.DictReader(f)}
    r = iso["cnn_T1_s2.6"]
    apcers = [float(r[f"apcer_{a}"]) for a in ATTACK_TYPES]
    assert float(r["apcer_max"]) == max(apcers)
    assert float(r["acer"]) == pytest.approx((max(apcers) + float(r["bpcer"])) / 2)
    tex = (tmp_path / "out" / "table1.tex").read_text()
    assert r"\begin{tabular}" in tex and "cnn\\_T1\\_s2.6" in tex


def test_video_level_tables_say_so(tmp_path, cfg):
    root = _results(tmp_path)
    tables.run(root, tmp_path / "v", level="video", cfg=cfg, log=lambda s: None)
    for stem in ("table1", "table2", "protocols", "iso"):
        assert "video-level" in (tmp_path / "v" / f"{stem}.md").read_text()
    with open(tmp_path / "v" / "protocols.csv") as f:
        ov = [r for r in csv.DictReader(f) if r["experiment"] == "cnn_T1_s2.6" and r["protocol"] == "overall"]
    assert (int(ov[0]["n_genuine"]), int(ov[0]["n_attack"])) == (10 * 3, 10 * 9)  # one score per video


def test_nothing_found_is_a_clear_error(tmp_path, cfg):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no experiment found"):
        tables.run(tmp_path / "empty", tmp_path / "o", cfg=cfg, log=lambda s: None)
    assert tables.main(["--results", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2


def test_cli_reads_config_and_note(tmp_path):
    root = _results(tmp_path)
    conf = tmp_path / "demo.yaml"
    conf.write_text("eval:\n  bootstrap_resamples: 40\n  note: from the config\n")
    assert tables.main(["--results", str(root), "--out", str(tmp_path / "c"), "--config", str(conf)]) == 0
    md = (tmp_path / "c" / "table1.md").read_text()
    assert "from the config" in md and "40 resamples" in md
