"""The CASIA-FASD tree index (data_prep/index.py): errors and warnings name what is missing."""
from __future__ import annotations

import pytest

from data_prep import index


def test_index_errors_name_what_is_missing(tmp_path):
    with pytest.raises(index.DatasetError, match="not found"):
        index.scan(tmp_path / "nope")
    (tmp_path / "train_release").mkdir()
    with pytest.raises(index.DatasetError, match="test_release"):
        index.scan(tmp_path)
    (tmp_path / "test_release" / "3").mkdir(parents=True)
    sub = tmp_path / "train_release" / "7"
    sub.mkdir()
    for stem in ("1", "HR_4"):
        (sub / f"{stem}.avi").write_bytes(b"x")
    (sub / "notes.txt").write_text("x")
    (sub / "9.avi").write_bytes(b"x")
    (tmp_path / "train_release" / "README").write_text("x")
    idx = index.scan(tmp_path)
    assert [(v.split, v.subject, v.stem, v.label, v.attack, v.quality) for v in idx.videos] == [
        ("train", 7, "1", 1, "genuine", "normal"), ("train", 7, "HR_4", 0, "video", "high")]
    assert idx.videos[0].rel == "train_release/7/1.avi"
    assert sorted(idx.extra) == ["train_release/7/9.avi", "train_release/7/notes.txt", "train_release/README"]
    missing = [w for w in idx.warnings if w.startswith("train_release/7")]
    assert len(missing) == 1 and "2.avi" in missing[0] and "HR_1.avi" in missing[0]
    assert any("test_release/3: video(s) missing" in w for w in idx.warnings)
    assert any("subject folder(s) missing" in w and "1, 2" in w for w in idx.warnings)
