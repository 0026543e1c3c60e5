"""scripts/diagnostics/temporal_capacity.py: the order-only cue it builds (fast; the
training it runs is a diagnostic, its figures are in docs/validation.md)."""
import h5py
import numpy as np
import pytest

from configs import errors
from scripts.diagnostics.temporal_capacity import cue_copy, ramp_offsets


def _folder(tmp_path, n=400, T=5):
    src = tmp_path / "s1.0_T5"
    src.mkdir()
    (src / "manifest.json").write_text("{}")
    (src / "fold1_train.txt").write_text("a.h5\n")
    with h5py.File(src / "a.h5", "w") as f:
        f["data"] = np.full((n, T, 3, 4, 4), 100, np.uint8)
        f["label"] = np.zeros(n, np.float32)
    return src


def test_the_ramp_is_the_only_cue_and_only_order_carries_it(tmp_path):
    src = _folder(tmp_path)
    dst = cue_copy(src, tmp_path / "out" / "s1.0_T5", c=40, genuine=0.25, seed=3)
    assert (dst / "fold1_train.txt").read_text() == "a.h5\n"
    with h5py.File(dst / "a.h5") as f:
        x, y = f["data"][:].astype(float), f["label"][:]
    assert set(np.unique(y)) == {0.0, 1.0} and 0.15 < y.mean() < 0.35
    means = x.mean(axis=(2, 3, 4))                                  # (N, T)
    up, down = 100 + ramp_offsets(5, 40), 100 - ramp_offsets(5, 40)
    np.testing.assert_allclose(means[y == 1], np.broadcast_to(up, means[y == 1].shape))
    np.testing.assert_allclose(means[y == 0], np.broadcast_to(down, means[y == 0].shape))
    # first-to-last contrast +40 / -40; the set of per-frame offsets is the same in both classes
    assert ramp_offsets(5, 40)[-1] - ramp_offsets(5, 40)[0] == pytest.approx(40)
    assert sorted(np.unique(means[y == 1])) == sorted(np.unique(means[y == 0]))
    with h5py.File(src / "a.h5") as f:                             # the source is untouched
        assert (f["data"][:] == 100).all() and (f["label"][:] == 0).all()


def test_a_folder_that_is_not_prepared_is_refused(tmp_path):
    with pytest.raises(errors.UserError, match="not a prepared"):
        cue_copy(tmp_path, tmp_path / "out", c=10, genuine=0.25, seed=0)
    with pytest.raises(errors.UserError, match="--cue 'wiggle'"):
        cue_copy(_folder(tmp_path), tmp_path / "out2", c=10, genuine=0.25, seed=0, cue="wiggle")


def test_the_spread_cue_is_frames_alike_or_not_with_one_offset_distribution(tmp_path):
    src = _folder(tmp_path, n=4000)
    dst = cue_copy(src, tmp_path / "out" / "s1.0_T5", c=40, genuine=0.25, seed=3, cue="spread")
    with h5py.File(dst / "a.h5") as f:
        x, y = f["data"][:].astype(float), f["label"][:]
    off = x.mean(axis=(2, 3, 4)) - 100                              # (N, T)
    assert 0.2 < y.mean() < 0.3
    assert np.abs(off).max() <= 20.5
    spread = off.max(axis=1) - off.min(axis=1)
    assert (spread[y == 1] == 0).all() and np.median(spread[y == 0]) > 15
    # the offset of any one frame has the same distribution in both classes (uniform, +-20)
    for cls in (0, 1):
        o = off[y == cls, 2]
        assert abs(o.mean()) < 2.0 and abs(o.std() - 40 / np.sqrt(12)) < 1.5, (cls, o.mean(), o.std())
