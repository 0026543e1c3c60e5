"""Box maths, windows, folds, index checks and layout names of data_prep (no video needed)."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep import casia, folds, hdf5_layout as L, index, samples
from data_prep.detect import largest_face


def test_scale_box_about_centre():
    assert samples.scale_box((10, 20, 40, 60), 1.0) == (10, 20, 40, 60)
    # centre (30, 50) stays, size x2
    assert samples.scale_box((10, 20, 40, 60), 2.0) == (-10, -10, 80, 120)
    x, y, w, h = samples.scale_box((100, 100, 50, 50), 1.4)
    assert (x + w / 2, y + h / 2) == (125, 125) and w == pytest.approx(70) and h == pytest.approx(70)


def test_min_box_of_window():
    boxes = np.array([[10, 10, 20, 20], [5, 15, 20, 20], [12, 8, 30, 10]])
    # x0 = 5, y0 = 8, x1 = max(30, 25, 42) = 42, y1 = max(30, 35, 18) = 35
    assert samples.min_box(boxes) == (5, 8, 37, 27)
    assert samples.min_box(boxes[:1]) == (10, 10, 20, 20)


def test_pixel_box_rounds_and_is_never_empty():
    assert samples.pixel_box((1.5, 2.4, 3.0, 0.2)) == (2, 2, 5, 3)
    assert samples.pixel_box((-0.5, -1.6, 10, 10)) == (0, -2, 10, 8)


def test_crop_zero_fill_outside_the_frame():
    frame = np.arange(1, 4 * 6 * 3 + 1, dtype=np.uint8).reshape(4, 6, 3)   # H=4, W=6, no zeros
    c = samples.crop_zero_fill(frame, (-2, -1, 5, 3))                       # x -2..3, y -1..2
    assert c.shape == (3, 5, 3)
    assert (c[0] == 0).all() and (c[:, :2] == 0).all()                      # top row, left 2 cols
    np.testing.assert_array_equal(c[1:, 2:], frame[0:2, 0:3])
    c = samples.crop_zero_fill(frame, (4, 2, 4, 4))                         # past right and bottom
    np.testing.assert_array_equal(c[:2, :2], frame[2:4, 4:6])
    assert (c[2:] == 0).all() and (c[:, 2:] == 0).all()
    assert (samples.crop_zero_fill(frame, (100, 100, 3, 3)) == 0).all()     # wholly outside


def test_crop_resizes_to_size_and_keeps_zero_border():
    frame = np.full((100, 100, 3), 200, np.uint8)
    # face box at the left edge scaled by 2.6: the left part of the crop is outside
    box = samples.scale_box((0, 30, 40, 40), 2.6)
    c = samples.crop(frame, box, 128)
    assert c.shape == (128, 128, 3) and c.dtype == np.uint8
    # the box spans x -32..72 (-32..0, ~31 %, outside) and y -2..102 (2 px outside at
    # top and bottom): zero there, 200 inside
    assert (c[:, :35] == 0).all() and (c[5:-5, 45:] == 200).all()
    assert (c[0, 45:] == 0).all() and (c[-1, 45:] == 0).all()
    assert (samples.crop(frame, (10, 10, 20, 20), 32, "linear") == 200).all()


def _boxes(has):
    b = np.tile(np.array([[10, 10, 20, 20]], np.int32), (len(has), 1))
    b[~np.asarray(has)] = -1
    return b


def test_windows_stride_skip_keep_and_cap():
    b = _boxes([True] * 10)
    assert [s for s, _ in samples.windows(b, 1, 0, "skip")] == list(range(10))
    assert [s for s, _ in samples.windows(b, 3, 0, "skip")] == [0, 2, 4, 6]       # stride ceil(3/2)=2
    assert [s for s, _ in samples.windows(b, 5, 1, "skip")] == [0, 1, 2, 3, 4, 5]
    assert [s for s, _ in samples.windows(b, 9, 0, "skip")] == [0]
    assert samples.windows(b, 11, 0, "skip") == []
    b = _boxes([True, True, False, True, True, True, True])
    assert [s for s, _ in samples.windows(b, 3, 1, "skip")] == [3, 4]
    assert [s for s, _ in samples.windows(b, 3, 1, "keep")] == [0, 1, 2, 3, 4]
    assert [s for s, _ in samples.windows(b, 1, 0, "keep")] == [0, 1, 3, 4, 5, 6]
    b = _boxes([True] * 100)
    assert [s for s, _ in samples.windows(b, 1, 0, "skip", max_per_video=5)] == [0, 25, 50, 74, 99]
    b = _boxes([True] * 4)
    b[1] = (0, 30, 5, 5)
    assert samples.windows(b, 3, 1, "skip")[0] == (0, (0, 10, 30, 25))
    with pytest.raises(ValueError):
        samples.windows(b, 3, 1, "interpolate")


def test_largest_face_and_ties():
    assert largest_face([]) is None
    assert largest_face(np.array([[0, 0, 10, 10], [5, 5, 30, 30], [1, 1, 20, 20]])) == (5, 5, 30, 30)
    assert largest_face(np.array([[50, 9, 10, 10], [40, 9, 10, 10], [60, 3, 10, 10]])) == (60, 3, 10, 10)


def test_casia_folds_disjoint_and_cover_the_train_subjects():
    train = {s: 0.25 for s in casia.SUBJECTS["train"]}
    f, method = folds.assign_folds(train, casia.SUBJECTS["test"], "auto", 5, 1)
    assert method == "casia" and f == [tuple(x) for x in casia.CASIA_FOLDS]
    flat = [s for x in f for s in x]
    assert sorted(flat) == list(casia.SUBJECTS["train"]) and len(flat) == len(set(flat))
    # a subset keeps each subject in its public fold (the synthetic mini set: one per fold)
    f, _ = folds.assign_folds({s: 0.25 for s in (1, 2, 4, 8, 10)}, (1, 2), "auto", 5, 1)
    assert f == [(10,), (8,), (1,), (4,), (2,)]
    with pytest.raises(ValueError, match="stratified"):
        folds.assign_folds({21: 0.5}, (), "casia", 5, 1)


def test_stratified_folds_deterministic_balanced_disjoint():
    # subjects 1..23, some with missing genuine videos
    frac = {s: (0.25 if s % 4 else 0.1) for s in range(1, 24)}
    a, m = folds.assign_folds(frac, range(1, 31), "stratified", 5, 7)
    b, _ = folds.assign_folds(frac, range(1, 31), "stratified", 5, 7)
    assert m == "stratified" and a == b
    sizes = [len(x) for x in a]
    assert max(sizes) - min(sizes) <= 1
    low = [sum(frac[s] == 0.1 for s in x) for x in a]
    assert max(low) - min(low) <= 1                     # the odd subjects are spread out
    flat = [s for x in a for s in x]
    assert sorted(flat) == list(range(1, 24))
    assert folds.assign_folds(frac, (), "auto", 5, 7)[1] == "stratified"   # 21..23 not in CASIA folds


def test_partial_copy_with_empty_used_folds_is_refused():
    """Train subjects 1-4 only: the public folds leave folds 1 and 2 empty. With folds.use 5
    that is an error naming the folds and the keys; folds not in use may stay empty."""
    four = {s: 0.25 for s in (1, 2, 3, 4)}
    with pytest.raises(ValueError) as e:
        folds.assign_folds(four, (1, 2), "auto", 5, 1, use=5)
    msg = str(e.value)
    assert "folds 1 and 2 of 5" in msg and "folds.method: stratified" in msg
    assert "folds.use: 5" in msg and "at most 4" in msg and "1, 2, 3, 4" in msg
    f, m = folds.assign_folds(four, (1, 2), "auto", 5, 1)            # no use given: no check
    assert m == "casia" and f[0] == () and f[1] == ()
    # what the message asks for works: stratified, 4 folds, all used
    f, m = folds.assign_folds(four, (1, 2), "stratified", 4, 1, use=4)
    assert m == "stratified" and all(f)
    # stratified with more folds than subjects is refused too, by the same rule
    with pytest.raises(ValueError, match="fold 5 of 5 would have no train subject"):
        folds.assign_folds(four, (1, 2), "stratified", 5, 1, use=5)
    # an empty fold outside 1..use is no error (subjects 10 and 8: folds 1 and 2 only)
    f, _ = folds.assign_folds({10: 0.25, 8: 0.25}, (1,), "auto", 5, 1, use=2)
    assert f == [(10,), (8,), (), (), ()]


def test_check_folds_catches_overlap_and_gaps():
    with pytest.raises(AssertionError, match="fold 1 and fold 2"):
        folds.check_folds([(1, 2), (2, 3)], [1, 2, 3], [])
    with pytest.raises(AssertionError, match="cover"):
        folds.check_folds([(1,), (2,)], [1, 2, 3], [])


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


def test_list_file_names():
    p = L.list_file("/o", 1.8, 7, "fold3_val")
    assert p.as_posix() == "/o/s1.8_T7/fold3_val.txt"
    assert L.list_file("o", 1, 1, "train").as_posix() == "o/s1.0_T1/train.txt"
    for bad in ("val", "fold_train", "foldx_val", "fold1_test"):
        with pytest.raises(ValueError):
            L.list_file("o", 1.0, 1, bad)
    assert L.list_names(2) == ["train", "test", "fold1_train", "fold1_val", "fold2_train", "fold2_val"]
