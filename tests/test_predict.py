"""scripts.predict / scripts.inference.predictor: scoring a video with a trained experiment.

Uses the session's tiny trained models (conftest ``tiny_run``); their scores mean
nothing, so these tests check the plumbing: same samples as data_prep, batching,
decision rule, backends, output formats and one exit code per kind of bad input."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from data_prep import hdf5_layout as layout
from data_prep import samples
from scripts.inference import predictor as P

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MODELS = ("cnn_T1_s1.8", "peephole_T3_s1.8", "lstm_T3_s1.8")


def _model_dir(run, name="cnn_T1_s1.8"):
    return run / "experiments" / name / "full"


def _predict(*args):
    env = dict(os.environ, GLOG_minloglevel="2")
    return subprocess.run([PY, "-m", "scripts.predict", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("name", ["cnn_T1_s1.8", "peephole_T3_s1.8"])
@pytest.mark.slow
def test_samples_equal_the_prepared_hdf5(tiny_run, synth_mini, name):
    """predict's detection + windows + crops give byte-identical samples to data_prep's."""
    model = P.load_model(_model_dir(tiny_run, name))
    prep = tiny_run / "prep"
    vids = json.loads((prep / "videos.json").read_text())
    shards = layout.read_list(layout.list_file(prep, model.exp.scale, model.T, "test"))
    with h5py.File(shards[0]) as f:
        data, frame, vid = f["data"][...], f["frame"][...], f["video_id"][...]
    checked = 0
    for v in sorted(set(vid.tolist()))[:3]:
        path = synth_mini / vids[v]["video"]
        det = P.detect_faces(path, model, "full")
        s = model.cfg["samples"]
        wins = samples.windows(det["boxes"], model.T, s["stride"], s["missing_face"], 0)
        mine = dict(samples.iter_samples(samples.read_frames(path), wins, model.T,
                                         model.exp.scale, model.size, s["interp"]))
        for i in np.flatnonzero(vid == v):
            assert np.array_equal(mine[int(frame[i])], data[i]), (path, int(frame[i]))
            checked += 1
    assert checked >= 3


@pytest.mark.slow
def test_score_video_batches_and_decision(tiny_run, synth_mini):
    model = P.load_model(_model_dir(tiny_run))
    video = synth_mini / "test_release" / "1" / "HR_1.avi"
    r1 = P.score_video(video, model, batch=1)
    r5 = P.score_video(video, model, batch=5)
    assert len(r1.scores) == len(r1.starts) == r1.timing["windows"] >= 5
    assert r1.starts == sorted(r1.starts) and r1.timing["frames"] == 12
    np.testing.assert_allclose(r1.scores, r5.scores, atol=1e-6)
    assert np.all((r1.scores >= 0) & (r1.scores <= 1))
    rec = json.loads((model.dir / "threshold.json").read_text())
    thr = rec["video_threshold"]
    assert model.threshold == thr and model.sample_threshold == rec["threshold"]
    sel = json.loads((model.dir / "selection.json").read_text())
    assert thr == sel["thresholds"]["video"]["overall"]["pooled"]   # same kind as the mean score
    assert r1.decision == ("GENUINE" if r1.scores.mean() >= thr else "ATTACK")
    model.threshold = float(r1.scores.mean())          # the boundary is accepted
    assert r1.decision == "GENUINE"
    model.threshold = float(np.nextafter(r1.scores.mean(), 2.0))
    assert r1.decision == "ATTACK"


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.slow
def test_opencv_backend_matches_caffe(tiny_run, synth_mini, name):
    model = P.load_model(_model_dir(tiny_run, name))
    video = synth_mini / "test_release" / "2" / "3.avi"
    a = P.score_video(video, model, backend="caffe", batch=4)
    b = P.score_video(video, model, backend="opencv", batch=4)
    assert a.starts == b.starts
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_cli_text_json_and_annotate(tiny_run, synth_mini, tmp_path):
    d = _model_dir(tiny_run, "peephole_T3_s1.8")
    video = synth_mini / "test_release" / "1" / "1.avi"
    out = _predict(video, "--model", d)
    assert out.returncode == 0, out.stderr
    thr = json.loads((d / "threshold.json").read_text())["video_threshold"]
    assert f"threshold:       {thr:.4f} (video-level" in out.stdout
    assert "rule:            GENUINE when the mean p(genuine)" in out.stdout
    assert "T=3" in out.stdout and "stride 2" in out.stdout
    rows = [l.split() for l in out.stdout.splitlines() if l.startswith("  ") and l.split()[0].isdigit()]
    scores = np.array([float(r[1]) for r in rows])
    mean = float(out.stdout.split("mean p(genuine):")[1].split()[0])
    assert len(rows) == 5 and abs(scores.mean() - mean) < 1e-3
    dec = out.stdout.split("decision:")[1].split()[0]
    assert dec == ("GENUINE" if mean >= thr else "ATTACK")

    ann = tmp_path / "ann.avi"
    js = _predict(video, "--model", d, "--json", "--annotate", ann, "--batch", "2")
    assert js.returncode == 0, js.stderr
    j = json.loads(js.stdout)
    assert j["decision"] == dec and j["threshold"] == thr and j["T"] == 3
    assert j["threshold_level"] == "video" and j["decision_rule"].startswith("GENUINE when")
    assert [w["first_frame"] for w in j["windows"]] == [0, 2, 4, 6, 8]
    assert abs(np.mean([w["p_genuine"] for w in j["windows"]]) - j["mean_p_genuine"]) < 1e-12
    cap = cv2.VideoCapture(str(ann))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 12


# ---------------------------------------------------------------- bad input, one code each
@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, tiny_run):
    d = tmp_path_factory.mktemp("bad")
    (d / "garbage.avi").write_bytes(b"this is not a video" * 100)
    w = cv2.VideoWriter(str(d / "noface.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 15, (320, 240))
    for i in range(8):
        w.write(np.full((240, 320, 3), 40 + 10 * i, np.uint8))
    w.release()
    unfinished = d / "experiments" / "cnn_T1_s1.8" / "full"
    shutil.copytree(_model_dir(tiny_run), unfinished)
    (unfinished / "DONE").unlink()
    fold = d / "experiments" / "cnn_T1_s1.8" / "fold1"
    shutil.copytree(tiny_run / "experiments" / "cnn_T1_s1.8" / "fold1", fold)
    return d


@pytest.mark.parametrize("case, code, words", [
    ("missing", P.EXIT_MISSING, "video not found"),
    ("garbage", P.EXIT_UNREADABLE, "cannot read the video"),
    ("noface", P.EXIT_NO_FACE, "no face found"),
    ("unfinished", P.EXIT_MODEL, "not finished (no DONE file)"),
    ("fold", P.EXIT_MODEL, "use the full/ folder"),
    ("nomodel", P.EXIT_MODEL, "model folder not found"),
    ("usage", P.EXIT_USAGE, "--model"),
])
@pytest.mark.slow
def test_bad_input_exit_codes(bad_inputs, tiny_run, synth_mini, case, code, words):
    good_video = synth_mini / "test_release" / "1" / "1.avi"
    good_model = _model_dir(tiny_run)
    args = {"missing": [bad_inputs / "nope.avi", "--model", good_model],
            "garbage": [bad_inputs / "garbage.avi", "--model", good_model],
            "noface": [bad_inputs / "noface.avi", "--model", good_model],
            "unfinished": [good_video, "--model", bad_inputs / "experiments/cnn_T1_s1.8/full"],
            "fold": [good_video, "--model", bad_inputs / "experiments/cnn_T1_s1.8/fold1"],
            "nomodel": [good_video, "--model", bad_inputs / "experiments/none/full"],
            "usage": [good_video]}[case]
    out = _predict(*args)
    assert out.returncode == code, (out.returncode, out.stderr)
    assert words in out.stderr and out.stdout == ""
    if case in ("missing", "garbage", "noface"):
        assert str(args[0]) in out.stderr


def test_exit_codes_are_distinct_and_documented():
    import scripts.predict as cli
    codes = [P.EXIT_OK, P.EXIT_USAGE, P.EXIT_MISSING, P.EXIT_UNREADABLE, P.EXIT_NO_FACE,
             P.EXIT_MODEL, P.EXIT_BACKEND]
    assert len(set(codes)) == len(codes)
    for c in codes[1:]:
        assert f"{c} " in cli.__doc__


def test_iter_samples_stream_matches_direct_crops():
    """iter_samples = crop() of scale_box(window box) on each of the window's frames."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(9)]
    boxes = np.array([[10 + i, 5, 30, 30] for i in range(9)], np.int64)
    boxes[4] = -1
    wins = samples.windows(boxes, 3, 2, "keep")
    got = list(samples.iter_samples(iter(frames), wins, 3, 1.8, 16, "area"))
    assert [s for s, _ in got] == [w[0] for w in wins] == [0, 2, 4, 6]
    for (start, x), (_, box) in zip(got, wins):
        sb = samples.scale_box(box, 1.8)
        ref = np.stack([samples.crop(frames[start + t], sb, 16).transpose(2, 0, 1) for t in range(3)])
        assert x.dtype == np.uint8 and np.array_equal(x, ref)
    with pytest.raises(RuntimeError, match="ended before window"):
        list(samples.iter_samples(iter(frames[:5]), wins, 3, 1.8, 16))


@pytest.mark.slow
def test_tracking_detection_finds_the_same_faces_within_12_percent(tmp_path, synth_mini):
    """predict's default detection (--detect track) searches near the previous frame's face:
    on a 640x480 MJPG video of a moving face and on every test video of the mini set, it
    finds a face on exactly the frames the full-frame detector (data preparation's) does,
    and every box coordinate is within 12 % of that detector's face side."""
    from configs import load_config
    from data_prep import detect
    from scripts.diagnostics.bench_predict import write_face_video
    params = detect.detector_params(load_config()["detect"])   # full resolution, as the paper
    videos = [write_face_video(tmp_path / "face.avi", frames=30)]
    videos += sorted((synth_mini / "test_release").rglob("*.avi"))
    worst, frames = 0.0, 0
    for v in videos:
        full = detect.detect_video(str(v), params)
        track = detect.detect_video(str(v), params, track=True)
        a, b = full["boxes"], track["boxes"]
        assert np.array_equal(a[:, 2] > 0, b[:, 2] > 0), v
        ok = a[:, 2] > 0
        if ok.any():
            worst = max(worst, float((np.abs(a[ok] - b[ok]).max(axis=1) / a[ok, 2]).max()))
        frames += int(ok.sum())
    assert frames > 200 and worst <= 0.12, worst
