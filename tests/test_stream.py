"""Live scoring (``predict --source``, scripts/inference/stream.py) against scoring the file whole.

A stream is served by the test itself on 127.0.0.1 (scripts/diagnostics/mjpeg.py: MJPEG over HTTP,
the protocol of most IP cameras); the same JPEG images concatenated
make the file that ``score_video`` scores whole. Both decode through OpenCV's FFmpeg
backend, so the claim checked is the scoring's: the same face boxes, windows, scores and
decisions. A camera cannot be tested here (none is attached); its code path differs only
in the index passed to cv2.VideoCapture."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from scripts.diagnostics import mjpeg
from scripts import predict as cli
from scripts.inference import predictor as P
from scripts.inference import stream as S

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("cnn_T1_s1.8", "peephole_T3_s1.8", "lstm_T3_s1.8")


def _model(run, name):
    return P.load_model(run / "experiments" / name / "full")


@pytest.fixture(scope="module")
def clip(synth_mini, tmp_path_factory):
    """JPEG frames of a genuine and an attack video of subject 1 (640x360, 12 frames each)
    one after the other, and the raw .mjpeg file of those JPEGs."""
    d = tmp_path_factory.mktemp("stream")
    jpegs = [j for v in ("HR_1.avi", "HR_2.avi")
             for j in mjpeg.jpeg_frames(synth_mini / "test_release" / "1" / v)]
    return jpegs, mjpeg.write_mjpeg(d / "clip.mjpeg", jpegs)


@pytest.mark.slow
def test_http_stream_decodes_to_the_file_frames(clip):
    jpegs, path = clip
    from data_prep.samples import read_frames
    with mjpeg.MJPEGServer(jpegs) as url:
        live = list(read_frames(url))
    whole = list(read_frames(path))
    assert len(live) == len(whole) == len(jpegs) == 24
    assert all(np.array_equal(a, b) for a, b in zip(live, whole))


@pytest.mark.parametrize("name, source", [(m, "http") for m in MODELS] + [("cnn_T1_s1.8", "file")])
@pytest.mark.slow
def test_stream_gives_the_whole_file_windows_scores_and_decisions(tiny_run, clip, name, source):
    """http: the server sends half of the frames, then waits until a decision has been
    reported (at most 60 s): a scorer that waited for the end of the stream, or for a full
    batch, would stall it. file: the same file as a source, read ahead (windows held and
    scored in batches)."""
    jpegs, path = clip
    model = _model(tiny_run, name)
    whole = P.score_video(path, model)                 # default: batch 64 // T, tracking
    first = threading.Event()
    server = mjpeg.MJPEGServer(jpegs, hold=(len(jpegs) // 2, first, 60.0))
    reports, sent_at = [], []

    def on_window(w):
        reports.append(w)
        sent_at.append(server.sent)
        first.set()

    with server as url:
        live = S.score_stream(url if source == "http" else path, model, on_window=on_window)
    assert np.array_equal(live.frame_boxes, whole.frame_boxes)
    assert live.starts == whole.starts and live.boxes == whole.boxes
    assert len(whole.starts) >= 6 and live.timing["stride"] == model.stride
    np.testing.assert_allclose(live.scores, whole.scores, rtol=0, atol=1e-6)
    assert live.decision == whole.decision and live.mean == pytest.approx(whole.mean, abs=1e-6)
    assert [w.start for w in reports] == whole.starts                    # one report per window
    assert all(w.end == w.start + model.T - 1 for w in reports)
    assert [w.decision for w in reports] == ["GENUINE" if p >= model.sample_threshold else "ATTACK"
                                             for p in whole.scores]
    assert reports[-1].running_decision == whole.decision
    assert [w.count for w in reports] == list(range(1, len(reports) + 1))
    if source == "http":          # decided as the frames arrived: not all were sent yet
        assert server.held is True and sent_at[0] <= len(jpegs) // 2
    t = live.timing
    assert t["frames"] == 24 and t["capacity_fps"] > 0 and t["busy_s"] <= t["wall_s"]
    assert 1 <= t["mean_batch"] <= t["batch"] == 64 // model.T


def _predict(*args):
    env = dict(os.environ, GLOG_minloglevel="2")
    return subprocess.run([sys.executable, "-m", "scripts.predict", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_cli_source_file_json_lines_frames_limit_and_annotation(tiny_run, synth_mini, tmp_path):
    d = tiny_run / "experiments" / "peephole_T3_s1.8" / "full"
    video = synth_mini / "test_release" / "1" / "1.avi"
    ann = tmp_path / "live.avi"
    out = _predict("--source", video, "--model", d, "--json", "--frames", 9, "--annotate", ann,
                   "--batch", 1)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(l) for l in out.stdout.splitlines()]
    wins, summary = lines[:-1], lines[-1]
    assert [w["type"] for w in wins] == ["window"] * len(wins) and summary["type"] == "summary"
    assert [w["first_frame"] for w in wins] == [0, 2, 4, 6]           # T 3, stride 2, 9 frames
    assert summary["frames"] == 9 and summary["annotated"] == str(ann)
    assert summary["timing"]["forwards"] == 4                         # --batch 1: one each
    assert summary["decision"] == wins[-1]["running_decision"]
    assert abs(np.mean([w["p_genuine"] for w in wins]) - summary["mean_p_genuine"]) < 1e-12
    cap = cv2.VideoCapture(str(ann))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 9
    text = _predict("--source", video, "--model", d)
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("| mean of ") == 5                        # 12 frames: 0 .. 8
    assert "frame rate: keeps up with" in text.stdout and "decision:        " in text.stdout


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case, code, words", [
    ("url", P.EXIT_UNREADABLE, "OpenCV cannot open it"),
    ("camera", P.EXIT_UNREADABLE, "camera 7: no such camera"),
    ("missing", P.EXIT_MISSING, "video not found"),
    ("both", P.EXIT_USAGE, "not both"),
    ("frames", P.EXIT_USAGE, "--frames N"),
])
@pytest.mark.slow
def test_bad_sources(tiny_run, synth_mini, tmp_path, capsys, case, code, words):
    d = tiny_run / "experiments" / "cnn_T1_s1.8" / "full"
    video = synth_mini / "test_release" / "1" / "1.avi"
    args = {"url": ["--source", f"http://127.0.0.1:{_closed_port()}/stream.mjpg"],
            "camera": ["--source", "7"], "missing": ["--source", tmp_path / "nope.avi"],
            "both": [video, "--source", video], "frames": [video, "--frames", "5"]}[case]
    try:
        rc = cli.main([str(a) for a in args] + ["--model", str(d)])
    except SystemExit as e:          # argparse's usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == code and words in err, (rc, err)


def test_window_stream_is_windows_one_frame_at_a_time():
    """WindowStream.push, frame by frame, gives windows() of the whole box array (every
    T, stride and missing-face rule), so a stream and a file share one window rule."""
    from data_prep import samples
    rng = np.random.default_rng(3)
    boxes = np.column_stack([rng.integers(0, 50, (40, 2)), rng.integers(20, 40, (40, 2))])
    boxes[rng.random(40) < 0.25] = -1
    for T in (1, 3, 5, 9):
        for stride in (0, 1, 2, 4):
            for missing in ("skip", "keep"):
                ws = samples.WindowStream(T, stride, missing)
                pushed = [(f, w) for f, w in enumerate(map(ws.push, boxes)) if w is not None]
                assert [w for _, w in pushed] == samples.windows(boxes, T, stride, missing)
                assert all(f == w[0] + T - 1 for f, w in pushed)       # reported at its last frame
    assert len(samples.windows(boxes, 3, 1, "keep")) > len(samples.windows(boxes, 3, 1, "skip")) > 0
