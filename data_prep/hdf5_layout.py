"""The layout of the prepared samples on disk: stated here once, every module follows it.

Paper §4.1 (samples) and §4.3 (folds); the nets' data layer (prototxt/data_layer.py) reads
the shards.

Output tree under ``OUT`` (``python -m data_prep --out OUT``)::

    OUT/config.yaml                  resolved config of the last run
    OUT/report.json                  counts, skipped videos and why, timings
    OUT/videos.json                  video_id -> path relative to the data set root, sha256, split, ...
    OUT/detections/                  Viola-Jones cache, one .npz per (video content, detector params)
    OUT/s{scale:.1f}_T{T}/           one folder per (scale, T); present only when complete
        train_fold{k}_{NNNN}.h5      samples of the train subjects of fold k (k = 1..K)
        test_{NNNN}.h5               samples of the test subjects
        train.txt                    all train shards            } shard file names, one per
        test.txt                     all test shards             } line, relative to the list's
        fold{k}_train.txt            shards of every fold but k  } folder (read_list), so a
        fold{k}_val.txt              shards of fold k            } prepared folder can move
        dev.txt                      development data: the dev split's shards, or all train
                                     shards where the data set has no dev split
    With a development set (data_prep/datasets.py) the groups are ``train``, ``dev`` and
    ``test`` (shards ``train_NNNN.h5``, ``dev_NNNN.h5``), and there is one fold:
    fold1_train.txt = train.txt, fold1_val.txt = dev.txt.
        manifest.json                what was built and from what (used to skip up-to-date work)
        test_windows.json            per test video: the windows it has with a face in every
                                     frame, the windows built, and why the rest were dropped
                                     (written by every run, also for an up-to-date folder;
                                     the full run copies it into its fta.json)
    OUT/.building/                   work in progress; renamed into place when complete

Datasets in every shard, N samples, sample-major:

    ========  =======  ===============  ==================================================
    name      dtype    shape            meaning
    ========  =======  ===============  ==================================================
    data      uint8    (N, T, 3, H, W)  T consecutive frames (T = 1 for the CNN: the net
                                        reshapes), channels B, G, R as OpenCV decodes,
                                        H = W = samples.size, pixel values 0..255
    label     float32  (N,)             1 = genuine (bona fide), 0 = attack
    subject   int32    (N,)             subject number within its split
    stem      S8       (N,)             video stem, e.g. b"HR_2" (casia.STEMS; each data
                                        set's own short stems: data_prep/datasets.py)
    attack    S8       (N,)             b"genuine", b"warped", b"cut" or b"video"
    quality   S8       (N,)             b"low", b"normal" or b"high"
    frame     int32    (N,)             index of the sample's first frame in its video
    video_id  int32    (N,)             index into OUT/videos.json
    ========  =======  ===============  ==================================================

The nets read the shards through ``prototxt/data_layer.py`` (``SequenceData``), which
memory-maps ``data`` (written contiguous and unfiltered for that) and ``label``, gives
them as float with no transform (scaling to [0, 1] is the net's job, as with Caffe's
``HDF5Data``), and draws every training minibatch over all shards of its list. Each shard's ``dataset`` attribute names the data set (data_prep.datasets.NAMES; a
shard without it is CASIA-FASD's, as written before other data sets). Training
shards are grouped by fold (a fold's validation list is its own files) and their samples
are in a seeded random order (``hdf5.shuffle_train``); test shards keep video order.
Each shard is written to a temporary name and renamed when complete, so a file under a
final name is whole.
"""
from __future__ import annotations

from configs.grammar import combo_name, parse_split  # noqa: F401  (s<scale>_T<T>, one formatter)

import os
from pathlib import Path

# 2: list files hold names relative to their folder (1: absolute paths).
LAYOUT_VERSION = 2

DATA = "data"
LABEL = "label"
META_INT = ("subject", "frame", "video_id")      # int32 (N,)
META_STR = ("stem", "attack", "quality")         # S8 (N,)
DATA_DTYPE = "uint8"
LABEL_DTYPE = "float32"
META_INT_DTYPE = "int32"
META_STR_DTYPE = "S8"
META_STR_BYTES = 8          # the pipeline refuses a longer string instead of cutting it
DATASET_ATTR = "dataset"
DEV_GROUPS = ["train", "dev", "test"]
CHANNELS = 3
CHANNEL_ORDER = "BGR"
AXES = ("N", "T", "C", "H", "W")


def combo_dir(out: str | os.PathLike, scale: float, T: int) -> Path:
    return Path(out) / combo_name(scale, T)


def shard_name(group: str, index: int) -> str:
    """``group`` is ``test`` or ``train_fold{k}``."""
    return f"{group}_{index:04d}.h5"


def group_seed(group: str) -> int:
    """The number of a training group in its shuffle seed: fold k -> k, train 0, dev 99."""
    if group.startswith("train_fold"):
        return int(group[len("train_fold"):])
    return {"train": 0, "dev": 99}[group]


def group_names(n_folds: int) -> list[str]:
    return [f"train_fold{k}" for k in range(1, n_folds + 1)] + ["test"]


def list_names(n_folds: int) -> list[str]:
    names = ["train", "test"]
    for k in range(1, n_folds + 1):
        names += [f"fold{k}_train", f"fold{k}_val"]
    return names


TEST_WINDOWS = "test_windows.json"


def test_windows_file(out: str | os.PathLike, scale: float, T: int) -> Path:
    """Path of one (scale, T)'s record of its test videos' windows (data_prep.pipeline)."""
    return combo_dir(out, scale, T) / TEST_WINDOWS


def list_file(out: str | os.PathLike, scale: float, T: int, which: str) -> Path:
    """Path of the list file for the data layer's ``source``.

    ``which``: ``train``, ``test``, ``fold{k}_train`` or ``fold{k}_val`` (k = 1..K).
    """
    split, _, part = which.partition("_")
    if not (which in ("train", "test", "dev") or (parse_split(split) and part in ("train", "val"))):
        raise ValueError(f"list_file: which={which!r}; expected train, test, dev, fold<k>_train or fold<k>_val")
    return combo_dir(out, scale, T) / f"{which}.txt"


def read_list(list_path: str | os.PathLike) -> list[Path]:
    """The shards a list file names, in order; relative entries resolve from the list's
    folder (absolute entries, as layout 1 wrote them, are kept)."""
    list_path = Path(list_path)
    if not list_path.is_file():
        raise FileNotFoundError(f"list file not found: {list_path}. Run `make prep` with a config "
                                f"whose samples.scales and samples.seq_lengths include this scale and T")
    base = list_path.resolve().parent
    out = []
    for line in list_path.read_text().splitlines():
        if line.strip():
            p = Path(line.strip())
            out.append(p if p.is_absolute() else base / p)
    missing = [p for p in out if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{list_path} names {len(missing)} missing shard(s), e.g. {missing[0]}; "
                                f"prepare the data again (`make prep`)")
    return out
