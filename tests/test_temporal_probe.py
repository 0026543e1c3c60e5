"""The temporal probe (scripts/temporal_probe.py): clips reordered along time only, and a
trained model's test clips scored four ways through the real deploy net."""
from __future__ import annotations

import json

import numpy as np
import pytest

from scripts.diagnostics import temporal_probe as P


def _clips(n=5, T=4):
    # frame t of clip i holds the value 10 * i + t everywhere: the reorderings can be read off
    x = np.zeros((n, T, 3, 2, 2), np.uint8)
    for i in range(n):
        for t in range(T):
            x[i, t] = 10 * i + t
    return x


def test_reorder_changes_time_only():
    x = _clips()
    rng = np.random.default_rng(0)
    frames = lambda y: y[:, :, 0, 0, 0].astype(int)   # noqa: E731
    assert np.array_equal(P.reorder(x, "stored", rng), x)
    assert np.array_equal(frames(P.reorder(x, "reversed", rng)), frames(x)[:, ::-1])
    rep = frames(P.reorder(x, "repeated", rng))
    assert np.array_equal(rep, np.repeat(frames(x)[:, 2:3], 4, axis=1))
    sh = frames(P.reorder(x, "shuffled", rng))
    for i in range(len(x)):
        assert sorted(sh[i]) == list(frames(x)[i])              # the clip's own frames
        assert list(sh[i]) != list(frames(x)[i])                # never the stored order
    with pytest.raises(ValueError):
        P.reorder(x, "sideways", rng)


@pytest.mark.slow
def test_probe_scores_a_trained_lstm_cnn_four_ways(tiny_run, tmp_path):
    from eval.scores import read_scores
    d = tiny_run / "experiments" / "peephole_T3_s1.8" / "full"
    rows = P.probe(d, tmp_path, seed=1)
    assert [r["variant"] for r in rows] == list(P.VARIANTS)
    stored = {r["variant"]: r for r in rows}["stored"]
    assert stored["mean_abs_change"] == 0.0 and stored["decisions_changed"] == 0.0
    # "stored" is the experiment's own test scoring
    test = read_scores(d / "scores_test.csv")
    gen = np.mean([r.score for r in test if r.label == 1])
    assert stored["mean_genuine"] == pytest.approx(gen, abs=1e-6)
    out = json.loads((tmp_path / "temporal_probe.json").read_text())
    assert out["experiment"] == "peephole_T3_s1.8" and len(out["rows"]) == 4
    assert "| repeated |" in (tmp_path / "temporal_probe.md").read_text()
    png = tmp_path / "probe.png"
    assert P.main(["--plot", f"tiny={tmp_path / 'temporal_probe.json'}", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):             # a label without its file
        P.main(["--plot", "tiny", "--out", str(png)])
    with pytest.raises(SystemExit):             # a file that is not there
        P.main(["--plot", f"tiny={tmp_path / 'nope.json'}", "--out", str(png)])
    with pytest.raises(P.ProbeError, match="one frame"):
        P.probe(tiny_run / "experiments" / "cnn_T1_s1.8" / "full", tmp_path)
