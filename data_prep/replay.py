"""Idiap Replay-Attack: layout, labels, clients and protocols, stated here once.

Chingovska, Anjos and Marcel, BIOSIG 2012. Facts from the public bob.db.replay package
(``create.py``: file-name fields; ``test.py``: counts and client ids) and
bob.pad.face (``tests/test_databases.py``: the protocol names and 360 / 720 / 1200
train / +dev / +eval files); the train client list as public cross-dataset code
(SSDG-lineage loaders) states it.

Layout (the ``replayattack`` folder of the distribution)::

    <root>/{train,devel,test}/real/client<ID>_session01_webcam_authenticate_<light>_<take>.mov
    <root>/{train,devel,test}/attack/{fixed,hand}/attack_<device>_client<ID>_session01_<sample device>_<sample type>_<light>.mov

``enroll`` videos (``<root>/enroll/``) are for face recognition and not read.
Per client and split: 4 real accesses (2 lights x 2 takes) and 20 attacks (2
supports x 5 attack kinds x 2 lights): 50 clients, 200 real and 1000 attack videos.

Attack kinds (``<device>`` / ``<sample device>`` / ``<sample type>``): a printed
high-definition photo (``print/highdef/photo``), a photo or a video on an iPhone
(``mobile/mobile/{photo,video}``), a photo or a video on an iPad
(``highdef/highdef/{photo,video}``).

Short names (the HDF5 layout keeps 8 bytes per string, data_prep/hdf5_layout.py):
the ``attack`` column holds ``print``, ``mphoto``, ``mvideo``, ``hphoto``, ``hvideo``;
``quality`` holds the light, ``adverse`` or ``control`` (bob: ``controlled``). A
video's stem is unique within its client: ``r<l><take>`` for real accesses
(``ra1``: adverse, take 1), ``<support><kind><l>`` for attacks (``fhpa``: fixed
support, iPad photo, adverse; kinds ``pr``, ``mp``, ``mv``, ``hp``, ``hv``).

Protocols (bob.db.replay): ``grandtest`` (every attack) and the attack subsets
``print``, ``mobile``, ``highdef``, ``photo``, ``video``, ``digitalphoto``; every
protocol keeps all real accesses. Replay-Attack has a development set (``devel``):
it is the validation set (data_prep.datasets).
"""
from __future__ import annotations

import re

from data_prep.casia import ATTACK, GENUINE, StemInfo

NAME = "replay"
TITLE = "Replay-Attack"
SPLITS = {"train": "train", "dev": "devel", "test": "test"}
VIDEO_EXT = ".mov"
# bob.db.replay test.py: has_client_id true for 3, 21, 101, 119; false for 0, 32, 100,
# 120; 50 clients in all, so the ids are 1..31 and 101..119.
CLIENT_IDS = tuple(range(1, 32)) + tuple(range(101, 120))
# The 15 train clients; devel (15) and test (20) clients are read from the folders.
CLIENTS = {"train": (1, 2, 4, 6, 7, 8, 12, 16, 18, 25, 27, 103, 105, 108, 110),
           "dev": None, "test": None}
CLIENTS_PER_SPLIT = {"train": 15, "dev": 15, "test": 20}

LIGHTS = {"a": "adverse", "c": "controlled"}
LIGHT_SHORT = {"adverse": "adverse", "controlled": "control"}
SUPPORTS = {"f": "fixed", "h": "hand"}
# kind code -> (attack column, device, sample device, sample type)
KINDS = {"pr": ("print", "print", "highdef", "photo"),
         "mp": ("mphoto", "mobile", "mobile", "photo"),
         "mv": ("mvideo", "mobile", "mobile", "video"),
         "hp": ("hphoto", "highdef", "highdef", "photo"),
         "hv": ("hvideo", "highdef", "highdef", "video")}
ATTACK_TYPES = tuple(k[0] for k in KINDS.values())
QUALITIES = ("adverse", "control")
PROTOCOLS = {
    "grandtest": ATTACK_TYPES,
    "print": ("print",),
    "mobile": ("mphoto", "mvideo"),
    "highdef": ("hphoto", "hvideo"),
    "photo": ("print", "mphoto", "hphoto"),
    "video": ("mvideo", "hvideo"),
    "digitalphoto": ("mphoto", "hphoto"),
}
DEFAULT_PROTOCOL = "grandtest"

_REAL = re.compile(r"^client(\d{3})_session01_webcam_authenticate_(adverse|controlled)_([12])$")
_ATTACK = re.compile(r"^attack_(print|mobile|highdef)_client(\d{3})_session01_(highdef|mobile)"
                     r"_(photo|video)_(adverse|controlled)$")


def stems() -> list[str]:
    """Every stem of one client, in index order: real accesses, then attacks."""
    real = [f"r{l}{t}" for l in LIGHTS for t in (1, 2)]
    att = [f"{s}{k}{l}" for s in SUPPORTS for k in KINDS for l in LIGHTS]
    return real + att


def stem_info(stem: str) -> StemInfo:
    if stem not in _STEMS:
        raise ValueError(f"unknown Replay-Attack stem {stem!r}; known: {sorted(_STEMS)}")
    return _STEMS[stem]


def _info(stem: str) -> StemInfo:
    if stem[0] == "r":
        return StemInfo(GENUINE, "genuine", LIGHT_SHORT[LIGHTS[stem[1]]])
    return StemInfo(ATTACK, KINDS[stem[1:3]][0], LIGHT_SHORT[LIGHTS[stem[3]]])


_STEMS = {s: _info(s) for s in stems()}


def file_name(split: str, client: int, stem: str) -> str:
    """The video's path relative to the root (the naming rule of bob.db.replay)."""
    folder = SPLITS[split]
    if stem[0] == "r":
        return (f"{folder}/real/client{client:03d}_session01_webcam_authenticate_"
                f"{LIGHTS[stem[1]]}_{stem[2]}{VIDEO_EXT}")
    _, dev, sdev, stype = KINDS[stem[1:3]]
    return (f"{folder}/attack/{SUPPORTS[stem[0]]}/attack_{dev}_client{client:03d}_session01_"
            f"{sdev}_{stype}_{LIGHTS[stem[3]]}{VIDEO_EXT}")


def parse(rel: str):
    """(split, client, stem) of a path relative to the root, or None if it is not a
    Replay-Attack video name."""
    parts = rel.split("/")
    split = {v: k for k, v in SPLITS.items()}.get(parts[0])
    if split is None or not rel.endswith(VIDEO_EXT):
        return None
    base = parts[-1][:-len(VIDEO_EXT)]
    if len(parts) == 3 and parts[1] == "real":
        m = _REAL.match(base)
        if m:
            return split, int(m.group(1)), f"r{m.group(2)[0]}{m.group(3)}"
    elif len(parts) == 4 and parts[1] == "attack" and parts[2] in SUPPORTS.values():
        m = _ATTACK.match(base)
        if m:
            dev, client, sdev, stype, light = m.groups()
            for code, (_, d, sd, st) in KINDS.items():
                if (d, sd, st) == (dev, sdev, stype):
                    return split, int(client), f"{parts[2][0]}{code}{light[0]}"
    return None


def in_protocol(protocol: str, split: str, stem: str) -> bool:
    """Whether a video belongs to the protocol (every real access; attacks by kind)."""
    info = stem_info(stem)
    return info.label == GENUINE or info.attack in PROTOCOLS[protocol]


def client_id(split: str, subject: int) -> int:
    """Replay-Attack's client ids are global (1..31, 101..119): the id is the client."""
    if split not in SPLITS:
        raise ValueError(f"unknown Replay-Attack split {split!r}; known: {sorted(SPLITS)}")
    return int(subject)
