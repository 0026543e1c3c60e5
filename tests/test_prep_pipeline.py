"""data_prep end to end on the synthetic ``mini`` set: HDF5 output, bad videos, resume, reruns."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from configs import load_config
from data_prep import casia, hdf5_layout as L, pipeline, samples
from data_prep.util import OutputError

REPO = Path(__file__).resolve().parents[1]
SCALES = [1.0, 1.4, 1.8, 2.2, 2.6]
TS = [1, 3, 5, 7, 9]


@pytest.fixture(scope="module")
def prep(synth_mini, tmp_path_factory):
    """All 25 (scale, T) of the mini set, default config, written once for this module."""
    out = tmp_path_factory.mktemp("prep") / "out"
    cfg = load_config(None)
    t = time.perf_counter()
    report = pipeline.run(cfg, synth_mini, out, progress=False, log=lambda m: None)
    return {"root": Path(synth_mini), "out": out, "report": report, "cfg": cfg,
            "seconds": time.perf_counter() - t}


def _read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


def _combo_digest(d: Path) -> dict:
    """sha256 of every dataset of every shard, and list files by shard name."""
    out = {}
    for p in sorted(d.glob("*.h5")):
        with h5py.File(p, "r") as f:
            out[p.name] = {k: hashlib.sha256(f[k][()].tobytes()).hexdigest() for k in f}
    for p in sorted(d.glob("*.txt")):
        out[p.name] = [Path(x).name for x in p.read_text().split()]
    return out


@pytest.mark.slow
def test_all_25_combinations_shapes_dtypes_labels(prep):
    out, rep = prep["out"], prep["report"]
    assert sorted(rep["built"]) == sorted(L.combo_name(s, T) for s in SCALES for T in TS)
    assert rep["videos"]["usable"] == rep["videos"]["indexed"] > 0 and rep["skipped"] == []
    for s in SCALES:
        for T in TS:
            d = L.combo_dir(out, s, T)
            groups = rep["samples"][L.combo_name(s, T)]["groups"]
            for g in L.group_names(5):
                shards_ = sorted(d.glob(f"{g}_*.h5"))
                n_gen = n_att = 0
                for p in shards_:
                    x = _read(p)
                    N = len(x["label"])
                    assert x["data"].shape == (N, T, 3, 128, 128) and x["data"].dtype == np.uint8
                    assert x["label"].dtype == np.float32 and x["label"].shape == (N,)
                    for k in L.META_INT:
                        assert x[k].dtype == np.int32 and x[k].shape == (N,)
                    for k in L.META_STR:
                        assert x[k].dtype == np.dtype("S8") and x[k].shape == (N,)
                    n_gen += int((x["label"] == 1).sum())
                    n_att += int((x["label"] == 0).sum())
                assert groups[g] == {"genuine": n_gen, "attack": n_att}
                # 3 genuine : 9 attack videos per subject, windows per video equal in mini
                assert n_att == pytest.approx(3 * n_gen, abs=3), (s, T, g)
                assert n_gen > 0


@pytest.mark.slow
def test_metadata_traces_each_sample_to_its_video(prep):
    out, root = prep["out"], prep["root"]
    videos = json.loads((out / "videos.json").read_text())
    x = _read(L.combo_dir(out, 1.8, 3) / "train_fold2_0000.h5")
    assert len(set(x["video_id"].tolist())) > 3       # shuffled train shard mixes videos
    for i in (0, len(x["label"]) // 2, len(x["label"]) - 1):
        v = videos[x["video_id"][i]]
        assert v["split"] == "train" and v["subject"] == x["subject"][i] == 8   # CASIA fold 2 = {8,13,18,19}
        info = casia.STEMS[x["stem"][i].decode()]
        assert v["stem"] == x["stem"][i].decode()
        assert (info.label, info.attack, info.quality) == (x["label"][i], x["attack"][i].decode(),
                                                           x["quality"][i].decode())
        # recompute the sample from the video and the cached boxes
        det = np.load(next((out / "detections").glob(v["sha256"] + "_*.npz")))
        t0 = int(x["frame"][i])
        box = samples.scale_box(samples.min_box(det["boxes"][t0:t0 + 3]), 1.8)
        cap = cv2.VideoCapture(str(root / v["video"]))
        frames = [cap.read()[1] for _ in range(t0 + 3)][t0:]
        want = np.stack([samples.crop(f, box, 128).transpose(2, 0, 1) for f in frames])
        np.testing.assert_array_equal(x["data"][i], want)


@pytest.mark.slow
def test_list_files_and_fold_disjointness(prep):
    out = prep["out"]
    folds = prep["report"]["folds"]["folds"]
    assert folds == [[10], [8], [1], [4], [2]]              # mini: one subject of each CASIA fold
    test_subjects = set(prep["report"]["folds"]["test_subjects"])
    for s, T in ((1.0, 1), (2.6, 9)):
        lf = {w: L.read_list(L.list_file(out, s, T, w)) for w in L.list_names(5)}
        for w, paths in lf.items():     # names relative to the list's folder: the folder can move
            assert L.list_file(out, s, T, w).read_text().split() == [p.name for p in paths]
            assert all(p.parent == L.combo_dir(out, s, T).resolve() and p.exists() for p in paths)
        assert set(lf["train"]).isdisjoint(lf["test"])
        subj_of = {}
        for k in range(1, 6):
            val, tr = set(lf[f"fold{k}_val"]), set(lf[f"fold{k}_train"])
            assert val and val.isdisjoint(tr) and val | tr == set(lf["train"])
            subj = set()
            for p in val:
                subj |= set(_read(p)["subject"].tolist())
            assert subj == set(folds[k - 1])
            for sj in subj:
                assert subj_of.setdefault(sj, k) == k          # no subject in two folds
        assert set(_read(lf["test"][0])["subject"].tolist()) <= test_subjects


@pytest.mark.slow
def test_rerun_does_nothing_in_seconds(prep, capsys):
    t = time.perf_counter()
    rep = pipeline.run(prep["cfg"], prep["root"], prep["out"], progress=False)
    assert time.perf_counter() - t < 5
    assert rep["built"] == [] and len(rep["up_to_date"]) == 25
    assert rep["detection"]["videos_detected_now"] == 0
    assert "nothing to do" in capsys.readouterr().out


def _run_cli(args, kill_at=None, timeout=300):
    env = dict(os.environ)
    env.pop("DATA_PREP_KILL_AT", None)
    if kill_at:
        env["DATA_PREP_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "data_prep", "--no-progress", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


def _no_partial_visible(out: Path):
    for d in out.glob("s*_T*"):
        assert (d / "manifest.json").exists(), f"{d} visible but incomplete"
    for p in out.rglob("*.h5"):                            # every final-named shard is whole
        with h5py.File(p, "r") as f:
            assert f["data"].shape[0] == f["label"].shape[0] > 0


@pytest.mark.parametrize("kill_at", ["detect:30", "stage:20", "shard:3", "combo:1"])
@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted(prep, tmp_path, kill_at):
    out = tmp_path / "out"
    sets = ["--set", "samples.scales=[1.8,2.6]", "--set", "samples.seq_lengths=[1,5]"]
    if not kill_at.startswith("detect"):
        # reuse the module's detections: this case is about samples and shards
        sets += ["--set", f"prep.cache_dir={prep['out'] / 'detections'}"]
    r = _run_cli(["--dataset", str(prep["root"]), "--out", str(out), *sets], kill_at=kill_at)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    _no_partial_visible(out)
    n_cached = len(list((out / "detections").glob("*.npz")))
    r = _run_cli(["--dataset", str(prep["root"]), "--out", str(out), *sets])
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((out / "report.json").read_text())
    if kill_at.startswith("detect"):
        assert 30 <= n_cached < rep["videos"]["indexed"]
        assert rep["detection"]["videos_detected_now"] == rep["videos"]["indexed"] - n_cached
    else:
        assert rep["detection"]["videos_detected_now"] == 0
    assert not (out / ".building").exists()
    for s in (1.8, 2.6):
        for T in (1, 5):
            assert _combo_digest(L.combo_dir(out, s, T)) == _combo_digest(L.combo_dir(prep["out"], s, T))
    if kill_at == "shard:3":
        # a new scale builds only what is new
        r = _run_cli(["--dataset", str(prep["root"]), "--out", str(out), *sets,
                      "--set", "samples.scales=[1.8,2.6,1.0]"])
        assert r.returncode == 0, r.stderr[-2000:]
        rep = json.loads((out / "report.json").read_text())
        assert sorted(rep["built"]) == ["s1.0_T1", "s1.0_T5"]
        assert sorted(rep["up_to_date"]) == ["s1.8_T1", "s1.8_T5", "s2.6_T1", "s2.6_T5"]


def _link_tree(src: Path, dst: Path):
    for p in src.rglob("*.avi"):
        q = dst / p.relative_to(src)
        q.parent.mkdir(parents=True, exist_ok=True)
        q.symlink_to(p)


@pytest.mark.slow
def test_corrupt_zero_frame_truncated_and_faceless_videos(prep, tmp_path):
    root = tmp_path / "data"
    _link_tree(prep["root"], root)
    bad = {
        "train_release/10/HR_4.avi": "corrupt",
        "test_release/1/8.avi": "zero",
        "train_release/8/5.avi": "truncated",
        "test_release/2/3.avi": "noface",
    }
    for rel, kind in bad.items():
        p = root / rel
        src = p.resolve()
        p.unlink()
        if kind == "corrupt":
            p.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
        elif kind == "zero":
            w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 15, (320, 240))
            w.release()
            if not p.exists():
                p.write_bytes(b"")
        elif kind == "truncated":
            b = src.read_bytes()
            p.write_bytes(b[: len(b) // 2])
        elif kind == "noface":
            w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 15, (320, 240))
            for i in range(5):
                w.write(np.full((240, 320, 3), 40 * i, np.uint8))
            w.release()
    (root / "train_release" / "10" / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    r = _run_cli(["--dataset", str(root), "--out", str(out), "--set", "samples.scales=[1.8]",
                  "--set", "samples.seq_lengths=[1,3]",
                  "--set", f"prep.cache_dir={prep['out'] / 'detections'}"])
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((out / "report.json").read_text())
    skipped = {s["video"]: s["reason"] for s in rep["skipped"]}
    assert set(skipped) == {"train_release/10/HR_4.avi", "test_release/1/8.avi", "test_release/2/3.avi"}
    assert "no face" in skipped["test_release/2/3.avi"]
    for v in ("train_release/10/HR_4.avi", "test_release/1/8.avi"):
        assert "cannot open" in skipped[v] or "zero frames" in skipped[v]
        assert f"skipped {v}" in r.stdout
    assert any(w.startswith("train_release/8/5.avi: truncated") for w in rep["warnings"])
    assert rep["extra_files"] == ["train_release/10/notes.txt"]
    assert rep["videos"]["usable"] == rep["videos"]["indexed"] - 3
    vids = {v["video"]: v["video_id"] for v in json.loads((out / "videos.json").read_text())}
    ids = set()
    for p in (out / "s1.8_T1").glob("*.h5"):
        ids |= set(_read(p)["video_id"].tolist())
    assert not ids & {vids[v] for v in skipped} and vids["train_release/8/5.avi"] in ids


def test_nothing_usable_is_an_error(tmp_path):
    root = tmp_path / "data"
    for split in ("train_release", "test_release"):
        (root / split / "1").mkdir(parents=True)
    (root / "train_release" / "1" / "1.avi").write_bytes(b"\0" * 1000)
    r = _run_cli(["--dataset", str(root), "--out", str(tmp_path / "out")])
    assert r.returncode == 2 and "nothing usable" in r.stderr and "train_release/1/1.avi" in r.stderr


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _run_cli(["--dataset", str(tmp_path), "--out", str(blocker / "out")])
    assert r.returncode == 2 and "cannot write" in r.stderr and str(blocker) in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_disk_full_leaves_earlier_outputs_untouched(prep, tmp_path, monkeypatch):
    out = tmp_path / "out"
    base = [f"prep.cache_dir={prep['out'] / 'detections'}", "prep.workers=1",
            "samples.seq_lengths=[1]"]
    cfg = load_config(None, base + ["samples.scales=[1.8]"])
    pipeline.run(cfg, prep["root"], out, progress=False, log=lambda m: None)
    before = _combo_digest(out / "s1.8_T1")
    import h5py as h5

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(h5, "File", full)
    cfg = load_config(None, base + ["samples.scales=[1.8,2.2]", "samples.size=64"])
    with pytest.raises(OutputError, match="disk full"):
        pipeline.run(cfg, prep["root"], out, progress=False, log=lambda m: None)
    monkeypatch.undo()
    assert _combo_digest(out / "s1.8_T1") == before
    assert not (out / "s2.2_T1").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


@pytest.mark.slow
def test_partial_copy_with_empty_folds_stops_before_any_shard(synth_mini, tmp_path):
    """A copy with train subjects 1, 2 and 4 only: the public folds leave folds 1 and 2
    (subjects 10 and 8 in the mini set) empty. Preparation stops with one message naming
    them and the keys to change, before writing any sample, so nothing is trained on it."""
    root = tmp_path / "partial"
    for split, subs in (("train_release", ("1", "2", "4")), ("test_release", ("1",))):
        for s in subs:
            (root / split / s).mkdir(parents=True)
            for v in (Path(synth_mini) / split / s).glob("*.avi"):
                (root / split / s / v.name).symlink_to(v)
    out = tmp_path / "out"
    r = _run_cli(["--dataset", str(root), "--out", str(out), "--only", "1.8:1"])
    assert r.returncode == 2, r.stderr[-2000:]
    assert "folds 1 and 2 of 5 would have no train subject" in r.stderr
    assert "folds.method: stratified" in r.stderr and "Traceback" not in r.stderr
    assert not list(out.glob("s*_T*/*.h5")) and not (out / "s1.8_T1").exists()
    # what the message says to do works
    r = _run_cli(["--dataset", str(root), "--out", str(out), "--only", "1.8:1",
                  "--set", "folds.method=stratified", "--set", "folds.count=3",
                  "--set", "folds.use=3"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert all((out / "s1.8_T1" / f"fold{k}_val.txt").read_text().split() for k in (1, 2, 3))
