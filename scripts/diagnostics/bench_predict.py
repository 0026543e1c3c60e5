"""End-to-end speed of ``python -m scripts.predict`` at the paper's size (``make bench``).

Writes a 640x480 MJPG video of a face (skimage's astronaut, drifting a few pixels per
frame) and, for the CNN (s = 2.6) and both LSTM-CNNs (T = 7, s = 1.8), a model
folder in the layout of a finished experiment: the paper config, the deploy net at
128x128 and random weights (speed does not depend on them). Then scores the video with
``scripts.inference.predictor.score_video`` -- decode, Viola-Jones with the paper's detector
settings, crops, the network -- and prints frames/s with the split, once with the
full-frame detector of training (``--detect full``) and once tracking the face (predict's
default, ``--detect track``). Then live scoring (``predict --source``, scripts/inference/stream.py:
a window scored as soon as its last frame arrives) of the same frames served as MJPEG over
HTTP from 127.0.0.1 as fast as they are read, with Caffe and with ONNX Runtime on the
model's ONNX export, each window alone (``--batch 1``) and batched (the default): the
frame rate it keeps up with (frames / seconds spent on them).

    python -m scripts.diagnostics.bench_predict [--frames 300]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import yaml

from configs import errors, grammar

MODELS = (("cnn", 1, 2.6), ("peephole", 7, 1.8), ("lstm", 7, 1.8))


def write_face_video(path: Path, frames: int = 300, size=(640, 480), fps: float = 30.0) -> Path:
    """An MJPG .avi of ``frames`` frames: the astronaut's face on a grey background."""
    from skimage import data
    face = cv2.cvtColor(data.astronaut()[20:260, 110:330], cv2.COLOR_RGB2BGR)   # 240 x 220
    w, h = size
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not out.isOpened():
        raise RuntimeError(f"OpenCV cannot write MJPG video {path}")
    rng = np.random.default_rng(0)
    for i in range(frames):
        frame = np.full((h, w, 3), 110, np.uint8)
        frame += rng.integers(0, 8, frame.shape, dtype=np.uint8)
        x, y = 200 + int(20 * np.sin(i / 15)), 120 + int(10 * np.cos(i / 20))
        frame[y:y + face.shape[0], x:x + face.shape[1]] = face
        out.write(frame)
    out.release()
    return path


def write_model(root: Path, model: str, T: int, scale: float) -> Path:
    """A finished-experiment folder with random weights (paper config, 128x128)."""
    import caffe
    from configs import load_config
    from prototxt import generate as G
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "paper.yaml")
    d = grammar.RunLayout(root).exp_dir(grammar.Experiment(model, T, scale, "full"))
    d.mkdir(parents=True)
    lst = d / "none.txt"
    lst.write_text("")
    paths = G.write_experiment_nets(cfg, model, T, lst, lst, d)
    caffe.Net(str(paths["deploy"]), caffe.TEST).save(str(d / "model.caffemodel"))
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / "threshold.json").write_text(json.dumps({"threshold": 0.5, "video_threshold": 0.5,
                                                 "rule": "benchmark"}))
    (d / "DONE").write_text("")
    return d


def whole_file(P, video: Path, models: list) -> None:
    print(f"{'model':<16}{'detect':>8}{'batch':>6}{'frames/s':>10}{'detect s':>10}{'crops s':>9}"
          f"{'net s':>8}{'faces':>7}")
    for name, m in models:
        for mode in ("full", "track"):
            r = P.score_video(video, m, detect_mode=mode)
            t = r.timing
            print(f"{name:<16}{mode:>8}{t['batch']:>6}{t['total_fps']:>10.1f}{t['detect_s']:>10.2f}"
                  f"{t['sample_s']:>9.2f}{t['net_s']:>8.2f}{r.faces:>7}", flush=True)


def live(video: Path, models: list) -> None:
    from scripts.diagnostics import mjpeg
    from scripts.inference import onnx_export
    from scripts.inference import stream
    jpegs = mjpeg.jpeg_frames(video)
    print(f"live, predict --source http://127.0.0.1:PORT/stream.mjpg ({len(jpegs)} JPEG frames "
          f"sent as fast as read, detect track; --batch 1, then the default 64 // T)")
    print(f"{'model':<16}{'backend':>8}{'batch':>6}{'keeps up':>10}{'detect ms':>11}{'net ms':>8}"
          f"{'windows':>9}")
    for name, m in models:
        onnx_export.export(m.dir)
        for batch in (1, None):
            for backend in ("caffe", "onnx"):
                with mjpeg.MJPEGServer(jpegs) as url:
                    r = stream.score_stream(url, m, backend=backend, batch=batch)
                t = r.timing
                print(f"{name:<16}{backend:>8}{t['mean_batch']:>6.1f}{t['capacity_fps']:>10.1f}"
                      f"{1000 * t['detect_s'] / t['frames']:>11.1f}{t['net_ms_per_window']:>8.1f}"
                      f"{t['windows']:>9}", flush=True)
    print("batch: mean windows per forward pass; keeps up: frames/s over the time spent on them "
          "(detection, crops, network), waiting for the stream excluded; detect ms per frame, "
          "net ms per window (latency is not shown: frames sent as fast as read wait in the queue)")


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    a = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    from scripts.inference import predictor as P
    from scripts.diagnostics.bench import gemm_gflops
    with tempfile.TemporaryDirectory() as d:
        video = write_face_video(Path(d) / "face_640x480.avi", a.frames)
        print(f"predict, end to end: {a.frames} frames of 640x480 MJPG, paper detector settings, "
              f"128x128 nets, {os.cpu_count()} cores, numpy float32 GEMM 2048^3 "
              f"{gemm_gflops():.0f} GFLOP/s, load average {os.getloadavg()[0]:.1f}")
        models = [(model if T == 1 else f"{model}_T{T}",
                   P.load_model(write_model(Path(d) / model, model, T, scale)))
                  for model, T, scale in MODELS]
        whole_file(P, video, models)
        live(video, models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
