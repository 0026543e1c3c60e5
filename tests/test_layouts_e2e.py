"""End to end on rendered synthetic trees of the Replay-Attack, MSU-MFSD and OULU-NPU
layouts: generator -> loader -> Viola-Jones -> shards and lists, with a dev set as the
one validation fold (Replay, OULU) or subject folds (MSU), and a bad tree: an unreadable
video reported and skipped, an emptied split refused by name before any training."""
import json

import pytest

from configs import load_config
from data_prep import datasets, pipeline, synth_layouts
from data_prep import hdf5_layout as L
from data_prep.index import DatasetError

pytestmark = pytest.mark.slow

CLIENTS = {"replay": {"train": [1, 2], "dev": [3], "test": [9]},
           "msu": {"train": [2, 3], "test": [1]},
           "oulu": {"train": [1], "dev": [21], "test": [36]}}


def _cfg(name, protocol=""):
    cfg = load_config("tests/configs/tiny.yaml", [f"dataset.name={name}", f"dataset.protocol={protocol}",
                                                   "samples.seq_lengths=[1]", "detect.downscale=0.5",
                                                   "folds.use=1", "prep.workers=2"])
    cfg["synth"]["layouts"][name] = {"frames": 6, "clients": CLIENTS[name]}
    return cfg


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    for name in CLIENTS:
        synth_layouts.generate(synth_layouts.layout_params(_cfg(name), name), root / name,
                               workers=2, progress=False)
    return root


@pytest.mark.parametrize("name,protocol", [("replay", "print"), ("msu", ""), ("oulu", "Protocol_4_2")])
def test_layout_prepares_end_to_end(trees, tmp_path, name, protocol):
    cfg = _cfg(name, protocol)
    rep = pipeline.run(cfg, trees / name, tmp_path / "prep", progress=False, log=lambda m: None)
    assert rep["videos"]["skipped"] == 0 and not rep["extra_files"][1:]
    idx = datasets.scan(name, trees / name, protocol)
    assert rep["videos"]["indexed"] == len(idx.videos)
    lists = {w: L.read_list(L.list_file(tmp_path / "prep", 1.8, 1, w))
             for w in ("train", "test", "dev", "fold1_train", "fold1_val")}
    if datasets.has_dev(name):
        assert rep["folds"]["method"] == "dev" and rep["folds"]["folds"] == [CLIENTS[name]["dev"]]
        assert lists["fold1_val"] == lists["dev"] and lists["fold1_train"] == lists["train"]
        assert all(p.name.startswith("dev_") for p in lists["dev"])
    else:
        assert rep["folds"]["method"] == "stratified"
        assert set(lists["dev"]) == set(lists["train"])
    import h5py
    with h5py.File(lists["test"][0], "r") as f:
        assert f.attrs["dataset"] == name
        assert set(f["subject"][...]) == set(CLIENTS[name]["test"])
    if name == "oulu":     # Protocol_4_2 test: phone 2, session 3, print 2 / replay 2
        vids = json.loads((tmp_path / "prep" / "videos.json").read_text())
        assert {v["stem"] for v in vids if v["split"] == "test"} == {"2_3_1", "2_3_3", "2_3_5"}


def test_bad_and_emptied_trees(trees, tmp_path):
    import shutil
    root = tmp_path / "replay"
    shutil.copytree(trees / "replay", root)
    bad = root / "devel" / "real" / "client003_session01_webcam_authenticate_adverse_1.mov"
    bad.write_bytes(b"not a video")
    cfg = _cfg("replay", "print")
    rep = pipeline.run(cfg, root, tmp_path / "p1", progress=False, log=lambda m: None)
    assert [s["video"] for s in rep["skipped"]] == [bad.relative_to(root).as_posix()]
    for p in (root / "devel" / "real").iterdir():
        p.write_bytes(b"")
    with pytest.raises(DatasetError, match="split 'dev' \\(devel/\\) has no usable genuine video"):
        pipeline.run(cfg, root, tmp_path / "p2", progress=False, log=lambda m: None)
    assert not (tmp_path / "p2" / "s1.8_T1").exists()
