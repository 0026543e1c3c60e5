"""Score files: one row per sample, bob.pad's CSV score format plus our own columns.

Written by the deploy/scoring code (``write_scores``), read by ``make tables``
(``read_scores``). Header and columns, in this order::

    claimed_id,test_label,is_bonafide,attack_type,score,subject,video,quality,frame,label,split,dataset

* ``claimed_id``  the data set's own client id (bob.pad column; data_prep.datasets.client_id).
  CASIA-FASD: bob.db.casia_fasd's, the train folder number, the test folder number + 20
  (data_prep.casia.client_id), so that a file pooling train and test scores has one id
  per subject; Replay-Attack, MSU-MFSD and OULU-NPU number their clients globally. The
  pair (``dataset``, ``claimed_id``) is unique across data sets, so pooled files of
  several data sets never mix two people
* ``test_label``  sample key ``<split folder>/<subject>/<video>/<frame>`` (bob.pad column),
  prefixed with ``<dataset>/`` for data sets other than CASIA-FASD
* ``is_bonafide`` ``True`` for genuine, ``False`` for attacks (bob.pad's
  ``split_csv_pad`` and ``split_csv_pad_per_pai`` read this and ``attack_type``)
* ``attack_type`` ``genuine``, ``warped``, ``cut`` or ``video`` (data_prep.casia.STEMS)
* ``score``       p(y = 1 | x), the softmax output for "genuine"; ``nan`` marks a
  failure to acquire; written with 17 significant digits so it reads back exactly
* ``subject``     int, CASIA subject id (1..20 train, 1..30 test)
* ``video``       the CASIA video stem (``1``, ``2``, ``HR_1``, ... ``HR_4``)
* ``quality``     ``low``, ``normal`` or ``high`` (data_prep.casia.STEMS)
* ``frame``       index of the sample's first frame in the video (-1 for video level)
* ``label``       1 genuine, 0 attack (data_prep.casia.GENUINE / ATTACK)
* ``split``       ``train`` (validation folds), ``dev`` (a development set; ``validation``
  is read as ``dev``) or ``test``; any other name is refused
* ``dataset``     ``casia``, ``replay``, ``msu`` or ``oulu`` (data_prep.datasets; absent
  in older files: ``casia``)

Older score files (``claimed_id`` = folder number, no ``split`` column) read the same:
the reader takes the subject from ``subject``.

Label, attack type and quality are facts of the stem; ``write_scores`` fills them in
from the data set's stem table (``data_prep.datasets.stem_info``) when a row leaves
them out, and both functions refuse a row that contradicts that table.

Files are written atomically (temp file in the same folder, then rename), so a
crashed run never leaves half a score file behind.
"""
from __future__ import annotations

import csv
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Union

import numpy as np

from configs.files import atomic_path
from data_prep import datasets
from data_prep.casia import GENUINE
from eval import metrics

COLUMNS = ("claimed_id", "test_label", "is_bonafide", "attack_type", "score",
           "subject", "video", "quality", "frame", "label", "split", "dataset")


class ScoreRow(NamedTuple):
    subject: int
    video: str       # CASIA stem
    label: int       # 1 genuine, 0 attack
    attack: str      # "genuine", "warped", "cut", "video"
    quality: str     # "low", "normal", "high"
    frame: int       # first frame index of the sample; -1 for a video-level row
    score: float     # p(genuine); NaN = failure to acquire
    dataset: str = "casia"   # data_prep.datasets.NAMES


RowLike = Union[ScoreRow, Mapping]


def make_row(subject: int, video: str, frame: int, score: float, dataset: str = "casia") -> ScoreRow:
    """A row with label, attack type and quality filled in from the data set's stem table."""
    video = str(video)
    info = datasets.stem_info(datasets.check_name(dataset), video)
    return ScoreRow(int(subject), video, info.label, info.attack, info.quality,
                    int(frame), float(score), dataset)


def _check(row: ScoreRow, where: str) -> ScoreRow:
    try:
        info = datasets.stem_info(datasets.check_name(row.dataset), row.video)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if (row.label, row.attack, row.quality) != (info.label, info.attack, info.quality):
        raise ValueError(f"{where}: stem {row.video!r} is {tuple(info)}, but the row says "
                         f"label={row.label}, attack={row.attack!r}, quality={row.quality!r}")
    return row


def _as_row(r: RowLike, i: int) -> ScoreRow:
    if isinstance(r, ScoreRow):
        return _check(r, f"row {i}")
    row = make_row(r["subject"], r["video"], r.get("frame", -1), r["score"],
                   r.get("dataset", "casia"))
    given = ScoreRow(row.subject, row.video, int(r.get("label", row.label)),
                     str(r.get("attack", row.attack)), str(r.get("quality", row.quality)),
                     row.frame, row.score, row.dataset)
    return _check(given, f"row {i}")


def _ids(dataset: str, split: str, subject: int) -> tuple[int, str]:
    """(claimed_id, test_label prefix) of a row. A data set without a dev split has its
    development data in its train split (data_prep/hdf5_layout.py dev.txt)."""
    own = split if split in datasets.splits(dataset) else "train"
    folder = datasets.split_folder(dataset, own)
    prefix = f"{folder}/" if dataset == "casia" else f"{dataset}/{folder}/"
    return datasets.client_id(dataset, own, subject), prefix


def write_scores(path: str | os.PathLike, rows: Iterable[RowLike], split: str) -> Path:
    """Write score rows (ScoreRow or dicts with subject, video, frame, score[, dataset])
    of one ``split`` ("train", "dev" or "validation", "test") atomically."""
    path = Path(path)
    split = datasets.split_name(split)   # an unknown split is refused before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for i, r in enumerate(rows):
                r = _as_row(r, i)
                score = "nan" if math.isnan(r.score) else format(r.score, ".17g")
                cid, prefix = _ids(r.dataset, split, r.subject)
                w.writerow((cid, f"{prefix}{r.subject}/{r.video}/{r.frame}",
                            "True" if r.label == GENUINE else "False", r.attack, score,
                            r.subject, r.video, r.quality, r.frame, r.label, split, r.dataset))
    return path


def read_scores(path: str | os.PathLike) -> list[ScoreRow]:
    """Read a score file written by :func:`write_scores`; checks header and stems."""
    path = Path(path)
    with open(path, newline="") as f:
        rd = csv.DictReader(f)
        missing = [c for c in ("subject", "video", "frame", "score", "is_bonafide")
                   if c not in (rd.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: not a score file, missing column(s) {missing}")
        out = []
        for i, d in enumerate(rd, start=2):
            if d.get("split"):
                try:
                    datasets.split_name(d["split"])
                except ValueError as e:
                    raise ValueError(f"{path}:{i}: {e}") from None
            try:
                row = make_row(int(d["subject"]), d["video"], int(d["frame"]), float(d["score"]),
                               d.get("dataset") or "casia")
            except ValueError as e:
                raise ValueError(f"{path}:{i}: {e}") from None
            bona = d["is_bonafide"].strip().lower() == "true"
            given = ScoreRow(row.subject, row.video,
                             int(d["label"]) if d.get("label") else int(bona),
                             d.get("attack_type") or row.attack,
                             d.get("quality") or row.quality, row.frame, row.score, row.dataset)
            if bona != (given.label == GENUINE):
                raise ValueError(f"{path}:{i}: is_bonafide={d['is_bonafide']} contradicts "
                                 f"label={given.label}")
            out.append(_check(given, f"{path}:{i}"))
    return out


def video_level(rows: Iterable[ScoreRow]) -> list[ScoreRow]:
    """One row per (dataset, subject, video): the mean of the video's sample scores.

    As bob.pad's finalize-scores (mean): NaN samples are left out of the mean; a
    video whose samples are all NaN keeps a NaN score (a failure to acquire).
    ``frame`` is -1. Order: first appearance of each video."""
    groups: "OrderedDict[tuple, list]" = OrderedDict()
    for r in rows:
        groups.setdefault((r.dataset, r.subject, r.video), [r, []])[1].append(r.score)
    out = []
    for first, scores in groups.values():
        ok = metrics.scored(scores)
        mean = float(ok.mean()) if ok.size else float("nan")
        out.append(first._replace(frame=-1, score=mean))
    return out


def as_arrays(rows: Iterable[ScoreRow]) -> dict:
    """Columns as numpy arrays: subject, label, attack, quality, video, score, dataset,
    and ``client``, "<dataset>/<subject>", one key per person across data sets."""
    rows = list(rows)
    return {
        "dataset": np.array([r.dataset for r in rows], dtype=object),
        "client": np.array([f"{r.dataset}/{r.subject}" for r in rows], dtype=object),
        "subject": np.array([r.subject for r in rows], dtype=np.int64),
        "label": np.array([r.label for r in rows], dtype=np.int64),
        "attack": np.array([r.attack for r in rows], dtype=object),
        "quality": np.array([r.quality for r in rows], dtype=object),
        "video": np.array([r.video for r in rows], dtype=object),
        "score": np.array([r.score for r in rows], dtype=np.float64),
    }
