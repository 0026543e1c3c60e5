"""Viola-Jones face detection, run once per video and cached (paper §4.1).

OpenCV's ``haarcascade_frontalface_default.xml`` on every decoded frame; the largest
face per frame is kept (ties: the top-left one). The result of a video -- one box per
frame, or none -- is cached in ``<cache>/<sha256 of the video file>_<hash of the
detector params>.npz``, so every scale and every T reuses it and a rerun after a kill
repeats no finished video. Failures (unreadable, zero frames, no face at all) are
cached too: the same bytes fail the same way.

Cache arrays: ``boxes`` int32 (F, 4) as x, y, w, h in pixels of the decoded frame,
-1 where no face was found; ``shape`` (height, width); ``status`` "ok" or "skip";
``reason`` text; ``note`` text (e.g. truncation).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from configs.files import atomic_path
from data_prep import samples, util
from data_prep.util import stable_hash

_CASCADES: dict[str, "cv2.CascadeClassifier"] = {}
# Tracking in prediction (detect_frame's ``near``): search margin (box sides) and size range.
TRACK_MARGIN = 0.5
TRACK_SIZE = 1.3


def detector_params(cfg_detect: dict) -> dict:
    """The parameters that change detection results (and so the cache key)."""
    return {
        "cascade": cfg_detect["cascade"],
        "scale_factor": float(cfg_detect["scale_factor"]),
        "min_neighbors": int(cfg_detect["min_neighbors"]),
        "min_size": int(cfg_detect["min_size"]),
        "downscale": float(cfg_detect["downscale"]),
        "opencv": cv2.__version__,
    }


def cascade(name: str) -> "cv2.CascadeClassifier":
    if name not in _CASCADES:
        path = name if os.path.isabs(name) else os.path.join(cv2.data.haarcascades, name)
        c = cv2.CascadeClassifier(path)
        if c.empty():
            raise RuntimeError(f"cannot load Haar cascade {path}")
        _CASCADES[name] = c
    return _CASCADES[name]


def largest_face(faces) -> tuple[int, int, int, int] | None:
    """Largest box by area; ties go to the smallest (y, x). None if there is none."""
    if faces is None or len(faces) == 0:
        return None
    best = min((tuple(int(v) for v in f) for f in faces),
               key=lambda b: (-b[2] * b[3], b[1], b[0]))
    return best


def detect_frame(frame: np.ndarray, params: dict, near=None) -> tuple[int, int, int, int] | None:
    """Largest face of one BGR frame, in pixels of that frame.

    ``near``: a face box (x, y, w, h) of the previous frame. The search is then limited to
    that box grown by ``TRACK_MARGIN`` of its side on every side, and to faces of
    1/``TRACK_SIZE`` to ``TRACK_SIZE`` times its side; where that finds nothing, the whole
    frame is searched as without ``near``. Faster (prediction: ``detect_video(track=True)``),
    and the same face within a few pixels (tests/test_predict.py states the tolerance); data
    preparation never uses it."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    d = params["downscale"]
    if d != 1.0:
        gray = cv2.resize(gray, None, fx=d, fy=d, interpolation=cv2.INTER_AREA)
    ms = max(1, int(round(params["min_size"] * d)))
    kw = dict(scaleFactor=params["scale_factor"], minNeighbors=params["min_neighbors"])
    box = None
    if near is not None:
        x, y, w, h = (int(round(v * d)) for v in near)
        m = int(TRACK_MARGIN * w)
        x0, y0 = max(0, x - m), max(0, y - m)
        roi = gray[y0:y + h + m, x0:x + w + m]
        lo, hi = max(ms, int(w / TRACK_SIZE)), int(np.ceil(w * TRACK_SIZE))
        faces = cascade(params["cascade"]).detectMultiScale(roi, minSize=(lo, lo), maxSize=(hi, hi), **kw)
        box = largest_face(faces)
        if box is not None:
            box = (box[0] + x0, box[1] + y0, box[2], box[3])
    if box is None:
        faces = cascade(params["cascade"]).detectMultiScale(gray, minSize=(ms, ms), **kw)
        box = largest_face(faces)
    if box is None or d == 1.0:
        return box
    return tuple(int(round(v / d)) for v in box)


def cache_path(cache_dir: Path, sha: str, params: dict) -> Path:
    return Path(cache_dir) / f"{sha}_{stable_hash(params, 12)}.npz"


def detect_frames(frames, params: dict, track: bool = False):
    """(frame shape, largest face) of every frame of the iterable ``frames``, in order; with
    ``track`` each frame is searched near the previous frame's face (``detect_frame``'s
    ``near``), the whole frame where there was none."""
    last = None
    for f in frames:
        last = detect_frame(f, params, near=last if track else None)
        yield f.shape[:2], last


def detect_video(path: str, params: dict, track: bool = False) -> dict:
    """Decode ``path`` and detect the largest face in every frame (``detect_frames``;
    ``track``: near the previous frame's face, prediction only)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return {"status": "skip", "reason": "cannot open or decode the video",
                "boxes": np.zeros((0, 4), np.int32), "shape": (0, 0), "note": ""}
    reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    boxes = []
    shape = (0, 0)
    try:
        for shape, b in detect_frames(samples.read_frames(cap), params, track):
            boxes.append(b if b is not None else (-1, -1, -1, -1))
    finally:
        cap.release()
    arr = np.asarray(boxes, np.int32).reshape(-1, 4)
    note = ""
    if len(arr) == 0:
        return {"status": "skip", "reason": "zero frames decoded (empty, truncated or corrupt)",
                "boxes": arr, "shape": shape, "note": ""}
    if reported > len(arr):
        note = f"truncated: decoded {len(arr)} of {reported} frames; using those"
    if not (arr[:, 2] > 0).any():
        return {"status": "skip", "reason": f"no face found in any of {len(arr)} frames",
                "boxes": arr, "shape": shape, "note": note}
    return {"status": "ok", "reason": "", "boxes": arr, "shape": shape, "note": note}


def save_result(path: Path, res: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, boxes=res["boxes"], shape=np.asarray(res["shape"], np.int32),
                 status=np.str_(res["status"]), reason=np.str_(res["reason"]),
                 note=np.str_(res["note"]))


def load_result(path: Path) -> dict:
    with np.load(path) as z:
        return {"boxes": z["boxes"], "shape": tuple(int(v) for v in z["shape"]),
                "status": str(z["status"]), "reason": str(z["reason"]), "note": str(z["note"])}


def _job(args):
    key, path, cpath, params = args
    t = time.perf_counter()
    res = detect_video(path, params)
    save_result(Path(cpath), res)
    return key, len(res["boxes"]), time.perf_counter() - t


@dataclass
class Detection:
    status: str
    reason: str
    note: str
    boxes: np.ndarray       # (F, 4) int32, -1 rows = no face
    shape: tuple            # (height, width)
    cache: Path

    @property
    def n_frames(self) -> int:
        return len(self.boxes)

    @property
    def has_face(self) -> np.ndarray:
        return self.boxes[:, 2] > 0


def estimate_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    cap.release()
    return max(n, 0)


def run_detection(jobs: list[tuple[str, Path, str]], cache_dir: Path, params: dict,
                  workers: int, progress: bool = True) -> tuple[dict, dict]:
    """Detect faces in every video not yet cached.

    ``jobs``: (key, path, sha256) per video. Returns ({key: Detection}, stats) where stats
    has the frames and seconds of the detection actually run now.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    for key, path, sha in jobs:
        cp = cache_path(cache_dir, sha, params)
        if not cp.exists():
            todo.append((key, str(path), str(cp), params))
    stats = {"videos": len(todo), "frames": 0, "seconds": 0.0, "workers": workers}
    if todo:
        # biggest files first: the last job to finish is a short one
        todo.sort(key=lambda j: (-os.path.getsize(j[1]), j[0]))
        total = sum(estimate_frames(Path(j[1])) for j in todo)
        bar = util.progress_bar(total, "detect", progress)
        t0 = time.perf_counter()
        for _, n, _ in util.run_jobs(_job, todo, workers, bar, "detect", advance=lambda r: r[1],
                                     init_serial=True):
            stats["frames"] += n
        stats["seconds"] = time.perf_counter() - t0
    out = {}
    for key, path, sha in jobs:
        cp = cache_path(cache_dir, sha, params)
        r = load_result(cp)
        out[key] = Detection(r["status"], r["reason"], r["note"], r["boxes"], r["shape"], cp)
    return out, stats
