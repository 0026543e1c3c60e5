"""``SequenceData``: the nets' data layer, a Caffe Python layer over data_prep's HDF5 shards.

Why not Caffe's ``HDF5Data``: it loads one file at a time and a batch only mixes rows of
the current file and the next. data_prep groups the training shards by fold (so that a
fold's validation list is its own files), so with ``HDF5Data`` dozens of consecutive
batches come from one fold's four subjects. The paper (§3.3) trains with plain SGD
minibatches; this layer draws every minibatch uniformly over *all* samples of its list:

- ``shuffle: true`` (TRAIN): epoch ``e`` is a permutation of all N samples of the list,
  seeded by (``seed``, ``e``); batch ``i`` is positions ``[i*B, (i+1)*B)`` of the stream of
  epochs. Every sample is seen once per epoch, and batch ``i`` is a function of
  (seed, i) alone: a run resumed at iteration ``i`` (``set_iteration``) sees exactly the
  batches an uninterrupted run sees.
- ``shuffle: false`` (TEST): the list's samples in order, wrapping around.

``augment`` (TRAIN only, optional; ``solver.augment`` in the config): per clip, the
same random change to all of its T frames, so that nothing in the order of frames moves:
a horizontal flip (``flip``), a shift of up to ``shift`` pixels each way with the edge
repeated, and a brightness gain uniform in [1 - ``gain``, 1 + ``gain``]. The draws are a
function of (seed, iteration), so a resumed run sees the same batches. Without it (or
with all three off), the samples are the shards' bytes, unchanged: ``data`` is the
uint8 (B, T, 3, S, S) array as float32 (exactly what ``HDF5Data`` gives), ``label`` (B,) float32. Rows are
read through a memory map of each shard's contiguous ``data`` dataset (the OS page
cache holds what is hot), so memory stays bounded at any data set size.

Prototxt::

    layer { name: "data" type: "Python" top: "data" top: "label"
            python_param { module: "prototxt.data_layer" layer: "SequenceData"
              param_str: '{"source": "data/prep/s2.6_T1/train.txt", "batch_size": 100,
                           "shuffle": true, "seed": 1701}' } }

``source`` is a list file of data_prep's layout (``data_prep.hdf5_layout.read_list``:
entries relative to the list's folder); a relative ``source`` resolves from the folder
Caffe runs in, as ``HDF5Data``'s does. The repository root must be importable
(``.venv/bin/caffe`` and the Makefile set ``PYTHONPATH``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data_prep import hdf5_layout as L


def _h5py():
    """h5py, imported so that it binds to its own HDF5 library.

    Inside Caffe's ``caffe`` tool the process has already loaded the system HDF5 that
    libcaffe links (for HDF5Data); h5py's wheel bundles another HDF5 version, and a plain
    import resolves its symbols against the one already loaded and fails ("Not a
    datatype"). RTLD_DEEPBIND makes h5py's extension modules prefer their own library.
    In a Python process (pycaffe) this changes nothing."""
    import os
    import sys
    if "h5py" not in sys.modules and hasattr(os, "RTLD_DEEPBIND"):
        flags = sys.getdlopenflags()
        sys.setdlopenflags(os.RTLD_NOW | os.RTLD_DEEPBIND)
        try:
            import h5py  # noqa: F401
        finally:
            sys.setdlopenflags(flags)
    import h5py
    return h5py


class ShardSet:
    """Random access to the samples of a list of shards, in list order (global index)."""

    def __init__(self, shards: list[Path]):
        h5py = _h5py()
        if not shards:
            raise ValueError("ShardSet: the list names no shard")
        self.shards = [Path(s) for s in shards]
        self._maps, labels, counts, shape = [], [], [], None
        for p in self.shards:
            with h5py.File(p, "r") as f:
                d = f[L.DATA]
                if shape is None:
                    shape = d.shape[1:]
                elif d.shape[1:] != shape:
                    raise ValueError(f"{p}: samples of shape {d.shape[1:]}, but {self.shards[0]} "
                                     f"has {shape}; a list must hold one (scale, T)")
                if d.dtype != np.dtype(L.DATA_DTYPE):
                    raise ValueError(f"{p}: data is {d.dtype}, expected {L.DATA_DTYPE} (hdf5_layout)")
                off = d.id.get_offset()
                n = d.shape[0]
                labels.append(f[L.LABEL][...].astype(np.float32))
            # Contiguous, unfiltered datasets (as data_prep writes them) are memory-mapped;
            # anything else (chunked, compressed) is read through h5py.
            self._maps.append(np.memmap(p, np.uint8, "r", offset=off, shape=(n,) + shape)
                              if off is not None and n > 0 else p)
            counts.append(n)
        self.sample_shape = tuple(int(x) for x in shape)
        self.counts = np.asarray(counts, np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])
        self.labels = np.concatenate(labels)
        self.n = int(self.starts[-1])
        if self.n == 0:
            raise ValueError(f"ShardSet: no samples in {len(self.shards)} shard(s), e.g. {self.shards[0]}")

    def gather(self, idx: np.ndarray, out: np.ndarray) -> None:
        """Samples ``idx`` (global indices) into ``out`` (len(idx), *sample_shape), any dtype."""
        shard = np.searchsorted(self.starts, idx, side="right") - 1
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            rows = idx[sel] - self.starts[s]
            src = self._maps[s]
            if isinstance(src, np.memmap):
                out[sel] = src[rows]
            else:               # h5py wants increasing, unique indices
                uniq, inv = np.unique(rows, return_inverse=True)
                with _h5py().File(src, "r") as f:
                    out[sel] = f[L.DATA][uniq][inv]


def batch_indices(n: int, batch: int, iteration: int, seed: int, shuffle: bool) -> np.ndarray:
    """Global sample indices of batch ``iteration``: a function of its arguments only."""
    pos = iteration * batch + np.arange(batch, dtype=np.int64)
    if not shuffle:
        return pos % n
    epoch, off = pos // n, pos % n
    out = np.empty(batch, np.int64)
    for e in np.unique(epoch):
        perm = np.random.default_rng([int(seed), int(e)]).permutation(n)
        m = epoch == e
        out[m] = perm[off[m]]
    return out


class Augment:
    """Per-clip augmentation of a training batch (see the module docstring): one flip,
    shift and gain per clip, applied alike to its T frames."""

    KEYS = ("flip", "shift", "gain")

    def __init__(self, flip: bool, shift: int, gain: float):
        if shift < 0 or not 0 <= gain < 1:
            raise ValueError(f"SequenceData: augment needs shift >= 0 and 0 <= gain < 1; "
                             f"got shift {shift}, gain {gain}")
        self.flip, self.shift, self.gain = bool(flip), int(shift), float(gain)

    @classmethod
    def from_param(cls, p):
        if not p:
            return None
        if not isinstance(p, dict) or set(p) - set(cls.KEYS):
            raise ValueError(f"SequenceData: augment takes {list(cls.KEYS)}; got {p!r}")
        a = cls(p.get("flip", False), p.get("shift", 0), p.get("gain", 0.0))
        return a if (a.flip or a.shift or a.gain) else None

    def param(self) -> dict:
        """The ``augment`` entry of param_str that ``from_param`` reads back."""
        return {"flip": self.flip, "shift": self.shift, "gain": self.gain}

    def __call__(self, x: np.ndarray, seed: int, iteration: int) -> None:
        """Augment ``x`` (B, T, 3, S, S) float32 in place; draws from (seed, iteration)."""
        rng = np.random.default_rng([int(seed), int(iteration), 0xA06])
        b, k = x.shape[0], self.shift
        flips = rng.random(b) < 0.5
        dx, dy = rng.integers(-k, k + 1, (2, b))
        gains = rng.uniform(1 - self.gain, 1 + self.gain, b).astype(np.float32)
        s = x.shape[-1]
        for i in range(b):
            clip = x[i]
            if self.flip and flips[i]:
                clip = clip[..., ::-1]
            if k and (dx[i] or dy[i]):
                pad = np.pad(clip, ((0, 0), (0, 0), (k, k), (k, k)), mode="edge")
                clip = pad[..., k + dy[i]:k + dy[i] + s, k + dx[i]:k + dx[i] + s]
            if self.gain:
                clip = np.clip(clip * gains[i], 0, 255)
            x[i] = clip


def _caffe_layer_base():
    try:
        import caffe
        return caffe.Layer
    except ImportError:      # the index logic above is importable without Caffe
        return object


class SequenceData(_caffe_layer_base()):
    """Caffe Python layer; tops ``data`` (B, T, 3, S, S) and ``label`` (B,)."""

    def setup(self, bottom, top):
        try:
            p = json.loads(self.param_str)
        except ValueError as e:
            raise ValueError(f"SequenceData: param_str is not JSON ({e}): {self.param_str!r}")
        unknown = set(p) - {"source", "batch_size", "shuffle", "seed", "augment"}
        if unknown or "source" not in p or "batch_size" not in p:
            raise ValueError(f"SequenceData: param_str needs source and batch_size (optional: "
                             f"shuffle, seed, augment); got {sorted(p)}")
        if len(top) != 2 or bottom:
            raise ValueError("SequenceData: no bottoms and two tops (data, label)")
        self.source = Path(p["source"])
        self.batch = int(p["batch_size"])
        self.shuffle = bool(p.get("shuffle", False))
        self.seed = int(p.get("seed", 0))
        self.augment = Augment.from_param(p.get("augment"))
        self.set = ShardSet(L.read_list(self.source))
        self.iteration = 0

    def set_iteration(self, iteration: int) -> None:
        """Position the stream: the next forward delivers batch ``iteration``."""
        self.iteration = int(iteration)

    def reshape(self, bottom, top):
        top[0].reshape(self.batch, *self.set.sample_shape)
        top[1].reshape(self.batch)

    def forward(self, bottom, top):
        idx = batch_indices(self.set.n, self.batch, self.iteration, self.seed, self.shuffle)
        self.set.gather(idx, top[0].data)
        if self.augment is not None:
            self.augment(top[0].data, self.seed, self.iteration)
        top[1].data[...] = self.set.labels[idx]
        self.last_indices = idx
        self.iteration += 1

    def backward(self, top, propagate_down, bottom):
        pass
