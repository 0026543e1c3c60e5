"""Real Caffe reads the list files data_prep writes (hdf5_layout.py): the nets' data layer
(prototxt/data_layer.py, a Caffe Python layer) from anywhere, and Caffe's own HDF5Data
from the list's folder (the entries are relative to it)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from configs import load_config
from data_prep import hdf5_layout as L, pipeline

try:
    import caffe
    from caffe import layers as Lc
    from caffe.proto import caffe_pb2
    CAFFE = None
except Exception as e:                                  # pragma: no cover - depends on the build
    CAFFE = f"pycaffe does not import ({e.__class__.__name__}: {e}); run `make setup`"

pytestmark = pytest.mark.skipif(CAFFE is not None, reason=CAFFE or "")


@pytest.fixture(scope="module")
def small_prep(synth_mini, tmp_path_factory):
    src = Path(synth_mini)
    # two train subjects (CASIA folds 1 and 2) and one test subject keep detection short
    root = tmp_path_factory.mktemp("caffe") / "data"
    for rel in ("train_release/10", "train_release/8", "test_release/1"):
        for p in (src / rel).glob("*.avi"):
            q = root / rel / p.name
            q.parent.mkdir(parents=True, exist_ok=True)
            q.symlink_to(p)
    (root / "test_release").mkdir(exist_ok=True)
    out = root.parent / "out"
    cfg = load_config(None, ["samples.scales=[1.8]", "samples.seq_lengths=[1,5]", "folds.use=2"])
    pipeline.run(cfg, root, out, progress=False, log=lambda m: None)
    return out


def _net(tmp_path, source, batch, layer):
    if layer == "HDF5Data":
        n = caffe.NetSpec()
        n.data, n.label = Lc.HDF5Data(source=str(source), batch_size=batch, ntop=2)
        text = str(n.to_proto())
    else:
        from prototxt import generate as G
        text = str(caffe_pb2.NetParameter(layer=[G.data_layer(source, batch, False, 1, caffe.TEST)]))
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    return caffe.Net(str(p), caffe.TEST)


@pytest.mark.parametrize("layer", ["SequenceData", "HDF5Data"])
@pytest.mark.parametrize("T,which", [(1, "test"), (5, "fold1_val"), (5, "train")])
@pytest.mark.slow
def test_caffe_reads_list_file(small_prep, tmp_path, T, which, layer, monkeypatch):
    lf = L.list_file(small_prep, 1.8, T, which)
    shards = L.read_list(lf)
    assert shards and all(not Path(x).is_absolute() for x in lf.read_text().split())
    with h5py.File(shards[0], "r") as f:
        data, label = f["data"][()], f["label"][()]
    batch = min(8, len(label))
    if layer == "HDF5Data":          # it opens names from the folder it runs in
        monkeypatch.chdir(lf.parent)
    net = _net(tmp_path, lf, batch, layer)
    net.forward()
    assert net.blobs["data"].data.shape == (batch, T, 3, 128, 128)
    assert net.blobs["label"].data.shape == (batch,)
    # no shuffle: the first batch is the first samples of the first shard, as float
    np.testing.assert_array_equal(net.blobs["label"].data, label[:batch])
    np.testing.assert_array_equal(net.blobs["data"].data, data[:batch].astype(np.float32))
    assert set(np.unique(net.blobs["label"].data)) <= {0.0, 1.0}
