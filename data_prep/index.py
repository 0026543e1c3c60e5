"""Index of a CASIA-FASD-layout tree: every video with its split, subject, stem and labels.

The stem table (label, attack type, quality, and the quality ambiguity) lives in
``data_prep/casia.py``; this module only walks the tree and checks it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from configs.errors import UserError
from data_prep import casia


class DatasetError(UserError, RuntimeError):
    """The data set tree is missing or unusable; the message names what is missing."""


@dataclass(frozen=True)
class Video:
    split: str          # "train" or "test"
    subject: int
    stem: str
    path: Path          # absolute
    rel: str            # relative to the data set root, with "/"
    label: int          # casia.GENUINE (1) or casia.ATTACK (0)
    attack: str         # "genuine", "warped", "cut", "video"
    quality: str        # "low", "normal", "high"
    dataset: str = "casia"   # data_prep.datasets.NAMES

    @property
    def key(self) -> str:
        """Unique name of the video within the data set, e.g. ``train_3_HR_1`` (the
        stem is unique within a subject's videos in every layout, data_prep.datasets)."""
        return f"{self.split}_{self.subject}_{self.stem}"


@dataclass
class Index:
    root: Path
    videos: list[Video]
    warnings: list[str] = field(default_factory=list)   # missing subjects / videos
    extra: list[str] = field(default_factory=list)      # files and folders ignored


def _stem_order(stem: str) -> int:
    return list(casia.STEMS).index(stem)


def scan(root: str | Path) -> Index:
    """Walk ``root``; raise DatasetError if the root or a split folder is missing.

    Videos are sorted by (split: train then test, subject, stem as in casia.STEMS).
    Missing subjects or videos are warnings; unknown files are reported in ``extra``.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetError(f"data set root not found: {root} (set --dataset or dataset.root; "
                           f"`python -m data_prep.synth` writes a synthetic one)")
    missing = [f"{root / d}" for d in casia.SPLITS.values() if not (root / d).is_dir()]
    if missing:
        raise DatasetError("split folder(s) missing: " + ", ".join(missing)
                           + " (expected the CASIA-FASD layout, see data_prep/casia.py)")
    idx = Index(root=root, videos=[])
    for split, folder in casia.SPLITS.items():
        sdir = root / folder
        found: dict[int, Path] = {}
        for p in sorted(sdir.iterdir()):
            if p.is_dir() and p.name.isdigit() and int(p.name) > 0:
                found[int(p.name)] = p
            else:
                idx.extra.append(p.relative_to(root).as_posix())
        expected = set(casia.SUBJECTS[split])
        gone = sorted(expected - set(found))
        if gone:
            idx.warnings.append(f"{folder}: subject folder(s) missing: {gone}")
        odd = sorted(set(found) - expected)
        if odd:
            idx.warnings.append(f"{folder}: subject(s) outside the CASIA-FASD numbering: {odd}")
        for subject in sorted(found):
            sub = found[subject]
            have = {}
            for p in sorted(sub.iterdir()):
                if p.is_file() and p.suffix == casia.VIDEO_EXT and p.stem in casia.STEMS:
                    have[p.stem] = p
                else:
                    idx.extra.append(p.relative_to(root).as_posix())
            lost = [s for s in casia.STEMS if s not in have]
            if lost:
                idx.warnings.append(f"{folder}/{subject}: video(s) missing: "
                                    + ", ".join(s + casia.VIDEO_EXT for s in lost))
            for stem in sorted(have, key=_stem_order):
                info = casia.STEMS[stem]
                p = have[stem]
                idx.videos.append(Video(split, subject, stem, p, p.relative_to(root).as_posix(),
                                        info.label, info.attack, info.quality))
    if not idx.videos:
        raise DatasetError(f"no videos found under {root} (expected <split>/<subject>/<stem>.avi)")
    return idx
