"""Training input: minibatches mix all training subjects (SequenceData), the samples are
the prepared bytes unchanged, prepared runs can move, and only trained (scale, T) are
prepared. Real Caffe layers on a generated tree (the session's tiny_run prep)."""
from __future__ import annotations

import collections
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

caffe = pytest.importorskip("caffe", reason="pycaffe is not importable: run `make setup`")

from configs import load_config  # noqa: E402
from data_prep import hdf5_layout as L  # noqa: E402
from prototxt import generate as G  # noqa: E402
from prototxt.data_layer import batch_indices  # noqa: E402
from scripts.diagnostics import mixing# noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def _train_val(tmp_path, prep, model, T, which, batch):
    cfg = load_config(str(TINY))
    lst = L.list_file(prep, 1.8, T, which)
    return G.write_experiment_nets(cfg, model, T, lst, lst, tmp_path / f"{model}_{which}_{batch}",
                                   batch=batch)["train_val"]


@pytest.mark.parametrize("model,T,batch", [("cnn", 1, 16), ("cnn", 1, 100), ("peephole", 3, 8),
                                           ("peephole", 3, 32)])
@pytest.mark.parametrize("which", ["fold1_train", "train"])
@pytest.mark.slow
def test_minibatches_mix_all_training_subjects(tiny_run, tmp_path, model, T, batch, which):
    """Over 1,000 consecutive batches of the experiment's own TRAIN data layer: distinct
    subjects per batch >= 90 % of an i.i.d. draw, no run of > 2 batches from one fold.
    Caffe's HDF5Data on the same fold-grouped shards fails the goal."""
    tv = _train_val(tmp_path, tiny_run / "prep", model, T, which, batch)
    r = mixing.measure(tv, 1000)
    print("\n" + mixing.format_result(r))
    assert r["layer"] == "SequenceData" and r["ambiguous_samples"] == 0
    assert r["subjects"] == (5 if which == "train" else 4)
    assert r["share"] >= 0.9 and r["longest_single_fold_run"] <= 2
    old = mixing.measure(mixing.hdf5data_variant(tv, tmp_path), 1000)
    print(mixing.format_result(old))
    assert old["layer"] == "HDF5Data"
    assert old["share"] < 0.9 or old["longest_single_fold_run"] > 2


def _digest(x) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, np.uint8).tobytes()).hexdigest()


@pytest.mark.parametrize("T", [1, 3])
@pytest.mark.slow
def test_one_epoch_is_exactly_the_prepared_samples(tiny_run, tmp_path, T):
    """The layer's first epoch holds every sample of the list once, byte for byte with its
    label: the multiset equals the shards' and what Caffe's HDF5Data delivers."""
    import h5py
    tv = _train_val(tmp_path, tiny_run / "prep", "cnn" if T == 1 else "lstm", T, "train", 7)
    shards = L.read_list(L.list_file(tiny_run / "prep", 1.8, T, "train"))
    want = collections.Counter()
    for p in shards:
        with h5py.File(p, "r") as f:
            want.update((_digest(x), float(y)) for x, y in zip(f["data"][...], f["label"][...]))
    n = sum(want.values())

    def epoch(net_param):
        from caffe.proto import caffe_pb2
        only = caffe_pb2.NetParameter(layer=[mixing._train_data_layer(net_param)])
        path = tmp_path / f"only_{net_param.layer[0].type}.prototxt"
        path.write_text(str(only))
        net = caffe.Net(str(path), caffe.TRAIN)
        got = collections.Counter()
        while sum(got.values()) < n:
            net.forward()
            for x, y in zip(net.blobs["data"].data, net.blobs["label"].data):
                if sum(got.values()) < n:
                    got[(_digest(x), float(y))] += 1
        return got

    assert epoch(mixing._proto(tv)) == want
    assert epoch(mixing.hdf5data_variant(tv, tmp_path)) == want


def test_batch_order_is_a_function_of_seed_and_iteration():
    a = np.concatenate([batch_indices(103, 10, i, 5, True) for i in range(30)])
    # every epoch is a permutation: the first 103 draws are each sample once
    assert sorted(a[:103].tolist()) == list(range(103))
    assert sorted(a[103:206].tolist()) == list(range(103))
    # resuming at iteration 17 gives the same batch as reaching it
    np.testing.assert_array_equal(batch_indices(103, 10, 17, 5, True), a[170:180])
    assert not np.array_equal(batch_indices(103, 10, 17, 6, True), a[170:180])
    np.testing.assert_array_equal(batch_indices(10, 4, 3, 5, False), [2, 3, 4, 5])


@pytest.mark.slow
def test_moved_run_folder_trains(tiny_run, tmp_path):
    """Prepared data and experiments keep working after the run folder is moved."""
    a, b = tmp_path / "a" / "run", tmp_path / "b" / "moved"
    shutil.copytree(tiny_run / "prep", a / "prep")
    a.parent.rename(tmp_path / "b")
    (tmp_path / "b" / "run").rename(b)
    assert not a.exists() and (b / "prep").is_dir()
    for p in (b / "prep").glob("s*_T*/*.txt"):
        assert str(tmp_path) not in p.read_text()
    out = subprocess.run([sys.executable, "-m", "scripts.train", "--config", str(TINY), "--run", str(b),
                          "--experiment", "cnn_T1_s1.8/fold1", "--set", "solver.max_iter=2",
                          "--set", "solver.stepvalues=[]", "--set", "solver.test_interval=1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (b / "experiments" / "cnn_T1_s1.8" / "fold1" / "DONE").is_file()


def test_table_targets_prepare_only_what_they_train(tmp_path):
    """make reproduce-table1 with the paper config prepares 2 (scale, T), not 25."""
    from configs import grammar
    paper = load_config(str(ROOT / "configs" / "paper.yaml"))
    assert grammar.combos(paper, "table1") == [(1.8, 7), (2.6, 1)]
    assert len(grammar.combos(paper, "sweep")) == 25
    out = subprocess.run(["make", "-n", "--no-print-directory", "_prep_for", "OF=table1",
                          "CONFIG=configs/paper.yaml", f"RUN={tmp_path}/run",
                          f"DATASET={tmp_path}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--only 1.8:7 2.6:1" in out.stdout


@pytest.mark.slow
def test_prep_only_builds_the_requested_combinations(synth_mini, tmp_path):
    from data_prep import pipeline
    cfg = load_config(str(TINY))
    rep = pipeline.run(cfg, synth_mini, tmp_path / "prep", progress=False, log=lambda m: None,
                       only=[(1.8, 3)])
    assert rep["built"] == ["s1.8_T3"] and not (tmp_path / "prep" / "s1.8_T1").exists()
    rep = pipeline.run(cfg, synth_mini, tmp_path / "prep", progress=False, log=lambda m: None)
    assert rep["built"] == ["s1.8_T1"] and rep["up_to_date"] == ["s1.8_T3"]
    with pytest.raises(ValueError, match="s2.6_T3"):
        pipeline.run(cfg, synth_mini, tmp_path / "prep", progress=False, log=lambda m: None,
                     only=[(2.6, 3)])
    assert json.loads((tmp_path / "prep" / "report.json").read_text())["built"] == ["s1.8_T1"]


def test_shardset_gathers_across_shards_mapped_or_chunked(tmp_path):
    """Rows in any order, repeated, across a chunked+compressed shard (read through h5py)
    and a contiguous one (memory-mapped) come back exactly."""
    import h5py
    from prototxt.data_layer import ShardSet
    x = np.arange(5 * 3 * 2 * 2, dtype=np.uint8).reshape(5, 1, 3, 2, 2)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("data", data=x, chunks=(1, 1, 3, 2, 2), compression="gzip")
        f["label"] = np.zeros(5, np.float32)
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["data"] = x + 100
        f["label"] = np.ones(5, np.float32)
    s = ShardSet([tmp_path / "a.h5", tmp_path / "b.h5"])
    assert not isinstance(s._maps[0], np.memmap) and isinstance(s._maps[1], np.memmap)
    idx = np.array([3, 1, 3, 7, 9, 7, 0])
    out = np.empty((len(idx), 1, 3, 2, 2), np.float32)
    s.gather(idx, out)
    np.testing.assert_array_equal(out, np.concatenate([x, x + 100])[idx].astype(np.float32))
    np.testing.assert_array_equal(s.labels[idx], [0, 0, 0, 1, 1, 1, 0])


# --------------------------------------------------------------------------- augmentation
def _clips(b=6, T=5, S=12, seed=0):
    """Random clips below 200, so a gain <= 1.2 never reaches the clip at 255."""
    return np.random.default_rng(seed).integers(0, 200, (b, T, 3, S, S)).astype(np.float32)


def test_augment_changes_every_frame_of_a_clip_alike_and_keeps_their_order():
    from prototxt.data_layer import Augment
    x = _clips(b=40)
    y = x.copy()
    Augment(flip=True, shift=2, gain=0.2)(y, seed=3, iteration=7)
    assert not np.array_equal(x, y)                     # it does something
    for i in range(len(x)):
        # the transform of clip i, recovered from its first frame, maps every frame:
        # the same flip/shift/gain for all T, so the order of frames is the stored one
        best = None
        for flip in (False, True):
            src = x[i, ..., ::-1] if flip else x[i]
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    pad = np.pad(src, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
                    cand = pad[..., 2 + dy:2 + dy + 12, 2 + dx:2 + dx + 12]
                    g = (y[i, 0] * cand[0]).sum() / max((cand[0] ** 2).sum(), 1e-9)
                    err = np.abs(np.clip(cand * g, 0, 255) - y[i]).max()
                    if best is None or err < best[0]:
                        best = (err, flip, dy, dx, g)
        assert best[0] < 1e-2, f"clip {i}: no single flip/shift/gain maps all its frames"
        assert 0.8 - 1e-6 <= best[4] <= 1.2 + 1e-6


def test_augment_is_a_function_of_seed_and_iteration_and_off_changes_nothing():
    from prototxt.data_layer import Augment
    x = _clips()
    a, b, c = x.copy(), x.copy(), x.copy()
    Augment(True, 2, 0.2)(a, seed=1, iteration=4)
    Augment(True, 2, 0.2)(b, seed=1, iteration=4)
    Augment(True, 2, 0.2)(c, seed=1, iteration=5)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert Augment.from_param(None) is None
    assert Augment.from_param({"flip": False, "shift": 0, "gain": 0.0}) is None
    with pytest.raises(ValueError, match="augment takes"):
        Augment.from_param({"flip": True, "rotate": 5})
    with pytest.raises(ValueError, match="shift >= 0"):
        Augment.from_param({"shift": -1})


def test_augment_enters_the_training_layer_only_when_on():
    cfg = load_config()
    off = G.net_param(cfg, "cnn", 1, "tr.txt", "va.txt")
    assert all("augment" not in l.python_param.param_str for l in off.layer if l.type == "Python")
    cfg["solver"]["augment"] = {"flip": True, "shift": 2, "gain": 0.2}
    on = G.net_param(cfg, "cnn", 1, "tr.txt", "va.txt")
    params = {l.name: json.loads(l.python_param.param_str) for l in on.layer if l.type == "Python"}
    assert params["data"]["augment"] == {"flip": True, "shift": 2, "gain": 0.2}
    assert "augment" not in params["data_test"]          # validation data is never changed
