"""Caffe plumbing shared by training, scoring and prediction: the mode (CPU or a checked
GPU), glog's output redirected into a file, the prepared shards read in batches, and
p(genuine) from a deploy net's output (paper §4.4: the score is p(y = 1 | x)).
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from configs.errors import TrainingError
from data_prep import hdf5_layout as layout


def caffe_mode(gpu: int | None):
    import caffe
    if gpu is None:
        caffe.set_mode_cpu()
    else:
        # Without a usable GPU, Caffe would abort the process in a CUDA CHECK: ask first.
        from scripts.training.gpu import require_gpu
        require_gpu(int(gpu))
        caffe.set_device(int(gpu))
        caffe.set_mode_gpu()
    return caffe


@contextlib.contextmanager
def caffe_log_to(path: Path):
    """Send the process's fd 2 (where glog writes) to ``path``; yield a console stream."""
    sys.stderr.flush()
    saved = os.dup(2)
    console = os.fdopen(os.dup(saved), "w", buffering=1)
    log = open(path, "ab", buffering=0)
    os.dup2(log.fileno(), 2)
    try:
        yield console
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        log.close()
        console.flush()
        console.close()


def read_list(list_path: Path) -> list[Path]:
    try:
        return layout.read_list(list_path)
    except FileNotFoundError as e:
        raise TrainingError(str(e)) from None


# What scoring keeps of each sample: the shard's columns, and the data set it names
# (its ``dataset`` attribute; CASIA-FASD for shards written before there were others).
META_KEYS = ("subject", "stem", "frame", "dataset")


def iter_shards(shards: list[Path], batch: int):
    """Yield (data uint8 (B,T,3,H,W), label, meta dict) batches in list order."""
    import h5py
    for shard in shards:
        with h5py.File(shard, "r") as f:
            n = f[layout.LABEL].shape[0]
            meta = {k: f[k][...] for k in ("subject", "stem", "frame")}
            name = f.attrs.get(layout.DATASET_ATTR, "casia")
            meta["dataset"] = np.full(n, name.decode() if isinstance(name, bytes) else str(name), "U8")
            for a in range(0, n, batch):
                b = min(n, a + batch)
                yield (f[layout.DATA][a:b], f[layout.LABEL][a:b],
                       {k: v[a:b] for k, v in meta.items()})


def genuine_prob(out: dict, n: int) -> np.ndarray:
    """p(genuine) from a deploy net's outputs: ``p_genuine`` (N, 1), or column 1 of the
    softmax ``prob`` (N, 2); label 1 = genuine (data_prep.casia)."""
    if "p_genuine" in out:
        return np.asarray(out["p_genuine"]).reshape(n).astype(np.float64)
    return np.asarray(out["prob"]).reshape(n, -1)[:, 1].astype(np.float64)


def predict_shards(net, shards: list[Path], batch: int):
    """p(genuine) for every sample of ``shards`` through a deploy ``net``.

    Returns (scores float64 (N,), labels int (N,), meta dict of arrays)."""
    scores, labels, metas = [], [], []
    for data, label, meta in iter_shards(shards, batch):
        net.blobs["data"].reshape(*data.shape)
        net.blobs["data"].data[...] = data
        scores.append(genuine_prob(net.forward(), len(data)))
        labels.append(label.astype(np.int64))
        metas.append(meta)
    if not scores:
        raise TrainingError(f"no samples in {len(shards)} shard(s): {shards[:3]}")
    meta = {k: np.concatenate([m[k] for m in metas]) for k in metas[0]}
    return np.concatenate(scores), np.concatenate(labels), meta


def score_rows(scores, meta):
    names = meta["dataset"] if "dataset" in meta else ["casia"] * len(scores)
    return [{"subject": int(s), "video": v.decode() if isinstance(v, bytes) else str(v),
             "frame": int(fr), "score": float(sc), "dataset": str(d)}
            for s, v, fr, sc, d in zip(meta["subject"], meta["stem"], meta["frame"], scores, names)]
