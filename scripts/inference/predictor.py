"""Score one video file with a trained experiment (the logic of ``scripts/predict.py``).

The video goes through the training pipeline's own code, with the experiment's saved
``config.yaml``: Viola-Jones (``data_prep.detect.detect_video`` with the ``detect``
section), windows (``data_prep.samples.windows``: T from the folder name, stride and
missing_face from ``samples``), box scaling, zero fill and resizing
(``data_prep.samples.iter_samples``, the crop of ``stage_video``; ``samples.size``,
``samples.interp``). ``samples.max_per_video`` thins the training set only: every
window of the video is scored. Windows go through the deploy net ``batch`` at a time
(Caffe, OpenCV's DNN module: ``scripts/inference/opencv_dnn.py``, or ONNX Runtime on the folder's
``model.onnx``: ``scripts/inference/onnx_run.py``). A camera or stream, scored as its frames arrive
with the same detection, windows and crops: ``scripts/inference/stream.py``. The video's score is the
mean p(genuine) of its windows; it is GENUINE when that mean >= the experiment's
video-level validation threshold, else ATTACK (``eval.metrics``: score >= threshold is
accepted). The threshold is of the same kind as the score: the EER threshold of the
validation videos' mean p(genuine), which model selection saves as
``video_threshold`` in ``threshold.json``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import yaml

from data_prep import detect, samples
from configs import errors, grammar
from configs.errors import UserError
from configs.files import atomic_path

DECISION_RULE = ("GENUINE when the mean p(genuine) of the video's windows >= the video-level "
                 "threshold, else ATTACK")

# Exit codes of ``python -m scripts.predict`` (one per kind of bad input), from the
# project's one table (configs/errors.py).
EXIT_OK = errors.EXIT_OK
EXIT_USAGE = errors.EXIT_USAGE              # bad command line (argparse), an unwritable --annotate
EXIT_MISSING = errors.EXIT_MISSING          # the video file does not exist
EXIT_UNREADABLE = errors.EXIT_UNREADABLE    # the file cannot be opened or decodes to zero frames
EXIT_NO_FACE = errors.EXIT_NO_FACE          # no face in any frame, or no window of T frames with faces
EXIT_MODEL = errors.EXIT_MODEL              # the model folder is not a finished experiment
EXIT_BACKEND = errors.EXIT_BACKEND          # the chosen backend cannot load (e.g. Caffe not importable)


class PredictError(UserError):
    """Bad input; ``code`` (= ``exit_code``), one of the EXIT_* above, is the exit code,
    the message says what to do."""

    def __init__(self, code: int, message: str):
        if code not in errors.EXIT_CODES or code in (errors.EXIT_OK, errors.EXIT_FAILED):
            raise ValueError(f"PredictError: exit code {code} is not an error of configs/errors.py")
        super().__init__(message)
        self.code = self.exit_code = code


@dataclass
class Model:
    dir: Path
    exp: grammar.Experiment
    cfg: dict
    threshold: float            # video-level: compared with a video's mean p(genuine)
    threshold_rule: str
    sample_threshold: float     # the per-sample threshold of the tables, for reference

    @property
    def T(self) -> int:
        return self.exp.T

    @property
    def size(self) -> int:
        return int(self.cfg["samples"]["size"])

    @property
    def stride(self) -> int:
        return samples.stride_for(self.T, int(self.cfg["samples"]["stride"]))

    @property
    def deploy(self) -> Path:
        return self.dir / "deploy.prototxt"

    @property
    def weights(self) -> Path:
        return self.dir / "model.caffemodel"


_NEEDED = {"samples": ("size", "interp", "stride", "missing_face"),
           "detect": ("cascade", "scale_factor", "min_neighbors", "min_size", "downscale")}


def load_model(path) -> Model:
    """A finished experiment folder ``RUN/experiments/<model>_T<T>_s<scale>/full`` (or
    its parent, when that has ``full/``)."""
    d = Path(path)
    if not d.is_dir():
        raise PredictError(EXIT_MODEL, f"model folder not found: {d}. Pass an experiment folder "
                                       f"such as RUN/experiments/cnn_T1_s1.8/full")
    if (d / "full").is_dir() and not (d / "DONE").exists():
        d = d / "full"
    try:
        exp = grammar.parse(f"{d.parent.name}/{d.name}")
    except ValueError:
        raise PredictError(EXIT_MODEL, f"{d}: not an experiment folder (expected "
                                       f"RUN/experiments/<model>_T<T>_s<scale>/full)") from None
    if not (d / "DONE").exists():
        raise PredictError(EXIT_MODEL, f"{d}: the experiment is not finished (no DONE file). "
                                       f"Train it first: python -m scripts.train --experiment "
                                       f"{exp.name}/{exp.split} --run RUN")
    missing = [n for n in ("config.yaml", "deploy.prototxt", "model.caffemodel", "threshold.json")
               if not (d / n).is_file()]
    if missing:
        hint = (" Fold models have no test threshold: use the full/ folder."
                if "threshold.json" in missing and exp.split != "full" else "")
        raise PredictError(EXIT_MODEL, f"{d}: missing {', '.join(missing)}; this is not a finished "
                                       f"full experiment.{hint}")
    # The saved config is already resolved: read it as it is (not merged into today's
    # configs/default.yaml, whose keys may have changed since the model was trained).
    try:
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        for sec, keys in _NEEDED.items():
            for k in keys:
                cfg[sec][k]
        thr = json.loads((d / "threshold.json").read_text())
        sample = float(thr["threshold"])
    except (yaml.YAMLError, ValueError, KeyError, TypeError) as e:
        raise PredictError(EXIT_MODEL, f"{d}: unreadable config.yaml or threshold.json: {e}") from e
    if thr.get("video_threshold") is None:
        raise PredictError(EXIT_MODEL, f"{d / 'threshold.json'}: no video_threshold (the model "
                                       f"predates video-level thresholds); delete {d} and run "
                                       f"the full experiment again")
    return Model(d, exp, cfg, float(thr["video_threshold"]), str(thr.get("video_rule", "")), sample)


# ---------------------------------------------------------------- backends
class CaffeScorer:
    def __init__(self, model: Model):
        try:
            from scripts.training.caffe_io import caffe_mode
            caffe = caffe_mode(None)
        except ImportError as e:
            raise PredictError(EXIT_BACKEND, f"cannot import Caffe ({e}); use --backend opencv, "
                                             f"which needs only OpenCV") from e
        self.net = caffe.Net(str(model.deploy), str(model.weights), caffe.TEST)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        from scripts.training.caffe_io import genuine_prob
        self.net.blobs["data"].reshape(*data.shape)
        self.net.reshape()
        self.net.blobs["data"].data[...] = data
        return genuine_prob(self.net.forward(), len(data))


class OpenCVScorer:
    def __init__(self, model: Model):
        from scripts.inference import opencv_dnn
        self._mod = opencv_dnn
        self.net = opencv_dnn.load_net(model.deploy, model.weights)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        return self._mod.genuine_prob(self.net, data)


class OnnxScorer:
    """ONNX Runtime on ``model.onnx`` of the experiment folder (``make onnx``)."""

    def __init__(self, model: Model):
        path = model.dir / "model.onnx"
        if not path.is_file():
            raise PredictError(EXIT_BACKEND, f"{path} not found: export it first with "
                                             f"make onnx MODEL={model.dir}")
        try:
            from scripts.inference import onnx_run
        except ImportError as e:
            raise PredictError(EXIT_BACKEND, f"cannot import onnxruntime ({e}): run make setup") from e
        self._mod = onnx_run
        self.session = onnx_run.load_session(path)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        return self._mod.genuine_prob(self.session, data)


BACKENDS = {"caffe": CaffeScorer, "opencv": OpenCVScorer, "onnx": OnnxScorer}


# ---------------------------------------------------------------- scoring
@dataclass
class Result:
    video: str
    model: Model
    backend: str
    frames: int
    shape: tuple
    faces: int
    starts: list = field(default_factory=list)
    boxes: list = field(default_factory=list)        # window's minimum face box (x, y, w, h)
    frame_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))  # per frame
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    note: str = ""
    timing: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def decision(self) -> str:
        return "GENUINE" if self.mean >= self.model.threshold else "ATTACK"

    def to_json(self) -> dict:
        m = self.model
        return {"video": self.video, "model": str(m.dir), "experiment": f"{m.exp.name}/{m.exp.split}",
                "backend": self.backend, "T": m.T, "scale": m.exp.scale, "input_size": m.size,
                "stride": m.stride, "frames": self.frames, "frame_size": list(self.shape),
                "frames_with_face": self.faces, "note": self.note,
                "windows": [{"first_frame": int(s), "box": [int(v) for v in b], "p_genuine": float(p)}
                            for s, b, p in zip(self.starts, self.boxes, self.scores)],
                "mean_p_genuine": self.mean, "threshold": m.threshold, "threshold_level": "video",
                "threshold_rule": m.threshold_rule, "sample_threshold": m.sample_threshold,
                "decision_rule": DECISION_RULE, "decision": self.decision, "timing": self.timing}


def check_video(video) -> Path:
    p = Path(video)
    if not p.exists():
        raise PredictError(EXIT_MISSING, f"video not found: {p}")
    if not p.is_file():
        raise PredictError(EXIT_MISSING, f"not a file: {p}")
    return p


DETECT_MODES = ("track", "full")


def detect_faces(video: Path, model: Model, mode: str = "track") -> dict:
    """``data_prep.detect.detect_video`` with the experiment's detector settings: ``full``
    searches every frame whole, as data preparation did for training; ``track`` searches
    near the previous frame's face (3-4x faster; the same faces, boxes within 12 % of the
    face side of ``full``'s: tests/test_predict.py)."""
    if mode not in DETECT_MODES:
        raise ValueError(f"detect mode {mode!r}: choose one of {DETECT_MODES}")
    res = detect.detect_video(str(video), detect.detector_params(model.cfg["detect"]),
                              track=mode == "track")
    n = len(res["boxes"])
    if n == 0:
        raise PredictError(EXIT_UNREADABLE, f"{video}: cannot read the video ({res['reason']}). "
                                            f"Check that it is a video file OpenCV can decode")
    if res["status"] != "ok":
        raise PredictError(EXIT_NO_FACE, f"{video}: {res['reason']}; a frontal face must be visible")
    return res


def score_video(video, model: Model, backend: str = "caffe", batch: int | None = None,
                scorer=None, detect_mode: str = "track") -> Result:
    """Detect (``detect_faces``: ``detect_mode``), sample and score every window of
    ``video`` with ``model``, ``batch`` windows per forward pass (default: 64 frames' worth,
    64 // T windows: a T = 7 batch of 64 windows would hold 448 frames' activations)."""
    batch = max(1, 64 // model.T) if batch is None else batch
    if batch < 1:
        raise ValueError("batch must be >= 1")
    video = check_video(video)
    scorer = scorer or BACKENDS[backend](model)
    s_cfg = model.cfg["samples"]
    t0 = time.perf_counter()
    det = detect_faces(video, model, detect_mode)
    t_det = time.perf_counter() - t0
    boxes = det["boxes"]
    wins = samples.windows(boxes, model.T, int(s_cfg["stride"]), s_cfg["missing_face"], 0)
    faces = int((boxes[:, 2] > 0).sum())
    if not wins:
        raise PredictError(EXIT_NO_FACE, f"{video}: faces in {faces} of {len(boxes)} frames, but no "
                                         f"window of T = {model.T} frames (missing_face = "
                                         f"{s_cfg['missing_face']}) to score")
    res = Result(str(video), model, backend, len(boxes), tuple(det["shape"]), faces,
                 note=det["note"], frame_boxes=boxes)
    t_samp = t_net = 0.0
    scores, buf = [], []

    def flush():
        nonlocal t_net
        t = time.perf_counter()
        scores.append(scorer(np.stack(buf)))
        t_net += time.perf_counter() - t
        buf.clear()

    t = time.perf_counter()
    for start, x in samples.iter_samples(samples.read_frames(video), wins, model.T,
                                         model.exp.scale, model.size, s_cfg["interp"]):
        res.starts.append(start)
        buf.append(x)
        if len(buf) == batch:
            t_samp += time.perf_counter() - t
            flush()
            t = time.perf_counter()
    t_samp += time.perf_counter() - t
    if buf:
        flush()
    res.boxes = [b for _, b in wins]
    res.scores = np.concatenate(scores)
    F = len(boxes)
    res.timing = {"frames": F, "windows": len(wins), "batch": batch, "detect": detect_mode,
                  "detect_s": t_det, "sample_s": t_samp, "net_s": t_net,
                  "detect_fps": F / t_det if t_det else None,
                  "net_windows_per_s": len(wins) / t_net if t_net else None,
                  "net_fps": F / t_net if t_net else None,
                  "total_fps": F / (t_det + t_samp + t_net)}
    return res


def format_result(r: Result) -> str:
    m = r.model
    h, w = r.shape
    lines = [f"video:     {r.video} ({w}x{h}, {r.frames} frames, face in {r.faces})",
             f"model:     {m.dir} ({m.exp.name}: T={m.T}, scale {m.exp.scale}, input {m.size}x{m.size},"
             f" stride {m.stride}; backend {r.backend})"]
    if r.note:
        lines.append(f"note:      {r.note}")
    lines.append(f"windows:   {len(r.scores)}")
    lines.append("  first_frame  p(genuine)")
    lines += [f"  {s:11d}  {p:10.4f}" for s, p in zip(r.starts, r.scores)]
    t = r.timing
    lines += [f"mean p(genuine): {r.mean:.4f}",
              f"threshold:       {m.threshold:.4f} (video-level: the EER threshold of the validation "
              f"videos' mean p(genuine), threshold.json)",
              f"rule:            {DECISION_RULE}",
              f"decision:        {r.decision} (mean {'>=' if r.decision == 'GENUINE' else '<'} "
              f"threshold)",
              f"time: detection {t['detect_s']:.2f} s ({t['detect_fps']:.1f} frames/s), sampling "
              f"{t['sample_s']:.2f} s, network {t['net_s']:.3f} s ({t['net_fps']:.1f} frames/s, "
              f"{t['net_windows_per_s']:.1f} windows/s, batch {t['batch']}); overall "
              f"{t['total_fps']:.1f} frames/s"]
    return "\n".join(lines)


def open_writer(out, fps: float, width: int, height: int, shown=None):
    """cv2.VideoWriter for ``out`` (.mp4: mp4v, else MJPG); PredictError naming ``shown``
    (default ``out``; the final name where ``out`` is its temporary sibling) if it cannot open."""
    import cv2
    out = Path(out)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if out.suffix.lower() == ".mp4" else "MJPG"))
    wr = cv2.VideoWriter(str(out), fourcc, fps, (width, height))
    if not wr.isOpened():
        raise PredictError(EXIT_USAGE, f"cannot write {shown or out}; use a .avi or .mp4 name "
                                       f"in a writable folder")
    return wr


def draw_frame(frame: np.ndarray, box, mean: float | None, thr: float) -> np.ndarray:
    """Draw the face ``box`` (x, y, w, h; w <= 0: none) and the running mean p(genuine)
    of the windows scored so far (None: none yet) on ``frame``, in place; returns it."""
    import cv2
    if mean is not None:
        colour = (0, 200, 0) if mean >= thr else (0, 0, 230)
        text = f"p(genuine) {mean:.3f} {'GENUINE' if mean >= thr else 'ATTACK'} (thr {thr:.3f})"
    else:
        colour, text = (200, 200, 200), "scoring..."
    if box[2] > 0:
        cv2.rectangle(frame, (int(box[0]), int(box[1])), (int(box[0] + box[2]), int(box[1] + box[3])),
                      colour, 2)
    cv2.putText(frame, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return frame


def annotate(r: Result, out) -> Path:
    """Write the video with each frame's face box and the running mean score drawn on it."""
    import cv2
    out = Path(out)
    det_boxes = r.frame_boxes  # the scoring pass's Viola-Jones boxes: no second detection
    cap = cv2.VideoCapture(r.video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 15.0
    cap.release()
    h, w = r.shape
    ends = np.asarray(r.starts) + r.model.T - 1
    with atomic_path(out, out.suffix) as tmp:      # the writer picks the codec by suffix
        wr = open_writer(tmp, fps, w, h, out)
        try:
            for f, frame in enumerate(samples.read_frames(r.video)):
                done = r.scores[ends <= f]
                b = det_boxes[f] if f < len(det_boxes) else (-1, -1, -1, -1)
                draw_frame(frame, b, float(done.mean()) if done.size else None, r.model.threshold)
                wr.write(frame)
        finally:
            wr.release()
    return out
