"""Box maths of data_prep (no video needed): scaled, minimum and pixel boxes, zero-filled
crops, the windows and their boxes, the largest face of a detection."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep import samples
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
