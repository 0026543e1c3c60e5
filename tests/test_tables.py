"""``make tables`` (eval/tables.py) end to end on small synthetic score files."""
import csv

import pytest

from configs import load_config
from data_prep.casia import ATTACK_TYPES
from eval import metrics, scores, tables
from eval.protocols import PROTOCOLS
from synthetic_scores import write_experiment


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
