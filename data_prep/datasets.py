"""The data sets this project reads, by name, and one index walker for their layouts.

``dataset.name`` (configs/default.yaml) picks one: ``casia`` (CASIA-FASD,
data_prep/casia.py, walked by data_prep/index.py), ``replay`` (Replay-Attack,
data_prep/replay.py), ``msu`` (MSU-MFSD, data_prep/msu.py), ``oulu`` (OULU-NPU,
data_prep/oulu.py); ``dataset.protocol`` one of its protocols (below). Each module
states its facts once: splits and their folders, the naming rule (``file_name`` and
its inverse ``parse``), labels, attack types and conditions per stem (``stem_info``),
the published client lists, the protocols (``in_protocol``) and the client ids of
score files (``client_id``).

Validation: a data set with a development set (Replay-Attack, OULU-NPU) is validated
on it: preparation writes one fold, ``fold1_train`` = the train split, ``fold1_val``
= the dev split, and model selection uses that one fold (configs/grammar.fold_ids),
whatever ``folds.count`` and ``folds.use`` say (``folds.dev_set: false`` turns this
off and makes subject-wise folds of the train split instead). The others (CASIA-FASD,
MSU-MFSD) use subject-wise folds of their train clients (data_prep/folds.py).

This module imports only the standard library and the fact modules, so that
configs/grammar.py can ask ``has_dev`` without importing numpy or OpenCV.
"""
from __future__ import annotations

import importlib
from collections import defaultdict
from pathlib import Path

NAMES = ("casia", "replay", "msu", "oulu")
TITLES = {"casia": "CASIA-FASD", "replay": "Replay-Attack", "msu": "MSU-MFSD", "oulu": "OULU-NPU"}
# Score files and tables name a split train, dev or test; "validation" is read as dev.
SPLIT_NAMES = ("train", "dev", "test")
SPLIT_ALIASES = {"validation": "dev", "devel": "dev"}


def check_name(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"dataset.name: {name!r} is not a known data set; known: {list(NAMES)}")
    return name


def module(name: str):
    return importlib.import_module(f"data_prep.{check_name(name)}")


def splits(name: str) -> tuple[str, ...]:
    """The data set's own splits, in order: (train, test) or (train, dev, test)."""
    return tuple(module(name).SPLITS)


def has_dev(name: str) -> bool:
    return "dev" in splits(name)


def uses_dev(cfg: dict) -> bool:
    """Whether preparation and model selection validate on the development set (a
    config without the keys is CASIA-FASD's, validated on train folds)."""
    return (has_dev(cfg.get("dataset", {}).get("name", "casia"))
            and bool(cfg["folds"].get("dev_set", True)))


def split_name(split: str) -> str:
    """A split name as score files write it (``validation`` -> ``dev``); ValueError on
    anything else."""
    s = SPLIT_ALIASES.get(split, split)
    if s not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; known: {list(SPLIT_NAMES)} "
                         f"(and {sorted(SPLIT_ALIASES)} for dev)")
    return s


def protocols(name: str) -> tuple[str, ...]:
    if name == "casia":
        return ("all",)
    return tuple(module(name).PROTOCOLS)


def resolve_protocol(name: str, protocol: str) -> str:
    """``dataset.protocol``: "" is the data set's default (CASIA-FASD: ``all``, its seven
    test protocols being evaluation-time selections, eval/protocols.py)."""
    if not protocol:
        return "all" if name == "casia" else module(name).DEFAULT_PROTOCOL
    if protocol not in protocols(name):
        raise ValueError(f"dataset.protocol: {protocol!r} is not a protocol of {TITLES[name]}; "
                         f"known: {list(protocols(name))}")
    return protocol


def stem_info(name: str, stem: str):
    """StemInfo(label, attack, quality) of a video stem of data set ``name``."""
    if name == "casia":
        from data_prep.casia import STEMS
        if stem not in STEMS:
            raise ValueError(f"unknown CASIA video stem {stem!r}; known: {sorted(STEMS)}")
        return STEMS[stem]
    return module(name).stem_info(stem)


def client_id(name: str, split: str, subject: int) -> int:
    """The data set's own client id of ``subject`` of ``split`` (score files' claimed_id)."""
    return module(name).client_id(split, subject)


def split_folder(name: str, split: str) -> str:
    return module(name).SPLITS[split]


# ------------------------------------------------------------------ index
def scan(name: str, root, protocol: str = ""):
    """The index (data_prep.index.Index) of a tree of data set ``name``: the videos of
    the protocol, sorted by split, client and stem; missing clients' videos are
    warnings, unknown files ``extra``; a missing root or split folder, a client in two
    splits, or no video at all is a DatasetError."""
    from data_prep import index
    protocol = resolve_protocol(name, protocol)
    if name == "casia":
        return index.scan(root)
    m = module(name)
    root = Path(root).resolve()
    if not root.is_dir():
        raise index.DatasetError(f"data set root not found: {root} (set --dataset or dataset.root; "
                                 f"`python -m data_prep.synth_layouts --layout {name}` writes a "
                                 f"synthetic one)")
    folders = list(dict.fromkeys(m.SPLITS.values()))
    missing = [str(root / f) for f in folders if not (root / f).is_dir()]
    if missing:
        raise index.DatasetError(f"split folder(s) missing: {', '.join(missing)} (expected the "
                                 f"{m.TITLE} layout, see data_prep/{name}.py)")
    idx = index.Index(root=root, videos=[])
    for p in sorted(root.iterdir()):
        if p.name not in folders and p.name not in getattr(m, "SUB_LISTS", {}).values():
            idx.extra.append(p.name)
    found: dict = {}
    for folder in folders:
        for p in sorted((root / folder).rglob("*")):
            if not p.is_file():
                continue
            rel = p.relative_to(root).as_posix()
            r = m.parse(rel)
            if r is None:
                idx.extra.append(rel)
            elif r[0] is None:
                idx.warnings.append(f"{rel}: client {r[1]} is in none of the published client "
                                    f"lists of data_prep/{name}.py; ignored")
            else:
                found[r] = p
    _check_clients(m, name, found, idx)
    for split in m.SPLITS:
        clients = sorted({c for s, c, _ in found if s == split})
        for client in clients:
            want = [st for st in m.stems() if m.in_protocol(protocol, split, st)]
            lost = [m.file_name(split, client, st) for st in want if (split, client, st) not in found]
            if lost:
                idx.warnings.append(f"{split} client {client}: {len(lost)} of {len(want)} video(s) "
                                    f"of protocol {protocol} missing: " + ", ".join(lost[:4])
                                    + (" ..." if len(lost) > 4 else ""))
            for st in want:
                if (split, client, st) in found:
                    p = found[(split, client, st)]
                    info = m.stem_info(st)
                    idx.videos.append(index.Video(split, client, st, p, p.relative_to(root).as_posix(),
                                                  info.label, info.attack, info.quality, name))
    if not idx.videos:
        raise index.DatasetError(f"no {m.TITLE} video of protocol {protocol} found under {root} "
                                 f"(expected names such as {m.file_name('train', 1, m.stems()[0])}; "
                                 f"see data_prep/{name}.py)")
    return idx


def _check_clients(m, name: str, found: dict, idx) -> None:
    by_client = defaultdict(set)
    for split, client, _ in found:
        by_client[client].add(split)
    both = {c: sorted(s) for c, s in by_client.items() if len(s) > 1}
    if both:
        from data_prep.index import DatasetError
        raise DatasetError(f"{m.TITLE}: client(s) in more than one split: {both}; a client's "
                           f"videos belong to one split (data_prep/{name}.py)")
    for split, ids in m.CLIENTS.items():
        have = {c for s, c, _ in found if s == split}
        if ids is not None:
            odd = sorted(have - set(ids))
            if odd:
                idx.warnings.append(f"{split}: client(s) outside the published {split} list: {odd}")
    known = getattr(m, "CLIENT_IDS", None)
    if known is not None:
        odd = sorted(set(by_client) - set(known))
        if odd:
            idx.warnings.append(f"client id(s) outside {m.TITLE}'s ids: {odd}")
    for split, fname in getattr(m, "SUB_LISTS", {}).items():
        p = idx.root / fname
        if p.is_file():
            try:
                listed = sorted(int(x) for x in p.read_text().split())
            except ValueError:
                idx.warnings.append(f"{fname}: not a list of client numbers; ignored")
                continue
            if listed != sorted(m.CLIENTS[split]):
                idx.warnings.append(f"{fname} lists {listed}, data_prep/{name}.py states "
                                    f"{sorted(m.CLIENTS[split])}; the stated list is used")


def check_splits(name: str, usable, skipped_count: int = 0) -> None:
    """DatasetError, before any training, naming every split of the data set that has
    no usable video or lacks one class."""
    from data_prep.index import DatasetError
    probs = []
    for split in splits(name):
        vids = [v for v in usable if v.split == split]
        labels = {v.label for v in vids}
        if not vids:
            probs.append(f"split {split!r} ({split_folder(name, split)}/) has no usable video")
        elif len(labels) < 2:
            which = "attack" if 1 in labels else "genuine"
            probs.append(f"split {split!r} ({split_folder(name, split)}/) has no usable {which} video")
    if probs:
        raise DatasetError(f"{TITLES[name]}: " + "; ".join(probs) + f" ({skipped_count} video(s) "
                           f"skipped, see the list above); training would have nothing to "
                           f"learn, validate or test on there: add the videos or pick another "
                           f"dataset.protocol")
