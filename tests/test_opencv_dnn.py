"""OpenCV's DNN module runs our trained deploy nets with Caffe's results (to 1e-4).

CNN: OpenCV's Caffe importer alone. LSTM-CNNs (built-in LSTM and peephole): with the
NumPy Reduction / Tile / LSTM layers of scripts/inference/opencv_dnn.py registered."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow      # every test runs the session's trained tiny models

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("cnn_T1_s1.8", "peephole_T3_s1.8", "lstm_T3_s1.8")


def _caffe_prob(d: Path, x: np.ndarray) -> np.ndarray:
    from scripts.training.caffe_io import caffe_mode
    caffe = caffe_mode(None)
    net = caffe.Net(str(d / "deploy.prototxt"), str(d / "model.caffemodel"), caffe.TEST)
    net.blobs["data"].reshape(*x.shape)
    net.reshape()
    net.blobs["data"].data[...] = x
    return net.forward()["prob"].copy()


@pytest.mark.parametrize("name", MODELS)
def test_opencv_equals_caffe(tiny_run, name):
    from scripts.inference import opencv_dnn
    d = tiny_run / "experiments" / name / "full"
    T = 1 if name.startswith("cnn") else 3
    x = np.random.default_rng(7).integers(0, 256, (6, T, 3, 24, 24)).astype(np.float32)
    ref = _caffe_prob(d, x)
    net = opencv_dnn.load_net(d / "deploy.prototxt", d / "model.caffemodel")
    got = opencv_dnn.forward_prob(net, x)
    diff = float(np.abs(got - ref).max())
    print(f"{name}: max |OpenCV - Caffe| over prob = {diff:.2e}")
    assert got.shape == ref.shape == (6, 2)
    assert diff < 1e-4
    assert np.ptp(ref[:, 1]) > 0          # the inputs give different outputs
    np.testing.assert_allclose(opencv_dnn.genuine_prob(net, x[:1]), ref[:1, 1], atol=1e-4)


_NO_CAFFE = """
import sys, numpy as np
sys.modules["caffe"] = None            # any import of caffe now fails
import cv2
{body}
"""


def _run(body: str):
    return subprocess.run([sys.executable, "-c", _NO_CAFFE.format(body=body)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OPENCV_LOG_LEVEL="SILENT"))


def test_cnn_runs_with_plain_opencv_and_lstm_nets_need_custom_layers(tiny_run):
    """Without our layers, OpenCV alone runs the CNN and refuses the LSTM-CNNs."""
    e = tiny_run / "experiments"
    body = f"""
x = np.full((2, 1, 3, 24, 24), 128, np.float32)
net = cv2.dnn.readNetFromCaffe("{e}/cnn_T1_s1.8/full/deploy.prototxt", "{e}/cnn_T1_s1.8/full/model.caffemodel")
net.setInput(x); print("cnn", net.forward().shape)
for m in ("lstm_T3_s1.8", "peephole_T3_s1.8"):
    try:
        n = cv2.dnn.readNetFromCaffe(f"{e}/{{m}}/full/deploy.prototxt", f"{e}/{{m}}/full/model.caffemodel")
        n.setInput(np.zeros((2, 3, 3, 24, 24), np.float32)); n.forward()
        print(m, "ran")
    except cv2.error as err:
        print(m, "refused", "Reduction" in str(err))
"""
    out = _run(body)
    assert out.returncode == 0, out.stderr
    assert "cnn (2, 2)" in out.stdout
    assert "lstm_T3_s1.8 refused True" in out.stdout
    assert "peephole_T3_s1.8 refused True" in out.stdout


def test_opencv_dnn_module_needs_no_caffe(tiny_run):
    d = tiny_run / "experiments" / "lstm_T3_s1.8" / "full"
    body = f"""
from scripts.inference import opencv_dnn
net = opencv_dnn.load_net("{d}/deploy.prototxt", "{d}/model.caffemodel")
p = opencv_dnn.genuine_prob(net, np.zeros((3, 3, 3, 24, 24), np.float32))
print("ok", p.shape, bool(((p >= 0) & (p <= 1)).all()))
"""
    out = _run(body)
    assert out.returncode == 0, out.stderr
    assert "ok (3,) True" in out.stdout
