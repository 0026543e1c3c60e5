"""CASIA-FASD layout and labels: the one place these facts live (Zhang et al., ICB 2012).

Layout: ``<root>/train_release/<1..20>/<stem>.avi`` and
``<root>/test_release/<1..30>/<stem>.avi``, 12 videos per subject.

Quality ambiguity: the public bob.db.casia_fasd package calls stem 1 "normal" and
stem 2 "low" (and so for 3/4, 5/6, 7/8). Its face boxes show odd stems as landscape
~640x480 and even stems as portrait ~480x640; the database paper does not let us
confirm which of the two USB cameras is "low" and which "normal". We follow
bob.db.casia_fasd and say so in the README. Change it here and nowhere else.
"""
from __future__ import annotations

from typing import NamedTuple

SPLITS = {"train": "train_release", "test": "test_release"}
SUBJECTS = {"train": tuple(range(1, 21)), "test": tuple(range(1, 31))}
# bob.db.casia_fasd's client ids: train folder k is client k, test folder k is client
# k + 20, so that the 50 subjects have 50 ids (score files' ``claimed_id``).
CLIENT_ID_OFFSET = {"train": 0, "test": 20}


def client_id(split: str, subject: int) -> int:
    """bob.db.casia_fasd's client id of CASIA folder ``subject`` of ``split``."""
    if split not in CLIENT_ID_OFFSET:
        raise ValueError(f"unknown CASIA-FASD split {split!r}; known: {sorted(CLIENT_ID_OFFSET)}")
    return int(subject) + CLIENT_ID_OFFSET[split]
VIDEO_EXT = ".avi"

GENUINE, ATTACK = 1, 0  # label convention: genuine (bona fide) = 1, p(y=1|x) is the score


class StemInfo(NamedTuple):
    label: int          # GENUINE or ATTACK
    attack: str         # "genuine", "warped", "cut" or "video"
    quality: str        # "low", "normal" or "high"


# stem -> (label, attack type, quality); the quality column follows bob.db.casia_fasd.
STEMS: dict[str, StemInfo] = {
    "1": StemInfo(GENUINE, "genuine", "normal"),
    "2": StemInfo(GENUINE, "genuine", "low"),
    "HR_1": StemInfo(GENUINE, "genuine", "high"),
    "3": StemInfo(ATTACK, "warped", "normal"),
    "4": StemInfo(ATTACK, "warped", "low"),
    "HR_2": StemInfo(ATTACK, "warped", "high"),
    "5": StemInfo(ATTACK, "cut", "normal"),
    "6": StemInfo(ATTACK, "cut", "low"),
    "HR_3": StemInfo(ATTACK, "cut", "high"),
    "7": StemInfo(ATTACK, "video", "normal"),
    "8": StemInfo(ATTACK, "video", "low"),
    "HR_4": StemInfo(ATTACK, "video", "high"),
}
ATTACK_TYPES = ("warped", "cut", "video")
QUALITIES = ("low", "normal", "high")

# Public subject-wise 5-fold split of the 20 train subjects (bob.db.casia_fasd "newfolds").
CASIA_FOLDS = ((10, 14, 16, 20), (8, 13, 18, 19), (1, 6, 11, 17), (4, 5, 7, 15), (2, 3, 9, 12))
