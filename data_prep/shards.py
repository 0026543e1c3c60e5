"""Writing HDF5 shards in the layout of ``hdf5_layout`` (the only module that writes them)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import h5py
import numpy as np

from data_prep import hdf5_layout as L
from configs.files import atomic_path

CHUNK = 64  # samples copied per write


def sample_bytes(T: int, size: int) -> int:
    return T * L.CHANNELS * size * size


def split_counts(n: int, T: int, size: int, shard_mb: float) -> list[int]:
    """Sizes of the shards of a group of ``n`` samples: as even as possible, none above the cap."""
    if n == 0:
        return []
    per = max(1, int(shard_mb * 2**20) // sample_bytes(T, size))
    k = math.ceil(n / per)
    return [len(a) for a in np.array_split(np.arange(n), k)]


def write_shard(job: dict) -> str:
    """Write one shard to a temporary name, rename it when complete.

    job: ``dest``, ``T``, ``size``, ``sources`` [(staging path, n samples)], ``picks``
    int (N, 2) of (source, sample within source), ``meta`` {name: array (N,)},
    ``dataset`` the data set's name (the shard's ``dataset`` attribute).
    """
    dest = Path(job["dest"])
    T, size = job["T"], job["size"]
    shape = (T, L.CHANNELS, size, size)
    srcs = []
    for p, n in job["sources"]:
        got = os.path.getsize(p)
        if got != n * sample_bytes(T, size):
            raise RuntimeError(f"staging file {p}: {got} bytes, expected {n} samples")
        srcs.append(np.memmap(p, np.uint8, "r", shape=(n,) + shape))
    picks = np.asarray(job["picks"])
    N = len(picks)
    try:
        with atomic_path(dest) as tmp, h5py.File(tmp, "w") as f:
            d = f.create_dataset(L.DATA, (N,) + shape, dtype=L.DATA_DTYPE, track_times=False)
            for i in range(0, N, CHUNK):
                blk = picks[i:i + CHUNK]
                d[i:i + len(blk)] = np.stack([srcs[s][j] for s, j in blk])
            f.create_dataset(L.LABEL, data=np.asarray(job["meta"][L.LABEL], L.LABEL_DTYPE),
                             track_times=False)
            for name in L.META_INT:
                f.create_dataset(name, data=np.asarray(job["meta"][name], L.META_INT_DTYPE),
                                 track_times=False)
            for name in L.META_STR:
                f.create_dataset(name, data=np.asarray(job["meta"][name], L.META_STR_DTYPE),
                                 track_times=False)
            f.attrs["layout_version"] = L.LAYOUT_VERSION
            f.attrs[L.DATASET_ATTR] = job.get("dataset", "casia")
            f.attrs["axes"] = ",".join(L.AXES)
            f.attrs["channel_order"] = L.CHANNEL_ORDER
    finally:
        del srcs
    return str(dest)
