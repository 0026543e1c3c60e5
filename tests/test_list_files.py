"""List-file names of the prepared layout (data_prep/hdf5_layout.py)."""
from __future__ import annotations

import pytest

from data_prep import hdf5_layout as L


def test_list_file_names():
    p = L.list_file("/o", 1.8, 7, "fold3_val")
    assert p.as_posix() == "/o/s1.8_T7/fold3_val.txt"
    assert L.list_file("o", 1, 1, "train").as_posix() == "o/s1.0_T1/train.txt"
    for bad in ("val", "fold_train", "foldx_val", "fold1_test"):
        with pytest.raises(ValueError):
            L.list_file("o", 1.0, 1, bad)
    assert L.list_names(2) == ["train", "test", "fold1_train", "fold1_val", "fold2_train", "fold2_val"]
