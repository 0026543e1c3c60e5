"""CASIA-FASD's 7 test protocols (Zhang et al., ICB 2012).

* ``overall``: every video.
* quality-wise ``low``, ``normal``, ``high``: genuine and attack videos of that
  quality only (the protocol pairs each quality with its own genuine videos).
* attack-wise ``warped``, ``cut``, ``video``: the attacks of that type, all three
  qualities, against **all** genuine videos (all three qualities). The database
  paper defines these tests by attack type only; bob.db.casia_fasd does the same,
  so no genuine video is dropped. This is our documented choice.

Each protocol is applied to validation and test scores alike: its threshold is the
EER threshold of the validation scores that fall in the same protocol.
Stem facts come from data_prep.casia; nothing is restated here.
"""
from __future__ import annotations

import numpy as np

from data_prep.casia import ATTACK_TYPES, GENUINE, QUALITIES

PROTOCOLS = ("overall",) + tuple(QUALITIES) + tuple(ATTACK_TYPES)


def kind(protocol: str) -> str:
    """'overall', 'quality' or 'attack'."""
    if protocol == "overall":
        return "overall"
    if protocol in QUALITIES:
        return "quality"
    if protocol in ATTACK_TYPES:
        return "attack"
    raise ValueError(f"unknown protocol {protocol!r}; known: {PROTOCOLS}")


def mask(arrays: dict, protocol: str) -> np.ndarray:
    """Boolean mask over ``scores.as_arrays`` columns selecting the protocol's samples."""
    k = kind(protocol)
    n = arrays["label"].size
    if k == "overall":
        return np.ones(n, dtype=bool)
    if k == "quality":
        return arrays["quality"] == protocol
    return (arrays["label"] == GENUINE) | (arrays["attack"] == protocol)
