"""Run a trained deploy net with OpenCV's DNN module alone: no Caffe needed.

This file imports only ``cv2`` and ``numpy``; copy it next to an experiment's
``deploy.prototxt`` and ``model.caffemodel`` on a machine without Caffe::

    import cv2, numpy as np
    from opencv_dnn import load_net, genuine_prob
    net = load_net("deploy.prototxt", "model.caffemodel")
    p = genuine_prob(net, data)     # data: (N, T, 3, S, S) BGR 0..255 -> p(genuine) (N,)

What OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``, OpenCV 4.14) runs:

* ``cnn`` deploy nets: every layer (Input, Power, Reshape, Convolution, Pooling, ReLU,
  InnerProduct, Dropout, Softmax) is built in; nothing extra is registered.
* ``lstm`` and ``peephole`` LSTM-CNN deploy nets: four layer types are missing or read
  differently, so :func:`register_layers` adds small NumPy versions as OpenCV custom
  layers (``cv2.dnn_registerLayer``), with Caffe's semantics:

  - ``Reduction`` (both nets: builds the LSTM's sequence-continuation markers):
    OpenCV has no Caffe ``Reduction`` layer.
  - ``Tile`` (peephole): OpenCV's ``Tile`` expects ONNX's ``repeats`` and rejects
    Caffe's ``tile_param { axis tiles }``.
  - ``LSTMUnit`` (peephole: one step of Eq. 2-7 after the peephole sums): OpenCV has
    no Caffe ``LSTMUnit`` layer.
  - ``LSTM`` (lstm): OpenCV's own LSTM layer reads the Caffe blobs in another order
    (it takes blob 0 as W_h and fails its shape check on Caffe's W_x, b, W_h), and has
    no ``cont`` input. The replacement is Caffe's LSTM (gates i, f, o, g; h and c reset
    where cont = 0). Registering it replaces OpenCV's LSTM layer for every net loaded
    later in this process (ONNX LSTMs included).

  Every other layer of the unrolled peephole net (Slice, Concat, Eltwise, Scale,
  Reshape, Silence, InnerProduct with shared weights) is OpenCV's own.

A custom layer returns its arrays as ``cv2.Mat``: a plain 3-D NumPy array whose last
axis is small would reach OpenCV as a multi-channel image of the wrong shape.
"""
from __future__ import annotations

import cv2
import numpy as np

_REGISTERED: set[str] = set()
NEEDS_CUSTOM = ("Reduction", "Tile", "LSTMUnit", "LSTM")


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))


class Reduction:
    """Caffe ``Reduction``: SUM, ASUM, SUMSQ or MEAN over the axes from ``axis`` on."""
    _OPS = {"SUM": np.sum, "1": np.sum, "ASUM": lambda x, axis: np.abs(x).sum(axis),
            "2": lambda x, axis: np.abs(x).sum(axis),
            "SUMSQ": lambda x, axis: (x * x).sum(axis), "3": lambda x, axis: (x * x).sum(axis),
            "MEAN": np.mean, "4": np.mean}

    def __init__(self, params, blobs):
        self.axis = int(params.get("axis", 0))
        self.coeff = float(params.get("coeff", 1.0))
        op = str(params.get("operation", "SUM")).upper()
        if op not in self._OPS:
            raise ValueError(f"Reduction: unknown operation {op}")
        self.op = self._OPS[op]

    def _axis(self, ndim: int) -> int:
        return self.axis + ndim if self.axis < 0 else self.axis

    def getMemoryShapes(self, inputs):
        shape = list(inputs[0])
        out = shape[:self._axis(len(shape))]
        return [out if out else [1]]

    def forward(self, inputs):
        x = inputs[0]
        a = self._axis(x.ndim)
        y = self.op(x.reshape(x.shape[:a] + (-1,)), axis=-1) * self.coeff
        return [np.asarray(y, np.float32).reshape(x.shape[:a] or (1,))]


class Tile:
    """Caffe ``Tile``: repeat the blob ``tiles`` times along ``axis``."""

    def __init__(self, params, blobs):
        self.axis = int(params.get("axis", 1))
        self.tiles = int(params["tiles"])

    def getMemoryShapes(self, inputs):
        shape = list(inputs[0])
        shape[self.axis % len(shape)] *= self.tiles
        return [shape]

    def forward(self, inputs):
        x = inputs[0]
        reps = [1] * x.ndim
        reps[self.axis % x.ndim] = self.tiles
        return [cv2.Mat(np.tile(x, reps))]


class LSTMUnit:
    """Caffe ``LSTMUnit`` (lstm_unit_layer.cpp), one LSTM step. Bottoms c_{t-1} (1, N, H),
    the gate pre-activations X (1, N, 4H) in the order i, f, o, g, and cont (1, N); tops
    c_t = cont f c_{t-1} + i g and h_t = o tanh(c_t), each (1, N, H), where
    i, f, o = sigmoid(X_i, X_f, X_o) and g = tanh(X_g). No weights."""

    def __init__(self, params, blobs):
        if len(blobs):
            raise ValueError(f"LSTMUnit: expected no weight blobs, got {len(blobs)}")

    def getMemoryShapes(self, inputs):
        return [list(inputs[0]), list(inputs[0])]

    def forward(self, inputs):
        c_prev, x, cont = inputs
        shape, H = c_prev.shape, c_prev.shape[-1]
        c_prev = c_prev.reshape(-1, H)
        x = x.reshape(-1, 4 * H)
        cont = cont.reshape(-1, 1)
        i, f, o = _sigmoid(x[:, :H]), _sigmoid(x[:, H:2 * H]), _sigmoid(x[:, 2 * H:3 * H])
        c = cont * f * c_prev + i * np.tanh(x[:, 3 * H:])
        h = o * np.tanh(c)
        return [cv2.Mat(np.ascontiguousarray(v.reshape(shape), np.float32)) for v in (c, h)]


class LSTM:
    """Caffe ``LSTM`` (recurrent_layer.hpp): bottoms x (T, N, ...) and cont (T, N); top h
    (T, N, H). Blobs: W_xc (4H, I), b_c (4H), W_hc (4H, H); gate order i, f, o, g.

    The top is declared (T, N, H, 1): OpenCV's Python bridge would read a 3-D array whose
    last axis is small as a multi-channel image. Caffe's later Slice/Concat/Reshape
    layers of our nets give the same result either way."""

    def __init__(self, params, blobs):
        if len(blobs) != 3:
            raise ValueError(f"LSTM: expected 3 weight blobs (W_xc, b_c, W_hc), got {len(blobs)}")
        self.wx, self.b, self.wh = (np.asarray(b, np.float32) for b in blobs)
        self.b = self.b.reshape(-1)
        self.H = self.wh.shape[1]

    def getMemoryShapes(self, inputs):
        return [[inputs[0][0], inputs[0][1], self.H, 1]]

    def forward(self, inputs):
        x, cont = inputs[0], inputs[1]
        T, N = x.shape[:2]
        H = self.H
        x = x.reshape(T, N, -1)
        cont = cont.reshape(T, N, 1)
        xw = x @ self.wx.T + self.b                    # (T, N, 4H), all steps at once
        h = np.zeros((N, H), np.float32)
        c = np.zeros((N, H), np.float32)
        out = np.empty((T, N, H, 1), np.float32)
        for t in range(T):
            h = cont[t] * h
            g = xw[t] + h @ self.wh.T
            i, f, o = _sigmoid(g[:, :H]), _sigmoid(g[:, H:2 * H]), _sigmoid(g[:, 2 * H:3 * H])
            c = cont[t] * f * c + i * np.tanh(g[:, 3 * H:])
            h = o * np.tanh(c)
            out[t, :, :, 0] = h
        return [out]


def _layer_types(prototxt: str) -> set[str]:
    import re
    text = open(prototxt).read()
    return set(re.findall(r'^\s*type:\s*"(\w+)"', text, re.M))


def register_layers(types=NEEDS_CUSTOM) -> None:
    """Register the NumPy layers of ``types`` with OpenCV (once per process)."""
    classes = {"Reduction": Reduction, "Tile": Tile, "LSTMUnit": LSTMUnit, "LSTM": LSTM}
    for t in types:
        if t in _REGISTERED:
            continue
        try:
            cv2.dnn_unregisterLayer(t)   # OpenCV's own Tile / LSTM
        except cv2.error:
            pass
        cv2.dnn_registerLayer(t, classes[t])
        _REGISTERED.add(t)


def load_net(prototxt: str, weights: str) -> "cv2.dnn.Net":
    """``cv2.dnn.readNetFromCaffe`` after registering the layers this net needs."""
    needed = [t for t in NEEDS_CUSTOM if t in _layer_types(str(prototxt))]
    register_layers(needed)
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net


def forward_prob(net: "cv2.dnn.Net", data: np.ndarray) -> np.ndarray:
    """The deploy net's ``prob`` (N, 2) for ``data`` (N, T, 3, S, S), BGR 0..255."""
    data = np.ascontiguousarray(data, np.float32)
    net.setInput(data, "data")
    return np.asarray(net.forward("prob")).reshape(len(data), -1)


def genuine_prob(net: "cv2.dnn.Net", data: np.ndarray) -> np.ndarray:
    """p(genuine) = prob[:, 1] (label 1 = genuine)."""
    return forward_prob(net, data)[:, 1].astype(np.float64)
