"""MSU-MFSD (MSU Mobile Face Spoofing Database): layout, labels, clients, stated once.

Wen, Han and Jain, IEEE TIFS 2015. Facts from the public bob.db.msu_mfsd_mod package:
``folds/msu_mfsd_mod_realvids.txt`` and ``..._attackvids.txt`` (file naming, 70 real
and 210 attack videos), ``folds/train_sub_list.txt`` and ``folds/test_sub_list.txt``
(the published subject-wise split: 15 train, 20 test clients).

Layout (as distributed)::

    <root>/scene01/real/real_client<ID>_<device>_SD_scene01.<ext>
    <root>/scene01/attack/attack_client<ID>_<device>_SD_<attack>_scene01.<ext>
    <root>/train_sub_list.txt, <root>/test_sub_list.txt   (optional here; checked if present)

Devices: ``laptop`` (MacBook Air camera, ``.mov``) and ``android`` (Nexus 5, ``.mp4``).
Attacks: ``ipad_video`` (HD video replayed on an iPad), ``iphone_video`` (video on an
iPhone 5S), ``printed_photo`` (a printed HD photo). Per client: 2 real, 6 attacks.

Short names (8 bytes, data_prep/hdf5_layout.py): ``attack`` holds ``ipad``,
``iphone``, ``print``; ``quality`` holds the capture device, ``android`` or ``laptop``.
Stems: ``<d><kind>``, d = ``an`` / ``la``, kind ``r`` (real), ``ip``, ``ih``, ``pp``
(``laip``: laptop, iPad video). MSU-MFSD has no development set: model selection uses
subject-wise folds of the train clients (data_prep/folds.py, stratified).
"""
from __future__ import annotations

import re

from data_prep.casia import ATTACK, GENUINE, StemInfo

NAME = "msu"
TITLE = "MSU-MFSD"
SPLITS = {"train": "scene01", "test": "scene01"}      # one folder; the split is the client
CLIENTS = {"train": (2, 3, 5, 6, 7, 8, 9, 11, 12, 21, 22, 34, 53, 54, 55),
           "test": (1, 13, 14, 23, 24, 26, 28, 29, 30, 32, 33, 35, 36, 37, 39, 42, 48, 49, 50, 51)}
SUB_LISTS = {"train": "train_sub_list.txt", "test": "test_sub_list.txt"}
DEVICES = {"an": ("android", ".mp4"), "la": ("laptop", ".mov")}
KINDS = {"ip": ("ipad", "ipad_video"), "ih": ("iphone", "iphone_video"),
         "pp": ("print", "printed_photo")}
ATTACK_TYPES = tuple(k[0] for k in KINDS.values())
QUALITIES = tuple(d[0] for d in DEVICES.values())
PROTOCOLS = {"grandtest": ATTACK_TYPES}
DEFAULT_PROTOCOL = "grandtest"

_REAL = re.compile(r"^real_client(\d{3})_(android|laptop)_SD_scene01$")
_ATTACK = re.compile(r"^attack_client(\d{3})_(android|laptop)_SD_(ipad_video|iphone_video|printed_photo)_scene01$")


def split_of(client: int):
    for split, ids in CLIENTS.items():
        if client in ids:
            return split
    return None


def stems() -> list[str]:
    return [f"{d}r" for d in DEVICES] + [f"{d}{k}" for d in DEVICES for k in KINDS]


def _info(stem: str) -> StemInfo:
    dev = DEVICES[stem[:2]][0]
    if stem[2:] == "r":
        return StemInfo(GENUINE, "genuine", dev)
    return StemInfo(ATTACK, KINDS[stem[2:]][0], dev)


_STEMS = {s: _info(s) for s in stems()}


def stem_info(stem: str) -> StemInfo:
    if stem not in _STEMS:
        raise ValueError(f"unknown MSU-MFSD stem {stem!r}; known: {sorted(_STEMS)}")
    return _STEMS[stem]


def file_name(split: str, client: int, stem: str) -> str:
    dev, ext = DEVICES[stem[:2]]
    if stem[2:] == "r":
        return f"scene01/real/real_client{client:03d}_{dev}_SD_scene01{ext}"
    return f"scene01/attack/attack_client{client:03d}_{dev}_SD_{KINDS[stem[2:]][1]}_scene01{ext}"


def parse(rel: str):
    """(split, client, stem) of a path relative to the root; None if not an MSU-MFSD
    video name. The split of a client outside both published lists is None (the
    index reports it)."""
    parts = rel.split("/")
    if len(parts) != 3 or parts[0] != "scene01" or parts[1] not in ("real", "attack"):
        return None
    base, _, ext = parts[2].rpartition(".")
    code = {"android": "an", "laptop": "la"}
    if parts[1] == "real":
        m = _REAL.match(base)
        if not m:
            return None
        client, stem = int(m.group(1)), code[m.group(2)] + "r"
    else:
        m = _ATTACK.match(base)
        if not m:
            return None
        kind = {v[1]: k for k, v in KINDS.items()}[m.group(3)]
        client, stem = int(m.group(1)), code[m.group(2)] + kind
    if "." + ext != DEVICES[stem[:2]][1]:
        return None
    return split_of(client), client, stem


def in_protocol(protocol: str, split: str, stem: str) -> bool:
    info = stem_info(stem)
    return info.label == GENUINE or info.attack in PROTOCOLS[protocol]


def client_id(split: str, subject: int) -> int:
    """MSU-MFSD's client ids are global (1..55, 35 of them used)."""
    if split not in SPLITS:
        raise ValueError(f"unknown MSU-MFSD split {split!r}; known: {sorted(SPLITS)}")
    return int(subject)
