"""Score a video with a trained experiment: ``python -m scripts.predict VIDEO --model DIR``.

Prints p(genuine) of every window, the video's mean, and the decision: GENUINE when
that mean >= the experiment's video-level validation threshold (the EER threshold of
the validation videos' mean scores), else ATTACK. Thin entry point; the work is in
scripts/inference/predictor.py (same detection and sampling code as data_prep).

``--source 0|rtsp://...|http://...|FILE`` instead of VIDEO scores a camera, a stream or a
file as its frames arrive (scripts/inference/stream.py): a line per window (its p(genuine) and
decision, the running decision, the frame rate it keeps up with), then the same decision
as VIDEO would give. ``--json`` then prints one JSON object per line.

Exit codes (the project's table, configs/errors.py): 0 scored (whatever the decision),
2 bad command line, 3 video file not found, 4 video or source unreadable (cannot open,
or zero frames decoded), 5 no face found (or no window of T frames with faces), 6 model
folder not a finished experiment (no DONE, model.caffemodel, deploy.prototxt,
config.yaml or threshold.json with its video_threshold), 7 backend cannot load (Caffe
not importable: use --backend opencv; onnx: no model.onnx, run make onnx).
"""
from __future__ import annotations

import argparse
import json
import os

from configs import errors


def _parser():
    ap = argparse.ArgumentParser(prog="python -m scripts.predict", description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", help="a video file OpenCV can decode (or use --source)")
    ap.add_argument("--source", metavar="0|URL|FILE",
                    help="score live as frames arrive: a camera index, an rtsp:// or http:// "
                         "(MJPEG) stream, or a file read as a stream")
    ap.add_argument("--frames", type=int, default=0,
                    help="--source: stop after this many frames (default 0: when the source ends "
                         "or at Ctrl-C)")
    ap.add_argument("--model", required=True,
                    help="finished experiment folder, e.g. RUN/experiments/cnn_T1_s1.8/full")
    ap.add_argument("--backend", choices=("caffe", "opencv", "onnx"), default="caffe",
                    help="caffe (pycaffe), opencv (cv2.dnn, no Caffe needed) or onnx (ONNX "
                         "Runtime on the folder's model.onnx from make onnx)")
    ap.add_argument("--batch", type=int, default=None,
                    help="windows per forward pass (default 64 // T: 64 frames; --source: at most, "
                         "when frames are waiting; 1 scores each window alone at once)")
    ap.add_argument("--detect", choices=("track", "full"), default="track",
                    help="Viola-Jones near the previous frame's face (track, default: 3-4x faster, "
                         "boxes within 12%% of the face side of full's) or on every whole frame as "
                         "in training (full)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text "
                    "(--source: one per window and a summary, a line each)")
    ap.add_argument("--annotate", metavar="OUT.avi|OUT.mp4",
                    help="also write the video with face box and running score drawn on it")
    return ap


@errors.cli
def main(argv=None) -> int:
    ap = _parser()
    a = ap.parse_args(argv)
    if a.batch is not None and a.batch < 1:
        ap.error("--batch must be >= 1")
    if (a.video is None) == (a.source is None):
        ap.error("give a VIDEO file or --source, not both")
    if a.frames < 0 or (a.frames and a.source is None):
        ap.error("--frames N (N >= 0) goes with --source")
    os.environ.setdefault("GLOG_minloglevel", "2")   # before Caffe is imported
    from scripts.inference import predictor as P
    model = P.load_model(a.model)
    if a.source is not None:
        return _stream(a, model)
    r = P.score_video(a.video, model, backend=a.backend, batch=a.batch, detect_mode=a.detect)
    if a.annotate:
        P.annotate(r, a.annotate)
    if a.json:
        d = r.to_json()
        if a.annotate:
            d["annotated"] = a.annotate
        print(json.dumps(d, indent=1))
    else:
        print(P.format_result(r))
        if a.annotate:
            print(f"annotated video: {a.annotate}")
    return P.EXIT_OK


def _stream(a, model) -> int:
    from scripts.inference import stream

    def show(w):
        print(json.dumps(w.to_json()) if a.json else w.text(), flush=True)

    r = stream.score_stream(a.source, model, backend=a.backend, detect_mode=a.detect,
                            max_frames=a.frames, on_window=show, annotate=a.annotate,
                            batch=a.batch)
    if a.json:
        d = dict(r.to_json(), type="summary")
        del d["windows"]                 # printed one per line above
        if a.annotate:
            d["annotated"] = a.annotate
        print(json.dumps(d))
    else:
        print(stream.format_summary(r))
        if a.annotate:
            print(f"annotated video: {a.annotate}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
