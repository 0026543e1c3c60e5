"""Run an exported model (``make onnx``: ``model.onnx``) with ONNX Runtime alone.

This file imports only ``onnxruntime`` and ``numpy``; copy it next to ``model.onnx``
on a machine without Caffe::

    from onnx_run import load_session, genuine_prob
    sess = load_session("model.onnx")
    p = genuine_prob(sess, data)    # data: (N, T, 3, S, S) BGR 0..255 -> p(genuine) (N,)

The model's one input is ``data``, float32 (N, T, 3, S, S): the deploy net's input, raw
0..255 BGR face crops as data_prep makes them (uint8 samples cast to float32), any N;
T = 1 for the CNN. Its output ``prob`` (N, 2) is the deploy net's softmax; p(genuine)
= ``prob[:, 1]`` (label 1 = genuine). scripts/onnx_export.py writes the graph and
states what it computes.
"""
from __future__ import annotations

import numpy as np


def load_session(model, threads: int = 0):
    """An ONNX Runtime CPU session of ``model``: a path, or the serialized model as bytes
    (``threads`` 0: ONNX Runtime's default)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def forward(session, data: np.ndarray, outputs=("prob",)) -> list[np.ndarray]:
    """The graph's ``outputs`` for ``data`` (N, T, 3, S, S), BGR 0..255."""
    x = np.ascontiguousarray(data, np.float32)
    return session.run(list(outputs), {"data": x})


def genuine_prob(session, data: np.ndarray) -> np.ndarray:
    """p(genuine) = prob[:, 1] (label 1 = genuine)."""
    return forward(session, data)[0][:, 1].astype(np.float64)
