"""CNN and LSTM-CNN samples from cached face boxes (paper §4.1).

- A sample is T consecutive frames (T = 1: the CNN's single frame). Windows start at
  frames 0, stride, 2*stride, ...; ``samples.stride`` 0 means ceil(T / 2), i.e. half
  overlap (every frame in about two windows; stride 1 at T = 9 would store each frame 9x).
- The window's box is the minimum box containing the faces of its frames, scaled by s
  around its centre; pixels outside the frame are zero; the crop is resized to
  ``size`` x ``size`` with cv2.INTER_AREA (anti-aliased: the crops are shrunk 1-10x).
- Frames without a face (``samples.missing_face``): ``skip`` (default, the paper's
  "simply remove the bad faces") drops every window with a face-less frame; ``keep``
  keeps a window if at least one of its frames has a face and builds the box from the
  faces found. For T = 1 both drop the frame.
- ``samples.max_per_video`` > 0 keeps that many windows per video, evenly spaced.

A video is decoded once for all (scale, T) combinations: frames stream through and
each finished window is appended to its combination's staging file (layout of
hdf5_layout: T, 3, H, W per sample), so memory holds a few windows, not a video.
"""
from __future__ import annotations

import math
import os
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from data_prep import util

INTERP = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def scale_box(box, s: float) -> tuple[float, float, float, float]:
    """Scale (x, y, w, h) by ``s`` about its centre."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2.0, y + h / 2.0
    return (cx - s * w / 2.0, cy - s * h / 2.0, s * w, s * h)


def min_box(boxes) -> tuple[int, int, int, int]:
    """Minimum box (x, y, w, h) containing every box of ``boxes`` (rows x, y, w, h)."""
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    x0, y0 = b[:, 0].min(), b[:, 1].min()
    x1, y1 = (b[:, 0] + b[:, 2]).max(), (b[:, 1] + b[:, 3]).max()
    return (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def pixel_box(box) -> tuple[int, int, int, int]:
    """Float box -> integer corners (x0, y0, x1, y1), rounding half up, at least 1 px."""
    x, y, w, h = box
    x0, y0 = math.floor(x + 0.5), math.floor(y + 0.5)
    x1, y1 = math.floor(x + w + 0.5), math.floor(y + h + 0.5)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def crop_zero_fill(frame: np.ndarray, box) -> np.ndarray:
    """Pixels of ``frame`` inside the float box (x, y, w, h); zero outside the frame."""
    x0, y0, x1, y1 = pixel_box(box)
    H, W = frame.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0) + frame.shape[2:], frame.dtype)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = frame[iy0:iy1, ix0:ix1]
    return out


def crop(frame: np.ndarray, box, size: int, interp: str = "area") -> np.ndarray:
    """Zero-filled crop of the float box, resized to (size, size); HWC as the frame."""
    c = crop_zero_fill(frame, box)
    return cv2.resize(c, (size, size), interpolation=INTERP[interp])


def stride_for(T: int, stride: int) -> int:
    return stride if stride > 0 else max(1, math.ceil(T / 2))


class WindowStream:
    """The window rule of ``windows()``, one frame at a time: ``push`` each frame's box in
    order; it returns (first frame, minimum face box) when that frame ends a window, else
    None. ``windows()`` (a whole video) and live scoring (scripts/inference/stream.py, frames as they
    arrive) both use it, so a stream gets exactly the windows of the same file."""

    def __init__(self, T: int, stride: int, missing_face: str):
        if missing_face not in ("skip", "keep"):
            raise ValueError(f"samples.missing_face must be skip or keep, got {missing_face!r}")
        self.T, self.stride, self.missing_face = T, stride_for(T, stride), missing_face
        self.recent: deque = deque(maxlen=max(1, T))
        self.frame = -1                       # index of the last frame pushed

    def push(self, box) -> tuple[int, tuple[int, int, int, int]] | None:
        """``box``: (x, y, w, h) of this frame's face, w <= 0 (the -1 row) where none."""
        self.recent.append(np.asarray(box, np.int64).reshape(4))
        self.frame += 1
        start = self.frame - self.T + 1
        if start < 0 or start % self.stride:
            return None
        faces = [b for b in self.recent if b[2] > 0]
        if not faces or (self.missing_face == "skip" and len(faces) < self.T):
            return None
        return start, min_box(faces)


def windows(boxes: np.ndarray, T: int, stride: int, missing_face: str,
            max_per_video: int = 0) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Windows of one video: [(first frame, minimum face box of the window)].

    ``boxes``: (F, 4) with -1 rows where no face was found.
    """
    ws = WindowStream(T, stride, missing_face)
    out = [w for w in map(ws.push, boxes) if w is not None]
    if max_per_video > 0 and len(out) > max_per_video:
        pick = np.unique(np.round(np.linspace(0, len(out) - 1, max_per_video)).astype(int))
        out = [out[i] for i in pick]
    return out


def window_sample(frames, box, scale: float, size: int, interp: str = "area") -> np.ndarray:
    """uint8 (T, 3, size, size): the T ``frames`` of a window cropped to its minimum face
    ``box`` scaled by ``scale`` (zero fill outside the frame), each resized."""
    sbox = scale_box(box, scale)
    return np.stack([crop(im, sbox, size, interp).transpose(2, 0, 1) for im in frames])


def iter_samples(frames, wins: list, T: int, scale: float, size: int, interp: str = "area"):
    """Yield (first frame, uint8 (T, 3, size, size)) for each window of ``wins`` (from
    ``windows()``, sorted by first frame) as ``frames`` (an iterable of BGR frames of one
    video, in order) streams past: the crop of ``stage_video``, holding T frames, not a
    video. Used to score one video (scripts/inference/predictor.py)."""
    recent: deque = deque(maxlen=max(1, T))
    i = 0
    for f, frame in enumerate(frames):
        if i >= len(wins):
            break
        recent.append(frame)
        start, box = wins[i]
        if start + T - 1 == f:
            yield start, window_sample(recent, box, scale, size, interp)
            i += 1
    if i < len(wins):
        raise RuntimeError(f"iter_samples: the video ended before window {i} "
                           f"(first frame {wins[i][0]}, T = {T})")


def read_frames(video):
    """The decoded frames of ``video`` in order, one at a time: BGR uint8 arrays (H, W, 3)
    as cv2.VideoCapture returns them, up to the first frame it cannot read. ``video``: a
    path or URL, or an open cv2.VideoCapture (read on from where it stands). The capture
    is released when the frames end or the generator is closed. Detection, staging and
    scoring a video file (scripts/predictor.py) all read their frames through it."""
    cap = video if isinstance(video, cv2.VideoCapture) else cv2.VideoCapture(str(video))
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            yield frame
    finally:
        cap.release()


def stage_video(path: str, combos: list[dict], size: int, interp: str) -> int:
    """Decode a video once and write every combination's samples to its staging file.

    ``combos``: dicts with ``scale``, ``T``, ``windows`` (from ``windows()``) and ``dest``
    (final staging path; written to a temporary name, renamed when complete). Returns the
    number of frames decoded.
    """
    combos = [c for c in combos if c["windows"]]
    last = max((c["windows"][-1][0] + c["T"] for c in combos), default=0)
    state = []
    for c in combos:
        dest = Path(c["dest"])
        tmp = util.tmp_name(dest)
        state.append({"c": c, "f": open(tmp, "wb"), "tmp": tmp, "next": 0, "open": [],
                      "boxes": [scale_box(b, c["scale"]) for _, b in c["windows"]]})
    frames = read_frames(path)
    f = 0
    try:
        while f < last:
            frame = next(frames, None)
            if frame is None:
                raise RuntimeError(f"{path}: decoded {f} frames, detection saw more")
            for st in state:
                c, wins = st["c"], st["c"]["windows"]
                T = c["T"]
                while st["next"] < len(wins) and wins[st["next"]][0] == f:
                    st["open"].append([st["next"], np.empty((T, 3, size, size), np.uint8)])
                    st["next"] += 1
                for w in st["open"]:
                    i, buf = w
                    im = crop(frame, st["boxes"][i], size, interp)
                    buf[f - wins[i][0]] = im.transpose(2, 0, 1)
                while st["open"] and wins[st["open"][0][0]][0] + T - 1 == f:
                    st["f"].write(st["open"].pop(0)[1].tobytes())
            f += 1
        for st in state:
            st["f"].close()
            os.replace(st["tmp"], st["c"]["dest"])
    finally:
        frames.close()
        for st in state:
            if not st["f"].closed:
                st["f"].close()
            if st["tmp"].exists():
                util.cleanup(st["tmp"])
    return f
