"""OULU-NPU: layout, labels, users and the four protocols, stated here once.

Boulkenafet et al., FG 2017. Facts from the database's documentation and the public
bob.db.oulunpu package, whose ``lists/Protocol_*/{train,dev,eval}`` files the rules
below reproduce file for file (checked when this module was written: the same video
set for each of the 14 protocols, Protocol_1 to Protocol_4_6; bob's two extra
session variants Protocol_1_2 and Protocol_1_3 are not the database's and are left out).

Layout (as distributed)::

    <root>/Train_files/<P>_<S>_<UU>_<F>.avi     users 01-20
    <root>/Dev_files/<P>_<S>_<UU>_<F>.avi       users 21-35
    <root>/Test_files/<P>_<S>_<UU>_<F>.avi      users 36-55

P = phone 1-6 (Samsung Galaxy S6 edge, HTC Desire EYE, MEIZU X5, ASUS Zenfone Selfie,
Sony XPERIA C5 Ultra Dual, OPPO N3), S = session 1-3 (illumination and background),
UU = user, F = 1 real, 2 print 1, 3 print 2, 4 video replay 1, 5 video replay 2.
Per user: 6 x 3 x 5 = 90 videos.

Protocols (which videos each split keeps):

* ``Protocol_1`` (illumination): train and dev sessions 1, 2; test session 3.
* ``Protocol_2`` (attack instruments): train and dev print 1, replay 1 (F 1, 2, 4);
  test print 2, replay 2 (F 1, 3, 5).
* ``Protocol_3_k`` (camera, leave phone k out), k = 1..6: train and dev the other
  five phones; test phone k.
* ``Protocol_4_k`` (all three): train and dev the other five phones, sessions 1, 2,
  F 1, 2, 4; test phone k, session 3, F 1, 3, 5.

Short names (8 bytes): ``attack`` holds ``print1``, ``print2``, ``replay1``,
``replay2``; ``quality`` the phone, ``phone1`` .. ``phone6``. Stems ``<P>_<S>_<F>``,
unique within a user. OULU-NPU has a development set: it is the validation set.
"""
from __future__ import annotations

import re

from data_prep.casia import ATTACK, GENUINE, StemInfo

NAME = "oulu"
TITLE = "OULU-NPU"
SPLITS = {"train": "Train_files", "dev": "Dev_files", "test": "Test_files"}
VIDEO_EXT = ".avi"
CLIENTS = {"train": tuple(range(1, 21)), "dev": tuple(range(21, 36)), "test": tuple(range(36, 56))}
PHONES = (1, 2, 3, 4, 5, 6)
SESSIONS = (1, 2, 3)
FILES = {1: "genuine", 2: "print1", 3: "print2", 4: "replay1", 5: "replay2"}
ATTACK_TYPES = tuple(v for k, v in FILES.items() if k != 1)
QUALITIES = tuple(f"phone{p}" for p in PHONES)


def _rule(phones=PHONES, sessions=SESSIONS, files=tuple(FILES)):
    return {"phones": tuple(phones), "sessions": tuple(sessions), "files": tuple(files)}


def _protocols() -> dict:
    """protocol -> {"train"/"dev": rule, "test": rule}."""
    out = {"Protocol_1": {"train": _rule(sessions=(1, 2)), "test": _rule(sessions=(3,))},
           "Protocol_2": {"train": _rule(files=(1, 2, 4)), "test": _rule(files=(1, 3, 5))}}
    for k in PHONES:
        rest = tuple(p for p in PHONES if p != k)
        out[f"Protocol_3_{k}"] = {"train": _rule(phones=rest), "test": _rule(phones=(k,))}
        out[f"Protocol_4_{k}"] = {"train": _rule(rest, (1, 2), (1, 2, 4)),
                                  "test": _rule((k,), (3,), (1, 3, 5))}
    for p in out.values():
        p["dev"] = p["train"]
    return out


PROTOCOLS = _protocols()
DEFAULT_PROTOCOL = "Protocol_1"
_NAME = re.compile(r"^([1-6])_([1-3])_(\d{2})_([1-5])$")


def stems() -> list[str]:
    return [f"{p}_{s}_{f}" for p in PHONES for s in SESSIONS for f in FILES]


def stem_info(stem: str) -> StemInfo:
    m = re.match(r"^([1-6])_([1-3])_([1-5])$", stem)
    if not m:
        raise ValueError(f"unknown OULU-NPU stem {stem!r}: expected <phone>_<session>_<file>")
    f = int(m.group(3))
    return StemInfo(GENUINE if f == 1 else ATTACK, FILES[f], f"phone{m.group(1)}")


def file_name(split: str, client: int, stem: str) -> str:
    p, s, f = stem.split("_")
    return f"{SPLITS[split]}/{p}_{s}_{client:02d}_{f}{VIDEO_EXT}"


def parse(rel: str):
    parts = rel.split("/")
    split = {v: k for k, v in SPLITS.items()}.get(parts[0])
    if split is None or len(parts) != 2 or not parts[1].endswith(VIDEO_EXT):
        return None
    m = _NAME.match(parts[1][:-len(VIDEO_EXT)])
    if not m:
        return None
    p, s, u, f = m.groups()
    return split, int(u), f"{p}_{s}_{f}"


def in_protocol(protocol: str, split: str, stem: str) -> bool:
    p, s, f = (int(x) for x in stem.split("_"))
    r = PROTOCOLS[protocol][split]
    return p in r["phones"] and s in r["sessions"] and f in r["files"]


def client_id(split: str, subject: int) -> int:
    """OULU-NPU's user ids are global (1..55)."""
    if split not in SPLITS:
        raise ValueError(f"unknown OULU-NPU split {split!r}; known: {sorted(SPLITS)}")
    return int(subject)
