"""Nets of prototxt/generate.py checked with real Caffe against NumPy (paper §3.1-§3.3, §4.2).

The NumPy references below are written from the equations (Caffe's LSTM: gate order
i, f, o, g, ``cont`` resets the state; the paper's Eq. 2-7 with separate per-gate
matrices and diagonal peepholes), not from the generator. Numeric checks use small
inputs (16x16) and small batches; the 128x128 nets are only built at batch 1 for shapes
and parameter counts.
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
caffe = pytest.importorskip("caffe", reason="pycaffe is not importable: run `make setup`")
from caffe.proto import caffe_pb2  # noqa: E402
from google.protobuf import text_format  # noqa: E402

from configs.schedule import Schedule
from configs import load_config  # noqa: E402
from prototxt import generate as G  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
caffe.set_mode_cpu()


# ---------------------------------------------------------------------------
# NumPy references, written from the equations
# ---------------------------------------------------------------------------

def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_caffe_lstm(x, cont, W_xc, b_c, W_hc):
    """Caffe's LSTM layer: x (T, N, D), cont (T, N); rows of W_xc, b_c, W_hc are i, f, o, g."""
    T, N, _ = x.shape
    H = W_hc.shape[1]
    h = np.zeros((N, H))
    c = np.zeros((N, H))
    out = np.zeros((T, N, H))
    for t in range(T):
        h_prev = cont[t][:, None] * h
        c_prev = cont[t][:, None] * c
        a = x[t] @ W_xc.T + b_c + h_prev @ W_hc.T
        i, f, o = (sigmoid(a[:, k * H:(k + 1) * H]) for k in range(3))
        g = np.tanh(a[:, 3 * H:])
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        out[t] = h
    return out


def np_paper_lstm(x, p):
    """Paper Eq. 2-7 verbatim, h_0 = c_0 = 0; p holds W_x?, W_h?, b_?, w_c? per gate."""
    T, N, _ = x.shape
    H = p["W_hi"].shape[0]
    h = np.zeros((N, H))
    c = np.zeros((N, H))
    out = []
    for t in range(T):
        xt = x[t]
        i = sigmoid(xt @ p["W_xi"].T + h @ p["W_hi"].T + c * p["w_ci"] + p["b_i"])   # Eq. 2
        f = sigmoid(xt @ p["W_xf"].T + h @ p["W_hf"].T + c * p["w_cf"] + p["b_f"])   # Eq. 3
        o = sigmoid(xt @ p["W_xo"].T + h @ p["W_ho"].T + c * p["w_co"] + p["b_o"])   # Eq. 4
        g = np.tanh(xt @ p["W_xg"].T + h @ p["W_hg"].T + p["b_g"])                   # Eq. 5
        c = f * c + i * g                                                           # Eq. 6
        h = o * np.tanh(c)                                                          # Eq. 7
        out.append(h)
    return np.stack(out)  # (T, N, H)


def paper_params(W_xc, b_c, W_hc, w_ci, w_cf, w_co):
    """Split the stacked blobs into the paper's per-gate matrices (gate order i, f, o, g)."""
    H = W_hc.shape[1]
    p = {"w_ci": w_ci, "w_cf": w_cf, "w_co": w_co}
    for k, gate in enumerate("ifog"):
        rows = slice(k * H, (k + 1) * H)
        p[f"W_x{gate}"], p[f"W_h{gate}"], p[f"b_{gate}"] = W_xc[rows], W_hc[rows], b_c[rows]
    return p


def np_head(stack, W, b):
    z = stack @ W.T + b
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def stack_np(h_tm):
    """(T, N, H) -> (N, T*H) as [h_1 | ... | h_T]."""
    T, N, H = h_tm.shape
    return h_tm.transpose(1, 0, 2).reshape(N, T * H)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def small_cfg(size=16, **net):
    cfg = load_config()
    cfg["net"]["input_size"] = size
    cfg["net"].update(net)
    return cfg


def load(proto, tmp_path, name, phase=caffe.TEST):
    path = tmp_path / f"{name}.prototxt"
    path.write_text(text_format.MessageToString(proto))
    return caffe.Net(str(path), phase)


def unique_params(net):
    """{(layer, index): blob} with each shared blob once (same data buffer)."""
    seen, out = set(), {}
    for lname, blobs in net.params.items():
        for k, b in enumerate(blobs):
            ptr = b.data.__array_interface__["data"][0]
            if ptr not in seen:
                seen.add(ptr)
                out[(lname, k)] = b
    return out


def randomize(net, rng):
    """Random weights: N(0, 1/fan_in) for matrices; N(0, 0.5^2) for biases and peepholes."""
    for b in unique_params(net).values():
        if b.data.ndim > 1:
            std = 1.0 / np.sqrt(np.prod(b.data.shape[1:]))
        else:
            std = 0.5
        b.data[...] = rng.normal(0, std, b.data.shape)


def peephole_blobs(net):
    return dict(W_xc=net.params["xw"][0].data, b_c=net.params["xw"][1].data,
                W_hc=net.params["hw_1"][0].data, w_ci=net.params["i_peep_1"][0].data,
                w_cf=net.params["f_peep_1"][0].data, w_co=net.params["o_peep_1"][0].data)


def random_input(net, rng):
    x = rng.integers(0, 256, net.blobs["data"].data.shape).astype(np.float32)
    net.blobs["data"].data[...] = x
    return x


def write_h5(path, data, label):
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data.astype(np.uint8))
        f.create_dataset("label", data=label.astype(np.float32))
    return path


def separable_set(folder, n, T, size, seed):
    """Genuine samples bright, attacks dark, plus noise: separable from one pixel."""
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 2).astype(np.float32)
    rng.shuffle(label)
    base = np.where(label[:, None, None, None, None] > 0, 170.0, 80.0)
    data = np.clip(base + rng.normal(0, 30, (n, T, 3, size, size)), 0, 255)
    folder.mkdir(parents=True, exist_ok=True)
    h5 = write_h5(folder / "set.h5", data, label)
    lst = folder / "list.txt"
    lst.write_text(f"{h5}\n")
    return lst


# ---------------------------------------------------------------------------
# Architecture (§3.2, §4.2)
# ---------------------------------------------------------------------------

EXPECTED_CNN = {  # 128x128 input; Caffe rounds pooling up: 126 -> 63 -> 61 -> 31
    "conv1": (48, 3, 3, 3), "conv2": (96, 48, 3, 3), "fc1000": (1000, 96 * 31 * 31),
}


def test_cnn_shapes_and_fc1000_count():
    """§4.2 at 128x128: FC 1000 has 96*31*31*1000 weights, about 92 million: the bulk of the CNN."""
    net = caffe.Net(str(REPO / "prototxt/deploy/cnn.prototxt"), caffe.TEST)
    for lname, shape in EXPECTED_CNN.items():
        assert net.params[lname][0].data.shape == shape, lname
    assert net.params["fc1000"][0].data.size == 96 * 31 * 31 * 1000 == 92_256_000
    assert net.blobs["pool1"].data.shape == (1, 48, 63, 63)
    assert net.blobs["pool2"].data.shape == (1, 96, 31, 31)
    assert net.params["fc2"][0].data.shape == (2, 1000)
    assert net.outputs == ["prob"]


def param_count(path):
    net = caffe.Net(str(path), caffe.TEST)
    return sum(b.data.size for b in unique_params(net).values()), net


def test_parameter_counts_128():
    """The LSTM-CNN has 'a little' more parameters than the CNN (§3.2): print and check."""
    n_cnn, _ = param_count(REPO / "prototxt/deploy/cnn.prototxt")
    n_lstm, _ = param_count(REPO / "prototxt/deploy/lstm_T7.prototxt")
    n_peep, net = param_count(REPO / "prototxt/deploy/peephole_T7.prototxt")
    D, H, T = 1000, 30, 7
    assert n_cnn == 1344 + 41568 + 92_257_000 + 2002 == 92_301_914
    lstm = 4 * H * D + 4 * H + 4 * H * H                        # W_xc, b_c, W_hc
    head = 2 * T * H + 2
    assert n_lstm == n_cnn - 2002 + lstm + head == 92_424_054
    assert n_peep == n_lstm + 3 * H                              # + w_ci, w_cf, w_co
    # every step's W_hc and peepholes are the same blobs
    for t in range(2, T + 1):
        assert np.shares_memory(net.params[f"hw_{t}"][0].data, net.params["hw_1"][0].data)
        assert np.shares_memory(net.params[f"i_peep_{t}"][0].data,
                                net.params["i_peep_1"][0].data)
    print(f"\nparameters at 128x128: cnn {n_cnn:,}  lstm_T7 {n_lstm:,}  peephole_T7 {n_peep:,}")


# ---------------------------------------------------------------------------
# Sequence layout: time-major reordering, cont, stacking
# ---------------------------------------------------------------------------

def test_time_major_reordering_and_stacking(tmp_path):
    """Distinguishable per-sample, per-time values land where Caffe's T x N layout wants."""
    N, T, D, H = 4, 3, 5, 2
    n = caffe.NetSpec()
    n.feat = caffe.layers.Input(shape=dict(dim=[N * T, D]))
    G.to_time_major(n, n.feat, T, D)
    n.h_tm = caffe.layers.Input(shape=dict(dim=[T, N, H]))
    G.stack_time_major(n, n.h_tm, T, H)
    net = load(n.to_proto(), tmp_path, "reorder")
    feat = np.array([[1000 * s + 100 * t + d for d in range(D)]
                     for s in range(N) for t in range(T)], np.float32)  # row s*T + t
    h_tm = np.array([[[1000 * s + 100 * t + k for k in range(H)] for s in range(N)]
                     for t in range(T)], np.float32)
    net.blobs["feat"].data[...] = feat
    net.blobs["h_tm"].data[...] = h_tm
    net.forward()
    x_tm = net.blobs["x_tm"].data
    assert x_tm.shape == (T, N, D)
    for s in range(N):
        for t in range(T):
            assert np.array_equal(x_tm[t, s], 1000 * s + 100 * t + np.arange(D))
            assert np.array_equal(net.blobs["stack"].data[s, t * H:(t + 1) * H],
                                  1000 * s + 100 * t + np.arange(H))


def test_data_path_in_the_full_net(tmp_path):
    """Raw (N, T, 3, S, S) -> frames n*T + t -> x_tm[t, n]; cont is 0 at t = 0, else 1."""
    cfg = small_cfg()
    N, T = 3, 5
    net = load(G.deploy_net(cfg, "lstm", T, batch=N), tmp_path, "lstm")
    rng = np.random.default_rng(0)
    x = random_input(net, rng)
    net.forward()
    assert np.allclose(net.blobs["frames"].data.reshape(N, T, 3, 16, 16), x / 255.0, atol=1e-6)
    fc = net.blobs["fc1000"].data
    for s in range(N):
        for t in range(T):
            assert np.array_equal(net.blobs["x_tm"].data[t, s], fc[s * T + t])
    cont = net.blobs["cont"].data
    assert cont.shape == (T, N)
    assert np.array_equal(cont, np.r_[np.zeros((1, N)), np.ones((T - 1, N))])


# ---------------------------------------------------------------------------
# LSTM numerics
# ---------------------------------------------------------------------------

def test_builtin_lstm_matches_numpy(tmp_path):
    """Caffe's LSTM as used in the net == NumPy LSTM (gate order i, f, o, g), to 1e-5."""
    cfg = small_cfg()
    N, T = 4, 5
    net = load(G.deploy_net(cfg, "lstm", T, batch=N), tmp_path, "lstm")
    rng = np.random.default_rng(1)
    randomize(net, rng)
    random_input(net, rng)
    net.forward()
    W_xc, b_c, W_hc = (b.data.astype(np.float64) for b in net.params["lstm"])
    assert W_xc.shape == (4 * 30, 1000) and b_c.shape == (120,) and W_hc.shape == (120, 30)
    x_tm = net.blobs["x_tm"].data.astype(np.float64)
    ref = np_caffe_lstm(x_tm, net.blobs["cont"].data, W_xc, b_c, W_hc)
    assert np.abs(ref).max() > 0.05  # not a trivial all-zero comparison
    np.testing.assert_allclose(net.blobs["lstm"].data, ref, atol=1e-5, rtol=0)
    prob = np_head(stack_np(ref), *(b.data.astype(np.float64) for b in net.params["fc2"]))
    np.testing.assert_allclose(net.blobs["prob"].data[:, 1], prob[:, 1], atol=1e-5)


@pytest.mark.parametrize("T", [3, 9])
def test_peephole_net_matches_paper_equations(tmp_path, T):
    """Unrolled net == NumPy Eq. 2-7 with random weights and non-zero peepholes, to 1e-5."""
    cfg = small_cfg()
    N = 3
    net = load(G.deploy_net(cfg, "peephole", T, batch=N), tmp_path, "peep")
    rng = np.random.default_rng(T)
    randomize(net, rng)
    random_input(net, rng)
    net.forward()
    blobs = {k: v.astype(np.float64) for k, v in peephole_blobs(net).items()}
    assert min(np.abs(blobs[k]).min() for k in ("w_ci", "w_cf", "w_co")) > 0
    x_tm = net.blobs["x_tm"].data.astype(np.float64)
    ref = np_paper_lstm(x_tm, paper_params(**blobs))
    for t in range(T):
        np.testing.assert_allclose(net.blobs[f"h_{t + 1}"].data, ref[t], atol=1e-5, rtol=0)
    np.testing.assert_allclose(net.blobs["stack"].data, stack_np(ref), atol=1e-5, rtol=0)
    prob = np_head(stack_np(ref), *(b.data.astype(np.float64) for b in net.params["fc2"]))
    np.testing.assert_allclose(net.blobs["prob"].data[:, 1], prob[:, 1], atol=1e-5)
    # the peepholes matter: zeroing them changes the output
    for g in "ifo":
        net.params[f"{g}_peep_1"][0].data[...] = 0
    net.forward()
    assert np.abs(net.blobs["stack"].data - stack_np(ref)).max() > 1e-3


def test_peephole_with_zero_peepholes_equals_builtin_lstm(tmp_path):
    """The two LSTM-CNN variants differ by the peepholes only."""
    cfg = small_cfg()
    N, T = 4, 5
    lstm = load(G.deploy_net(cfg, "lstm", T, batch=N), tmp_path, "lstm")
    peep = load(G.deploy_net(cfg, "peephole", T, batch=N), tmp_path, "peep")
    rng = np.random.default_rng(2)
    randomize(lstm, rng)
    for name in ("conv1", "conv2", "fc1000", "fc2"):
        for a, b in zip(lstm.params[name], peep.params[name]):
            b.data[...] = a.data
    W_xc, b_c, W_hc = lstm.params["lstm"]
    peep.params["xw"][0].data[...] = W_xc.data
    peep.params["xw"][1].data[...] = b_c.data
    peep.params["hw_1"][0].data[...] = W_hc.data
    for g in "ifo":
        peep.params[f"{g}_peep_1"][0].data[...] = 0
    x = random_input(lstm, rng)
    peep.blobs["data"].data[...] = x
    lstm.forward()
    peep.forward()
    np.testing.assert_allclose(peep.blobs["stack"].data, lstm.blobs["stack"].data, atol=1e-6)
    np.testing.assert_allclose(peep.blobs["prob"].data, lstm.blobs["prob"].data,
                               atol=1e-6)


def test_peephole_gradient_finite_differences(tmp_path):
    """Backward of the unrolled Eq. 2-7 == central differences, input and every shared blob."""
    cfg = small_cfg(lstm_cells=3)
    T, N, D = 3, 2, 4
    n = caffe.NetSpec()
    n.x_tm = caffe.layers.Input(shape=dict(dim=[T, N, D]))
    G.peephole_lstm(n, n.x_tm, T, cfg["net"])
    proto = n.to_proto()
    proto.force_backward = True
    net = load(proto, tmp_path, "grad")
    rng = np.random.default_rng(3)
    blobs = {"W_xc": net.params["xw"][0], "b_c": net.params["xw"][1],
             "W_hc": net.params["hw_1"][0], "w_ci": net.params["i_peep_1"][0],
             "w_cf": net.params["f_peep_1"][0], "w_co": net.params["o_peep_1"][0]}
    for b in blobs.values():
        b.data[...] = rng.normal(0, 0.7, b.data.shape)
    x = rng.normal(0, 1, (T, N, D)).astype(np.float32)
    net.blobs["x_tm"].data[...] = x
    r = rng.normal(0, 1, (N, T * 3))

    def loss():
        net.forward()
        return float((net.blobs["stack"].data.astype(np.float64) * r).sum())

    loss()
    net.clear_param_diffs()
    net.backward(stack=r.astype(np.float32))
    analytic = {k: b.diff.astype(np.float64).copy() for k, b in blobs.items()}
    analytic["x"] = net.blobs["x_tm"].diff.astype(np.float64).copy()
    targets = dict(blobs)
    targets["x"] = net.blobs["x_tm"]
    eps = 1e-2
    for key, blob in targets.items():
        num = np.zeros(blob.data.shape)
        for idx in np.ndindex(*blob.data.shape):
            old = float(blob.data[idx])
            blob.data[idx] = old + eps
            lp = loss()
            blob.data[idx] = old - eps
            lm = loss()
            blob.data[idx] = old
            num[idx] = (lp - lm) / (2 * eps)
        rel = np.linalg.norm(num - analytic[key]) / max(np.linalg.norm(num), 1e-8)
        assert np.linalg.norm(num) > 1e-3, key
        print(f"{key}: relative error {rel:.1e}")
        assert rel < 1e-2, f"{key}: relative error {rel:.2e}"


# ---------------------------------------------------------------------------
# The peephole net on Caffe's LSTMUnit against the primitive-layer net it replaced
# ---------------------------------------------------------------------------

def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def with_loss(proto, N):
    """The deploy net plus an Input ``label`` (N,) and SoftmaxWithLoss on fc2, so that
    backward runs as in training; force_backward adds the input's gradient."""
    proto = copy.deepcopy(proto)
    label = proto.layer.add(name="label", type="Input", top=["label"])
    label.input_param.shape.add().dim.append(N)
    proto.layer.add(name="loss", type="SoftmaxWithLoss", bottom=["fc2", "label"], top=["loss"])
    proto.force_backward = True
    return proto


@pytest.mark.parametrize("T", [3, 7])
def test_lstmunit_net_equals_primitive_layer_net(tmp_path, monkeypatch, T):
    """Weights saved from the primitive-layer peephole net (tests/peephole_primitive.py,
    19 layers per step) load by layer name into the generator's LSTMUnit net, and the
    two give the same forward blobs, input gradient and parameter gradients (relative
    1e-5 per blob)."""
    from peephole_primitive import peephole_lstm as primitive_lstm
    cfg = small_cfg()
    N = 4
    new_proto = with_loss(G.deploy_net(cfg, "peephole", T, batch=N), N)
    monkeypatch.setattr(G, "peephole_lstm", primitive_lstm)
    old_proto = with_loss(G.deploy_net(cfg, "peephole", T, batch=N), N)
    monkeypatch.undo()
    assert "LSTMUnit" in {l.type for l in new_proto.layer}
    assert "LSTMUnit" not in {l.type for l in old_proto.layer}
    old = load(old_proto, tmp_path, "old")
    rng = np.random.default_rng(10 + T)
    randomize(old, rng)
    old.save(str(tmp_path / "old.caffemodel"))
    (tmp_path / "new.prototxt").write_text(text_format.MessageToString(new_proto))
    new = caffe.Net(str(tmp_path / "new.prototxt"), str(tmp_path / "old.caffemodel"), caffe.TEST)
    assert list(new.params) == list(old.params)          # same layer names, same order
    for name in old.params:
        for a, b in zip(old.params[name], new.params[name]):
            assert a.data.shape == b.data.shape and np.array_equal(a.data, b.data), name
    x = random_input(old, rng)
    label = (np.arange(N) % 2).astype(np.float32)
    for net in (old, new):
        net.blobs["data"].data[...] = x
        net.blobs["label"].data[...] = label
        net.forward()
    blobs = ["loss", "prob", "fc2", "stack"] + [f"{v}_{t}" for v in "hc" for t in range(1, T + 1)]
    for b in blobs:
        assert rel_err(new.blobs[b].data.reshape(old.blobs[b].data.shape), old.blobs[b].data) < 1e-5, b
    assert np.ptp(old.blobs["prob"].data[:, 1]) > 1e-3    # the samples differ
    old.backward()
    new.backward()
    errs = {"data": rel_err(new.blobs["data"].diff, old.blobs["data"].diff)}
    for (name, k), blob in unique_params(old).items():
        assert np.linalg.norm(blob.diff) > 0, name
        errs[f"{name}[{k}]"] = rel_err(new.params[name][k].diff, blob.diff)
    print(f"\nT={T}: largest relative gradient difference {max(errs.values()):.1e}")
    assert max(errs.values()) < 1e-5, errs
    assert {"xw[0]", "xw[1]", "hw_1[0]", "i_peep_1[0]", "f_peep_1[0]", "o_peep_1[0]"} <= set(errs)


def test_lstmunit_net_draws_the_primitive_nets_initial_weights(tmp_path, monkeypatch):
    """Under one seed both constructions draw the same initial weights, bit for bit (the
    fillers run in the same order: xw, then per step hw_t, i/f/o_peep_t; fc2 last), so a
    training run starts where the primitive-layer net's started."""
    from peephole_primitive import peephole_lstm as primitive_lstm
    cfg = small_cfg()
    nets = []
    for build in (G.peephole_lstm, primitive_lstm):
        monkeypatch.setattr(G, "peephole_lstm", build)
        caffe.set_random_seed(cfg["seed"])
        nets.append(load(G.deploy_net(cfg, "peephole", 5, batch=2), tmp_path, "init", caffe.TRAIN))
    new, old = nets
    assert list(new.params) == list(old.params)
    for name in old.params:
        for a, b in zip(new.params[name], old.params[name]):
            assert np.array_equal(a.data, b.data), name
    assert np.abs(new.params["i_peep_1"][0].data).min() > 0       # drawn, not constant


# ---------------------------------------------------------------------------
# Deploy nets: any batch size
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("model,T", [("cnn", 1), ("lstm", 3), ("peephole", 3)])
def test_deploy_reshapes_to_any_batch(tmp_path, model, T):
    cfg = small_cfg()
    net = load(G.deploy_net(cfg, model, T, batch=1), tmp_path, model)
    rng = np.random.default_rng(4)
    randomize(net, rng)
    x = rng.integers(0, 256, (5, T, 3, 16, 16)).astype(np.float32)
    singles = []
    for s in range(5):
        net.blobs["data"].data[...] = x[s:s + 1]
        singles.append(net.forward()["prob"][0, 1])
    net.blobs["data"].reshape(*x.shape)
    net.reshape()
    net.blobs["data"].data[...] = x
    batch = net.forward()["prob"][:, 1]
    np.testing.assert_allclose(batch, singles, atol=1e-6)
    assert np.all((batch > 0) & (batch < 1))


# ---------------------------------------------------------------------------
# Committed files
# ---------------------------------------------------------------------------

def committed_files():
    out = []
    for folder in ("prototxt", "solvers"):
        out += [p for p in (REPO / folder).rglob("*.prototxt")]
    return sorted(p.relative_to(REPO) for p in out)


def test_regeneration_is_byte_identical(tmp_path):
    written = G.write_committed(load_config(), tmp_path)
    rel = sorted(p.relative_to(tmp_path) for p in written)
    assert rel == committed_files(), "stale or missing committed files: python -m prototxt.generate"
    for r in rel:
        assert (tmp_path / r).read_bytes() == (REPO / r).read_bytes(), f"{r} differs"


def test_committed_solvers_run_from_the_repo_root():
    """Every path in a committed solver resolves from the repository root, and its stage
    builds exactly its scale's data layers: fold 1's training and validation lists of the
    train subjects, never the test set."""
    cfg = load_config()
    solvers = sorted((REPO / "solvers").rglob("*_solver.prototxt"))
    assert len(solvers) == len(G.committed_models(cfg)) * len(cfg["samples"]["scales"])
    nets = sorted((REPO / "prototxt").glob("*_train_val.prototxt"))
    assert len(nets) == len(G.committed_models(cfg))       # one net per model and T
    tracked = subprocess.run(["git", "ls-files", "solvers/snapshots"], cwd=REPO,
                             capture_output=True, text=True).stdout
    assert "solvers/snapshots/.gitignore" in tracked  # the snapshot folder exists in a checkout
    for path in solvers:
        sp = caffe_pb2.SolverParameter()
        text_format.Merge(path.read_text(), sp)
        assert (REPO / sp.net).is_file(), sp.net
        assert (REPO / Path(sp.snapshot_prefix).parent).is_dir()
        assert sp.momentum == pytest.approx(0.9) and sp.base_lr == pytest.approx(0.001)
        assert sp.weight_decay == pytest.approx(0.01) and sp.gamma == pytest.approx(0.1)
        assert sp.random_seed == cfg["seed"] and sp.type == "SGD"
        scale = path.parent.name[1:]
        T = int(re.search(r"_T(\d)_", path.name).group(1)) if "_T" in path.name else 1
        assert list(sp.train_state.stage) == [f"s{scale}"]
        assert [list(t.stage) for t in sp.test_state] == [[f"s{scale}"]]
        net = caffe_pb2.NetParameter()
        text_format.Merge((REPO / sp.net).read_text(), net)
        built = [l for l in net.layer if not l.include or all(
            not r.stage or set(r.stage) <= {f"s{scale}"} for r in l.include)]
        data = [json.loads(l.python_param.param_str) for l in built if l.type == "Python"]
        assert [l.python_param.layer for l in built if l.type == "Python"] == ["SequenceData"] * 2
        assert [d["source"] for d in data] == [
            f"data/prep/s{scale}_T{T}/fold1_train.txt", f"data/prep/s{scale}_T{T}/fold1_val.txt"]
        assert [d["shuffle"] for d in data] == [True, False]
        assert data[0]["batch_size"] == (100 if T == 1 else 32) and data[0]["seed"] == cfg["seed"]
        every = [json.loads(l.python_param.param_str)["source"] for l in net.layer
                 if l.type == "Python"]
        assert not [x for x in every if x.endswith("/test.txt")], "a committed net reads the test set"


def _tiny_sources(proto, lst):
    proto = copy.deepcopy(proto)
    for layer in proto.layer:
        if layer.type == "Python":
            p = json.loads(layer.python_param.param_str)
            layer.python_param.param_str = json.dumps(dict(p, source=str(lst), batch_size=1))
    return proto


@pytest.mark.parametrize("name", ["cnn", "lstm_T3", "lstm_T9", "peephole_T3", "peephole_T9"])
@pytest.mark.slow
def test_committed_nets_load_and_step(tmp_path, name):
    """Committed 128x128 train_val (both phases, batch 1) and deploy nets load and run."""
    T = 1 if name == "cnn" else int(name.split("_T")[1])
    lst = separable_set(tmp_path, 2, T, 128, seed=5)
    proto = caffe_pb2.NetParameter()
    text_format.Merge((REPO / f"prototxt/{name}_train_val.prototxt").read_text(), proto)
    for phase in (caffe.TRAIN, caffe.TEST):
        path = tmp_path / f"{name}_{phase}.prototxt"
        path.write_text(text_format.MessageToString(_tiny_sources(proto, lst)))
        net = caffe.Net(str(path), phase, stages=["s1.8"])       # what solvers/s1.8/ sets
        out = net.forward()
        assert np.isfinite(out["loss"])
        if phase == caffe.TRAIN:
            net.backward()
            assert np.abs(net.params["conv1"][0].diff).sum() > 0
        else:
            assert 0 <= out["accuracy"] <= 1
    dep = caffe.Net(str(REPO / f"prototxt/deploy/{name}.prototxt"), caffe.TEST)
    assert dep.blobs["data"].data.shape == (1, T, 3, 128, 128)
    prob = dep.forward()["prob"]
    assert prob.shape == (1, 2) and abs(prob.sum() - 1) < 1e-5


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("model,T", [("cnn", 1), ("lstm", 3), ("peephole", 3)])
@pytest.mark.slow
def test_sgd_drives_loss_down(tmp_path, model, T):
    """A few hundred SGD steps (§3.3 solver) on a tiny separable HDF5 set."""
    cfg = small_cfg()
    train = separable_set(tmp_path / "train", 64, T, 16, seed=6)
    val = separable_set(tmp_path / "val", 16, T, 16, seed=7)
    paths = G.write_experiment_nets(cfg, model, T, train, val, tmp_path / "exp",
                                    schedule=Schedule.from_config(cfg, 300).replace(stepvalues=(250,)),
                                    test_iter=2, test_interval=1000,
                                    batch=8, val_batch=8)
    caffe.set_random_seed(cfg["seed"])
    solver = caffe.get_solver(str(paths["solver"]))
    losses = []
    for _ in range(300):
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data))
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    print(f"\n{model} T={T}: loss {first:.3f} -> {last:.3f}")
    assert last < 0.5 * first and last < 0.3


@pytest.mark.slow
def test_caffe_train_command_line(tmp_path):
    """`caffe train --solver` runs end to end from the folder the paths are relative to."""
    tool = Path(sys.executable).parent / "caffe"
    if not tool.is_file():
        pytest.skip(f"no caffe command-line tool next to {sys.executable}")
    cfg = small_cfg()
    separable_set(tmp_path / "data", 16, 3, 16, seed=8)
    (tmp_path / "data/list.txt").write_text(f"{tmp_path / 'data/set.h5'}\n")
    tv = G.write_net(tmp_path / "prototxt/lstm_T3_train_val.prototxt",
                     G.net_param(cfg, "lstm", 3, "data/list.txt", "data/list.txt", 4, 4),
                     G.net_header("lstm", 3, "Train/val net", "a test"))
    (tmp_path / "snapshots").mkdir()
    G.write_text(tmp_path / "solver.prototxt",
                 G.solver_text(cfg, "lstm", 3, tv.relative_to(tmp_path), "snapshots/lstm_T3",
                               Schedule.from_config(cfg, 20).replace(stepvalues=(10,)),
                               test_iter=2, test_interval=10))
    res = subprocess.run([str(tool), "train", "--solver", "solver.prototxt"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, GLOG_minloglevel="0"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "snapshots/lstm_T3_iter_20.caffemodel").is_file()
    assert "Test net output #0: accuracy" in res.stderr


@pytest.mark.slow
def test_committed_solver_picks_its_scale_with_caffe_train(tmp_path):
    """`caffe train --solver solvers/s1.8/cnn_solver.prototxt`, as committed but for two
    iterations at batch 2, from a folder laid out like the repository root with only
    scale 1.8's fold-1 lists present: the solver's stage builds that scale's data layers
    (another scale's would be missing files), and the TEST phase reads fold 1's list."""
    tool = Path(sys.executable).parent / "caffe"
    if not tool.is_file():
        pytest.skip(f"no caffe command-line tool next to {sys.executable}")
    for which, seed in (("fold1_train", 11), ("fold1_val", 12)):
        lst = separable_set(tmp_path / "sets" / which, 4, 1, 128, seed=seed)
        dst = tmp_path / "data/prep/s1.8_T1" / f"{which}.txt"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(lst.read_text())
    solver = (REPO / "solvers/s1.8/cnn_solver.prototxt").read_text()
    solver = re.sub(r"(?m)^max_iter: \d+", "max_iter: 2", solver)
    solver = re.sub(r"(?m)^test_iter: \d+", "test_iter: 1", solver)
    solver = re.sub(r"(?m)^test_interval: \d+", "test_interval: 1", solver)
    solver += "snapshot_after_train: false\n"
    (tmp_path / "solvers/s1.8").mkdir(parents=True)
    (tmp_path / "solvers/snapshots").mkdir()
    (tmp_path / "solvers/s1.8/cnn_solver.prototxt").write_text(solver)
    net = (REPO / "prototxt/cnn_train_val.prototxt").read_text()
    (tmp_path / "prototxt").mkdir()
    (tmp_path / "prototxt/cnn_train_val.prototxt").write_text(
        net.replace('\\"batch_size\\": 100', '\\"batch_size\\": 2'))
    res = subprocess.run([str(tool), "train", "--solver", "solvers/s1.8/cnn_solver.prototxt"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, GLOG_minloglevel="0"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "data/prep/s1.8_T1/fold1_val.txt" in res.stderr
    assert "s1.0_T1" not in res.stderr and "test.txt" not in res.stderr
    assert "Test net output #0: accuracy" in res.stderr
