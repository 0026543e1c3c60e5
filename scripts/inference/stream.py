"""Live scoring (the logic of ``python -m scripts.predict --source SOURCE --model DIR``).

SOURCE is a camera index (``0``), a stream URL (``rtsp://``, ``http://`` MJPEG: whatever
OpenCV's FFmpeg backend opens) or a video file read as if it were a stream. Frames are
scored as they arrive, with the code that scores a whole file (scripts/inference/predictor.py),
never a copy of it: Viola-Jones per frame (``data_prep.detect.detect_frames``, the
generator that ``detect_video`` runs; ``--detect track`` or ``full``), the window rule of
``data_prep.samples.WindowStream`` (the one ``samples.windows()`` applies to a whole
video) and the crop of ``data_prep.samples.window_sample``, on a rolling buffer of the
last T frames.

Stride: a stream is scored with the experiment's configured ``samples.stride`` (default
ceil(T/2)), not stride 1, so that it gives exactly the windows, scores and decision of the
same video scored whole (tests/test_stream.py checks it): a new decision every stride
frames (T = 7: every 4th frame, 7.5 a second at 30 frames/s).

Frames are read by a thread of their own into a queue, so a live source is emptied while
the net runs. A window is scored as soon as its last frame has been processed when no
newer frame is waiting (the stream is kept up with: a batch of one, the lowest latency);
when frames are waiting, windows are held until ``batch`` of them (default 64 // T, as for
a file) or the queue runs empty, and go through the net together: behind a live source, or
on a file, which is read ahead, the batches grow and so does the frame rate. Batching
changes when a window is reported, never which windows there are or their scores (float
rounding apart). Each window has two decisions:

- the window's own: its p(genuine) against the per-sample validation threshold
  (``threshold.json`` ``threshold``, the one of the tables: the paper's per-clip decision);
- the running video decision: the mean p(genuine) of every window so far against the
  video-level threshold (``video_threshold``), whole-file ``predict``'s rule; when the
  stream ends it is the whole file's decision.

Frame rate: every frame is processed in order and none is dropped (dropping would change
the windows). ``capacity_fps`` = frames / seconds spent on them (detection, crops,
network, drawing), waiting for frames excluded: the frame rate it keeps up with. A live
source faster than that fills the queue (``QUEUE_FRAMES``); the reader then waits and a
camera driver drops frames, so windows span more time than in training. Ctrl-C ends a
camera stream like the end of a file.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from configs.files import atomic_path
from data_prep import detect, samples
from scripts.inference import predictor as P

NO_FACE = (-1, -1, -1, -1)
# Frames read ahead of processing at most (640x480: 0.9 MB each).
QUEUE_FRAMES = 128


def parse_source(source):
    """A camera index (int) for an all-digit ``source``, else the URL or path as given."""
    s = str(source).strip()
    return int(s) if s.isdigit() else s


def open_source(source):
    """cv2.VideoCapture of ``source``; PredictError (exit 3 missing file, 4 cannot open)."""
    import cv2
    src = parse_source(source)
    if isinstance(src, str) and "://" not in src:
        P.check_video(src)
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        cap.release()
        what = (f"camera {src}: no such camera, or it is busy or not readable by this user"
                if isinstance(src, int) else
                f"{src}: OpenCV cannot open it (check the address, that the stream is up, "
                f"and that it is a format OpenCV's FFmpeg backend reads)")
        raise P.PredictError(P.EXIT_UNREADABLE, f"cannot read the source {what}")
    return cap


@dataclass
class Window:
    """One scored window of a stream, as reported when its last frame arrived."""
    start: int
    end: int
    box: tuple
    p: float
    threshold: float            # per-sample: compared with this window's p
    mean: float                 # mean p of every window so far
    count: int
    video_threshold: float      # compared with ``mean``
    capacity_fps: float
    latency_s: float            # last frame read -> score

    @property
    def decision(self) -> str:
        return "GENUINE" if self.p >= self.threshold else "ATTACK"

    @property
    def running_decision(self) -> str:
        return "GENUINE" if self.mean >= self.video_threshold else "ATTACK"

    def to_json(self) -> dict:
        return {"type": "window", "first_frame": self.start, "last_frame": self.end,
                "box": [int(v) for v in self.box], "p_genuine": self.p,
                "window_decision": self.decision, "sample_threshold": self.threshold,
                "running_mean_p_genuine": self.mean, "windows": self.count,
                "running_decision": self.running_decision, "threshold": self.video_threshold,
                "capacity_fps": self.capacity_fps, "latency_ms": 1000 * self.latency_s}

    def text(self) -> str:
        return (f"frames {self.start:5d}-{self.end:<5d} p(genuine) {self.p:.4f} {self.decision:7s} "
                f"| mean of {self.count}: {self.mean:.4f} {self.running_decision:7s} "
                f"| {self.capacity_fps:6.1f} frames/s")


class _Clock:
    def __init__(self):
        self.read = self.detect = self.crop = self.net = self.busy = 0.0
        self.t_frame = 0.0          # when processing of the current frame began
        self.t_arrived = 0.0        # when the current frame had been read from the source
        self.forwards = 0
        self.latencies: list[float] = []


class _Reader:
    """Reads ``cap`` (at most ``max_frames``; 0: until the source ends) in a thread into a
    bounded queue of (frame, time read); None marks the end."""

    def __init__(self, cap, max_frames: int):
        self.cap, self.max_frames = cap, max_frames
        self.q: queue.Queue = queue.Queue(QUEUE_FRAMES)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
        self.thread.start()

    def _put(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set() and (not self.max_frames or n < self.max_frames):
                ok, frame = self.cap.read()
                if not ok or frame is None:
                    break
                n += 1
                self._put((frame, time.perf_counter()))
        finally:
            self._put(None)

    def frames(self, clock: _Clock, recent: deque):
        """The frames in order, each put into the rolling buffer ``recent`` as detection
        takes it."""
        while True:
            t = time.perf_counter()
            item = self.q.get()
            clock.t_frame = time.perf_counter()
            clock.read += clock.t_frame - t
            if item is None:
                return
            recent.append(item[0])
            clock.t_arrived = item[1]
            yield item[0]

    @property
    def waiting(self) -> bool:
        """Is a newer frame (or the end) already queued?"""
        return not self.q.empty()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class _Live:
    """Windows and scores of a stream so far; windows wait in ``pending`` until ``batch``
    of them, or all that are ready when no newer frame waits, go through the net together."""

    def __init__(self, model: P.Model, scorer, on_window, batch: int = 1):
        s = model.cfg["samples"]
        self.model, self.scorer, self.on_window, self.s = model, scorer, on_window, s
        self.windows = samples.WindowStream(model.T, int(s["stride"]), s["missing_face"])
        self.recent: deque = deque(maxlen=model.T)
        self.boxes, self.starts, self.wboxes, self.scores = [], [], [], []
        self.batch, self.pending = batch, []     # (start, box, sample, when its last frame was read)
        self.clock = _Clock()
        self.shape = (0, 0)

    def frame(self, box, waiting: bool) -> None:
        """Detection has found ``box`` (or None) in the newest frame of ``recent``;
        ``waiting``: a newer frame is already queued (hold the window for a batch)."""
        m, c = self.model, self.clock
        c.detect += time.perf_counter() - c.t_frame
        b = NO_FACE if box is None else tuple(int(v) for v in box)
        self.boxes.append(b)
        w = self.windows.push(b)
        if w is not None:
            t0 = time.perf_counter()
            x = samples.window_sample(self.recent, w[1], m.exp.scale, m.size, self.s["interp"])
            c.crop += time.perf_counter() - t0
            self.pending.append((w[0], w[1], x, c.t_arrived))
        if len(self.pending) >= self.batch or not waiting:
            self.flush()

    def flush(self) -> None:
        """Score the pending windows in one forward pass and report each."""
        if not self.pending:
            return
        m, c = self.model, self.clock
        t1 = time.perf_counter()
        ps = self.scorer(np.stack([x for _, _, x, _ in self.pending]))
        t2 = time.perf_counter()
        c.net += t2 - t1
        c.forwards += 1
        busy = c.busy + (t2 - c.t_frame)
        for (start, box, _, t_read), p in zip(self.pending, ps):
            c.latencies.append(t2 - t_read)
            self.starts.append(start)
            self.wboxes.append(box)
            self.scores.append(float(p))
            if self.on_window:
                self.on_window(Window(start, start + m.T - 1, box, float(p), m.sample_threshold,
                                      float(np.mean(self.scores)), len(self.scores), m.threshold,
                                      len(self.boxes) / busy if busy else 0.0, t2 - t_read))
        self.pending.clear()

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.scores)) if self.scores else None


def _run(cap, live: _Live, detect_mode: str, max_frames: int, out, fps: float) -> str:
    """Process every frame of ``cap``; draw them into ``out`` ((temporary path, final
    path) or None). Returns a note ("" or how the stream was stopped)."""
    params = detect.detector_params(live.model.cfg["detect"])
    reader = _Reader(cap, max_frames)
    frames = reader.frames(live.clock, live.recent)
    writer = None
    try:
        for shape, box in detect.detect_frames(frames, params, track=detect_mode == "track"):
            live.shape = tuple(shape)
            live.frame(box, reader.waiting)
            if out is not None:
                if writer is None:
                    writer = P.open_writer(out[0], fps, shape[1], shape[0], out[1])
                im = live.recent[-1].copy()        # the buffer keeps the frame undrawn
                writer.write(P.draw_frame(im, live.boxes[-1], live.mean, live.model.threshold))
            live.clock.busy += time.perf_counter() - live.clock.t_frame
    except KeyboardInterrupt:
        note = f"stopped by Ctrl-C after {len(live.boxes)} frames"
    else:
        note = ""
    finally:
        reader.close()
        if writer is not None:
            writer.release()
    t = time.perf_counter()
    live.flush()                          # the last windows of a batch that did not fill
    live.clock.busy += time.perf_counter() - t
    return note


def score_stream(source, model: P.Model, backend: str = "caffe", detect_mode: str = "track",
                 max_frames: int = 0, scorer=None, on_window=None, annotate=None,
                 batch: int | None = None) -> P.Result:
    """Score ``source`` as its frames arrive (module docstring); ``on_window(Window)`` is
    called for each window when scored; ``batch``: at most that many windows per forward
    pass (default 64 // T; 1: each window alone, at once); ``annotate``: also write the
    frames with face box and running decision to that .avi/.mp4 (atomically). Returns the
    Result a whole file gets."""
    import cv2
    from pathlib import Path
    if detect_mode not in P.DETECT_MODES:
        raise ValueError(f"detect mode {detect_mode!r}: choose one of {P.DETECT_MODES}")
    batch = max(1, 64 // model.T) if batch is None else batch
    if batch < 1:
        raise ValueError("batch must be >= 1")
    scorer = scorer or P.BACKENDS[backend](model)
    # A warm-up forward at the largest batch: the first window should not wait for allocation.
    scorer(np.zeros((batch, model.T, 3, model.size, model.size), np.float32))
    cap = open_source(source)
    src_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    live = _Live(model, scorer, on_window, batch)
    t0 = time.perf_counter()
    try:
        ann = None if annotate is None else Path(annotate)
        with (atomic_path(ann, ann.suffix) if ann is not None
              else contextlib.nullcontext()) as tmp:
            note = _run(cap, live, detect_mode, max_frames, None if ann is None else (tmp, ann),
                        src_fps if src_fps > 0 else 15.0)
            _check(source, live, model)
    finally:
        cap.release()
    return _result(source, model, backend, live, note, detect_mode, src_fps,
                   time.perf_counter() - t0)


def _check(source, live: _Live, model: P.Model) -> None:
    F = len(live.boxes)
    faces = sum(b[2] > 0 for b in live.boxes)
    if F == 0:
        raise P.PredictError(P.EXIT_UNREADABLE, f"cannot read the source {source}: zero frames "
                                                f"decoded")
    if faces == 0:
        raise P.PredictError(P.EXIT_NO_FACE, f"{source}: no face found in any of {F} frames; "
                                             f"a frontal face must be visible")
    if not live.scores:
        s = model.cfg["samples"]
        raise P.PredictError(P.EXIT_NO_FACE, f"{source}: faces in {faces} of {F} frames, but no "
                                             f"window of T = {model.T} frames (missing_face = "
                                             f"{s['missing_face']}) to score")


def _result(source, model, backend, live: _Live, note, detect_mode, src_fps, wall) -> P.Result:
    c, F = live.clock, len(live.boxes)
    boxes = np.asarray(live.boxes, np.int32).reshape(-1, 4)
    res = P.Result(str(source), model, backend, F, live.shape, int((boxes[:, 2] > 0).sum()),
                   starts=live.starts, boxes=live.wboxes, frame_boxes=boxes,
                   scores=np.asarray(live.scores, np.float64), note=note)
    cap_fps = F / c.busy if c.busy else None
    res.timing = {"frames": F, "windows": len(live.scores), "batch": live.batch, "detect": detect_mode,
                  "stride": model.stride, "source_fps": src_fps or None,
                  "read_s": c.read, "detect_s": c.detect, "sample_s": c.crop, "net_s": c.net,
                  "busy_s": c.busy, "wall_s": wall, "capacity_fps": cap_fps,
                  "wall_fps": F / wall if wall else None,
                  "keeps_up": (cap_fps >= src_fps) if (cap_fps and src_fps) else None,
                  "latency_ms_mean": 1000 * float(np.mean(c.latencies)),
                  "latency_ms_max": 1000 * float(np.max(c.latencies)),
                  "net_ms_per_window": 1000 * c.net / len(live.scores),
                  "forwards": c.forwards, "mean_batch": len(live.scores) / c.forwards}
    return res


def format_summary(r: P.Result) -> str:
    """The end-of-stream lines: the whole stream's decision and the frame rate."""
    m, t = r.model, r.timing
    h, w = r.shape
    src = f"{t['source_fps']:.1f}" if t["source_fps"] else "unknown"
    keeps = {True: "yes", False: "NO (it falls behind)", None: "unknown"}[t["keeps_up"]]
    lines = [f"source:    {r.video} ({w}x{h}, {r.frames} frames, face in {r.faces}; "
             f"the source reports {src} frames/s)",
             f"model:     {m.dir} ({m.exp.name}: T={m.T}, scale {m.exp.scale}, input {m.size}x"
             f"{m.size}, stride {m.stride}; backend {r.backend})"]
    if r.note:
        lines.append(f"note:      {r.note}")
    lines += [f"windows:   {len(r.scores)}",
              f"mean p(genuine): {r.mean:.4f}",
              f"threshold:       {m.threshold:.4f} (video-level; each window's decision used the "
              f"per-sample threshold {m.sample_threshold:.4f})",
              f"rule:            {P.DECISION_RULE}",
              f"decision:        {r.decision}",
              f"frame rate: keeps up with {t['capacity_fps']:.1f} frames/s (detection "
              f"{1000 * t['detect_s'] / r.frames:.1f} ms/frame, crops + network "
              f"{1000 * (t['sample_s'] + t['net_s']) / len(r.scores):.1f} ms/window, "
              f"{t['mean_batch']:.1f} windows per forward pass); "
              f"keeps up with the source: {keeps}; {t['wall_fps']:.1f} frames/s end to end; "
              f"latency {t['latency_ms_mean']:.1f} ms mean, {t['latency_ms_max']:.1f} max"]
    return "\n".join(lines)
