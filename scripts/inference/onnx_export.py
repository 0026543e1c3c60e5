"""ONNX model of a finished experiment: ``python -m scripts.onnx_export --model DIR``
(``make onnx MODEL=DIR``) writes ``DIR/model.onnx`` (opset 17), once ONNX Runtime has
given Caffe's outputs on random inputs (relative difference <= ``PARITY_RTOL``).

The graph computes what the deploy net computes, on the same input: ``data`` float32
(N, T, 3, S, S), raw 0..255 BGR face crops, any N (T = 1 for the CNN); output ``prob``
(N, 2), p(genuine) = ``prob[:, 1]``. scripts/inference/onnx_run.py runs it without Caffe. It is
built from three parts:

* The CNN, from the deploy net's layers in order, each with its blobs of
  ``model.caffemodel``, in Caffe's semantics: Power = ``scale * x + shift`` (the net's
  input_scale / input_shift), Reshape with 0 / -1 as Caffe's, Convolution, ReLU,
  Pooling (MAX, Caffe's ceil-mode output size: ONNX ``ceil_mode = 1``), InnerProduct
  (``Gemm``), Dropout (the identity at test time), Softmax.
* The LSTM of an LSTM-CNN: everything between the blobs ``fc1000`` (N*T, D), frame
  n*T + t of sample n, and ``stack`` (N, T*H) = [h_1 | ... | h_T] (the blob layout of
  prototxt/generate.py) is rebuilt from the LSTM's parameter blobs, found by name and
  checked by shape, and the equations; the deploy net's layer list there is not read, so
  any Caffe build of the same LSTM with the same parameters exports the same graph.

  - ``lstm``: the blobs of Caffe's ``LSTM`` layer, W_xc (4H x D), b_c (4H), W_hc
    (4H x H), gates i, f, o, g, no peepholes, h_0 = c_0 = 0 (``cont`` is 0 at the first
    step): ONNX's ``LSTM`` operator, gates reordered to its i, o, f, c.
  - ``peephole``: the parameters shared by name W_xc, b_c, W_hc and the diagonal
    peepholes w_ci, w_cf, w_co (H each), the paper's Eq. 2-7 unrolled over T steps
    from MatMul, Add, Mul, Sigmoid and Tanh. Not ONNX's ``LSTM`` operator: its output
    gate's peephole reads c_t (Gers et al.), Eq. 4 reads c_{t-1}
    (tests/test_onnx_export.py shows the difference).
* The classifier ``fc2`` and ``prob``, from the layers again.

The time-major order Caffe's recurrent layers use, (T, N, D), is a Reshape to
(N, T, D) and a Transpose here. ``metadata_props`` carry the experiment, T, scale,
input size and both thresholds of ``threshold.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from configs import errors
from configs.errors import UserError
from configs.files import atomic_path
from scripts.inference import onnx_run
from scripts.inference import predictor as P

OPSET = 17
IR_VERSION = 8          # the oldest IR of opset 17: readable by older runtimes
# ONNX Runtime against Caffe: max |onnx - caffe| / max |caffe| over ``prob``. Float32
# sums in another order (MLAS vs OpenBLAS) differ by ~1e-7 relative.
PARITY_RTOL = 1e-5
CAFFE_ORDER = "ifog"    # Caffe's LSTM gate order in W_xc, b_c, W_hc
ONNX_ORDER = "iofg"     # ONNX's LSTM operator's i, o, f, c (its c is Caffe's g)
PEEPHOLES = ("w_ci", "w_cf", "w_co")


class ExportError(UserError):
    """The net holds something this exporter does not translate, or the parity check failed."""


# ---------------------------------------------------------------- graph building
class Graph:
    """Nodes and initializers, with Caffe blob names mapped to their latest tensor (an
    in-place Caffe layer writes a new tensor)."""

    def __init__(self):
        from onnx import helper
        self.h = helper
        self.nodes, self.inits, self.inputs = [], [], []
        self.blob: dict[str, str] = {}
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}#{self._n}"

    def const(self, base: str, value, dtype=np.float32) -> str:
        from onnx import numpy_helper
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.array(value, dtype), n))   # 0-d stays 0-d
        return n

    def op(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        out = self.name(base)
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def ops(self, op: str, inputs: list[str], base: str, n: int, **attrs) -> list[str]:
        outs = [self.name(f"{base}{k}") for k in range(n)]
        self.nodes.append(self.h.make_node(op, inputs, outs, name=outs[0], **attrs))
        return outs


def _pair(values, h, w, default: int) -> tuple[int, int]:
    """Caffe's repeated kernel_size/stride/pad (0, 1 or 2 values) or its _h/_w fields."""
    if h or w:
        return int(h), int(w)
    v = list(values) or [default]
    return (int(v[0]), int(v[-1])) if len(v) <= 2 else (None, None)


def _conv(g: Graph, layer, x: str, blobs) -> str:
    cp = layer.convolution_param
    k = _pair(cp.kernel_size, cp.kernel_h, cp.kernel_w, 0)
    s = _pair(cp.stride, cp.stride_h, cp.stride_w, 1)
    p = _pair(cp.pad, cp.pad_h, cp.pad_w, 0)
    dil = _pair(cp.dilation, 0, 0, 1)
    if None in k + s + p + dil or cp.axis != 1 or len(blobs[0].shape) != 4:
        raise ExportError(f"layer {layer.name}: only 2-D convolution is exported")
    ins = [x, g.const(f"{layer.name}.W", blobs[0])]
    if cp.bias_term:
        ins.append(g.const(f"{layer.name}.b", blobs[1]))
    return g.op("Conv", ins, layer.name, kernel_shape=list(k), strides=list(s),
                pads=[p[0], p[1], p[0], p[1]], dilations=list(dil), group=int(cp.group))


def _pool(g: Graph, layer, x: str) -> str:
    pp = layer.pooling_param
    k = _pair([pp.kernel_size] if pp.kernel_size else [], pp.kernel_h, pp.kernel_w, 0)
    s = _pair([pp.stride], pp.stride_h, pp.stride_w, 1)
    pad = _pair([pp.pad] if pp.pad else [], pp.pad_h, pp.pad_w, 0)
    if pp.pool != 0 or pp.global_pooling or pad != (0, 0) or k[0] < s[0] or k[1] < s[1]:
        raise ExportError(f"layer {layer.name}: only MAX pooling without padding and with "
                          f"kernel >= stride is exported (Caffe's and ONNX's ceil mode agree there)")
    return g.op("MaxPool", [x], layer.name, kernel_shape=list(k), strides=list(s), ceil_mode=1)


def _inner_product(g: Graph, layer, x: str, blobs) -> str:
    ip = layer.inner_product_param
    if ip.axis != 1:
        raise ExportError(f"layer {layer.name}: InnerProduct axis {ip.axis}; only axis 1 is "
                          f"exported outside the LSTM")
    flat = g.op("Flatten", [x], f"{layer.name}.flat", axis=1)
    ins = [flat, g.const(f"{layer.name}.W", blobs[0])]
    if ip.bias_term:
        ins.append(g.const(f"{layer.name}.b", blobs[1]))
    return g.op("Gemm", ins, layer.name, transB=0 if ip.transpose else 1)


def _power(g: Graph, layer, x: str) -> str:
    pw = layer.power_param
    if pw.power != 1.0 or pw.scale == 0.0:
        raise ExportError(f"layer {layer.name}: Power with power {pw.power}, scale {pw.scale}; "
                          f"only power 1 (scale * x + shift) is exported")
    if pw.scale != 1.0:       # Caffe: caffe_scal, then caffe_add_scalar, in float
        x = g.op("Mul", [x, g.const(f"{layer.name}.scale", np.float32(pw.scale))], layer.name)
    if pw.shift != 0.0:
        x = g.op("Add", [x, g.const(f"{layer.name}.shift", np.float32(pw.shift))], layer.name)
    return x


def _reshape(g: Graph, layer, x: str) -> str:
    rp = layer.reshape_param
    if rp.axis != 0 or rp.num_axes != -1:
        raise ExportError(f"layer {layer.name}: Reshape with axis/num_axes is not exported")
    shape = g.const(f"{layer.name}.shape", list(rp.shape.dim), np.int64)
    return g.op("Reshape", [x, shape], layer.name)     # 0 copies, -1 infers: as Caffe


def translate(g: Graph, layer, blobs) -> None:
    """Add one Caffe layer (not Input) to ``g``."""
    t = layer.type
    x = g.blob[layer.bottom[0]]
    if t == "Dropout":                 # the identity in the TEST phase
        y = x
    elif t == "ReLU":
        slope = layer.relu_param.negative_slope
        y = g.op("LeakyRelu", [x], layer.name, alpha=slope) if slope else g.op("Relu", [x], layer.name)
    elif t == "Softmax":
        y = g.op("Softmax", [x], layer.name, axis=int(layer.softmax_param.axis))
    elif t == "Convolution":
        y = _conv(g, layer, x, blobs)
    elif t == "Pooling":
        y = _pool(g, layer, x)
    elif t == "InnerProduct":
        y = _inner_product(g, layer, x, blobs)
    elif t == "Power":
        y = _power(g, layer, x)
    elif t == "Reshape":
        y = _reshape(g, layer, x)
    else:
        raise ExportError(f"layer {layer.name}: type {t} is not exported outside the LSTM")
    g.blob[layer.top[0]] = y


# ---------------------------------------------------------------- the LSTM
def _gates(a: np.ndarray, H: int, src: str, dst: str) -> np.ndarray:
    """Reorder the 4 gate blocks of H rows of ``a`` from order ``src`` to ``dst``."""
    return np.concatenate([a[src.index(k) * H:(src.index(k) + 1) * H] for k in dst])


def lstm_params(kind: str, proto, by_layer: dict, by_name: dict) -> dict:
    """W_xc, b_c, W_hc (and w_ci, w_cf, w_co for ``peephole``), shapes checked."""
    if kind == "lstm":
        layers = [l for l in proto.layer if l.type == "LSTM"]
        if len(layers) != 1 or len(by_layer.get(layers[0].name, [])) != 3:
            raise ExportError("lstm model: expected one Caffe LSTM layer with 3 blobs "
                              "(W_xc, b_c, W_hc)")
        p = dict(zip(("W_xc", "b_c", "W_hc"), by_layer[layers[0].name]))
    else:
        missing = [n for n in ("W_xc", "b_c", "W_hc") + PEEPHOLES if n not in by_name]
        if missing:
            raise ExportError(f"peephole model: no parameter named {', '.join(missing)} in the net")
        p = {n: by_name[n] for n in ("W_xc", "b_c", "W_hc") + PEEPHOLES}
    H = np.size(p["b_c"]) // 4                 # b_c: one bias per gate and cell
    want = {"W_xc": (4 * H, np.shape(p["W_xc"])[-1]), "b_c": (4 * H,), "W_hc": (4 * H, H),
            **{n: (H,) for n in PEEPHOLES}}
    for n in p:
        a = p[n] = np.asarray(p[n], np.float32)
        if len(want[n]) == 1:        # a Scale layer's blob may carry more axes of size 1
            a = p[n] = a.reshape(-1)
        if a.shape != want[n]:
            raise ExportError(f"{kind} model: parameter {n} has shape {a.shape}, expected {want[n]}")
    return p


def time_major(g: Graph, x: str, T: int, D: int) -> str:
    """(N*T, D), frame n*T + t -> (T, N, D)."""
    x = g.op("Reshape", [x, g.const("nt_shape", [-1, T, D], np.int64)], "x_nt")
    return g.op("Transpose", [x], "x_tm", perm=[1, 0, 2])


def lstm_op(g: Graph, x_tm: str, p: dict, T: int, peepholes: bool = False) -> str:
    """ONNX's LSTM operator on x_tm (T, N, D) with Caffe's blobs -> stack (N, T*H).
    ``peepholes``: also pass w_ci, w_cf, w_co as its P (its output gate then reads c_t:
    not the paper's Eq. 4; used only to show the difference)."""
    H = p["W_hc"].shape[1]
    W = g.const("lstm.W", _gates(p["W_xc"], H, CAFFE_ORDER, ONNX_ORDER)[None])
    R = g.const("lstm.R", _gates(p["W_hc"], H, CAFFE_ORDER, ONNX_ORDER)[None])
    B = g.const("lstm.B", np.concatenate([_gates(p["b_c"], H, CAFFE_ORDER, ONNX_ORDER),
                                          np.zeros(4 * H, np.float32)])[None])
    ins = [x_tm, W, R, B]
    if peepholes:     # ONNX's P: [P_i, P_o, P_f]
        ins += ["", "", "", g.const("lstm.P", np.concatenate(
            [p["w_ci"], p["w_co"], p["w_cf"]])[None])]
    y = g.ops("LSTM", ins, "lstm.Y", 1, hidden_size=H)[0]               # (T, 1, N, H)
    y = g.op("Squeeze", [y, g.const("axis1", [1], np.int64)], "lstm.h")  # (T, N, H)
    y = g.op("Transpose", [y], "h_nt", perm=[1, 0, 2])                   # (N, T, H)
    return g.op("Reshape", [y, g.const("stack_shape", [-1, T * H], np.int64)], "stack")


def peephole_step(g: Graph, pre: str, c_prev: str | None, w: dict, H: int) -> tuple[str, str]:
    """Eq. 2-7 for one step from ``pre`` = W_x* x_t + W_h* h_{t-1} + b (N, 4H), gates
    i, f, o, g; ``c_prev`` None at t = 1 (c_0 = 0: the peephole and forget terms are 0)."""
    i, f, o, gg = g.ops("Split", [pre, g.const("split", [H] * 4, np.int64)], "gate", 4, axis=1)
    act = {}
    for name, z in (("i", i), ("f", f), ("o", o)):      # Eq. 2-4: each sees c_{t-1}
        if c_prev is not None:
            z = g.op("Add", [z, g.op("Mul", [c_prev, w[f"w_c{name}"]], f"peep_{name}")], name)
        act[name] = g.op("Sigmoid", [z], name)
    gt = g.op("Tanh", [gg], "g")                                         # Eq. 5
    c = g.op("Mul", [act["i"], gt], "i_g")                               # Eq. 6
    if c_prev is not None:
        c = g.op("Add", [g.op("Mul", [act["f"], c_prev], "f_c"), c], "c")
    h = g.op("Mul", [act["o"], g.op("Tanh", [c], "tanh_c")], "h")        # Eq. 7
    return h, c


def peephole_unrolled(g: Graph, x_tm: str, p: dict, T: int) -> str:
    """The paper's LSTM (Eq. 2-7) unrolled over T steps on x_tm (T, N, D) -> stack (N, T*H)."""
    H = p["W_hc"].shape[1]
    xw = g.op("MatMul", [x_tm, g.const("W_xc_T", p["W_xc"].T)], "xw")
    xw = g.op("Add", [xw, g.const("b_c", p["b_c"])], "xw_b")             # (T, N, 4H)
    R = g.const("W_hc_T", p["W_hc"].T)
    w = {n: g.const(n, p[n]) for n in PEEPHOLES}
    h = c = None
    hs = []
    for t in range(T):
        pre = g.op("Gather", [xw, g.const(f"t{t}", np.int64(t), np.int64)], f"xw_{t + 1}", axis=0)
        if h is not None:
            pre = g.op("Add", [pre, g.op("MatMul", [h, R], f"hw_{t + 1}")], f"pre_{t + 1}")
        h, c = peephole_step(g, pre, c, w, H)
        hs.append(h)
    return g.op("Concat", hs, "stack", axis=1)


# ---------------------------------------------------------------- whole model
def caffe_params(net, proto) -> tuple[dict, dict]:
    """({layer name: [blob arrays]}, {shared parameter name: array}) of a pycaffe net."""
    by_layer = {name: [np.array(b.data) for b in blobs] for name, blobs in net.params.items()}
    by_name = {}
    for layer in proto.layer:
        for i, spec in enumerate(layer.param):
            if spec.name and i < len(by_layer.get(layer.name, [])):
                by_name.setdefault(spec.name, by_layer[layer.name][i])
    return by_layer, by_name


def _span(proto, first_blob: str, last_blob: str) -> tuple[int, int]:
    """Layer indices: the last layer writing ``first_blob``, the first reading ``last_blob``."""
    tops = [i for i, l in enumerate(proto.layer) if first_blob in l.top]
    reads = [i for i, l in enumerate(proto.layer) if last_blob in l.bottom]
    if not tops or not reads:
        raise ExportError(f"the net has no blob {first_blob!r} or none reads {last_blob!r} "
                          f"(the LSTM-CNN blob layout of prototxt/generate.py)")
    return tops[-1], reads[0]


def build(net, proto, kind: str, outputs=("prob",), lstm_op_peepholes: bool = False):
    """onnx.ModelProto of a pycaffe deploy ``net`` (its NetParameter ``proto``) of model
    ``kind``; ``outputs``: Caffe blob names to expose (``prob``, and e.g. ``fc1000``,
    ``stack`` for tests). ``lstm_op_peepholes``: build a peephole net with ONNX's LSTM
    operator instead (wrong for Eq. 4: only to show it)."""
    from onnx import TensorProto, helper
    g = Graph()
    by_layer, by_name = caffe_params(net, proto)
    if proto.layer[0].type != "Input":
        raise ExportError("a deploy net starts with an Input layer")
    dims = list(proto.layer[0].input_param.shape[0].dim)
    T = int(dims[1])
    data = proto.layer[0].top[0]
    g.blob[data] = data
    g.inputs.append(helper.make_tensor_value_info(data, TensorProto.FLOAT, ["N"] + dims[1:]))
    layers = list(enumerate(proto.layer))[1:]
    if kind != "cnn":
        end, resume = _span(proto, "fc1000", "stack")
        p = lstm_params("lstm" if kind == "lstm" else "peephole", proto, by_layer, by_name)
        layers = [(i, l) for i, l in layers if i <= end or i >= resume]
    for i, layer in layers:
        translate(g, layer, by_layer.get(layer.name, []))
        if kind != "cnn" and i == end:
            x_tm = time_major(g, g.blob["fc1000"], T, p["W_xc"].shape[1])
            g.blob["stack"] = (peephole_unrolled(g, x_tm, p, T)
                               if kind == "peephole" and not lstm_op_peepholes
                               else lstm_op(g, x_tm, p, T, peepholes=kind == "peephole"))
    outs = []
    for name in outputs:        # batch axis: N for prob, unnamed for e.g. fc1000 (N*T rows)
        g.nodes.append(helper.make_node("Identity", [g.blob[name]], [name], name=f"out_{name}"))
        dims = list(net.blobs[name].data.shape)
        outs.append(helper.make_tensor_value_info(
            name, TensorProto.FLOAT, ["N" if name == "prob" else None] + dims[1:]))
    graph = helper.make_graph(g.nodes, proto.name or kind, g.inputs, outs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lstm-cnn-fasd scripts/onnx_export.py")
    model.ir_version = IR_VERSION
    return model


def load_caffe(model: P.Model):
    """(pycaffe TEST net, NetParameter of deploy.prototxt) of a finished experiment."""
    from google.protobuf import text_format
    from scripts.training.caffe_io import caffe_mode
    caffe = caffe_mode(None)
    from caffe.proto import caffe_pb2
    proto = caffe_pb2.NetParameter()
    text_format.Merge(model.deploy.read_text(), proto)
    return caffe.Net(str(model.deploy), str(model.weights), caffe.TEST), proto


def caffe_forward(net, x: np.ndarray, blobs=("prob",)) -> dict:
    net.blobs["data"].reshape(*x.shape)
    net.reshape()
    net.blobs["data"].data[...] = x
    net.forward()
    return {b: net.blobs[b].data.copy() for b in blobs}


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: the parity measure."""
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def random_input(model: P.Model, n: int, seed: int = 0) -> np.ndarray:
    """(n, T, 3, S, S) float32 of integers 0..255, as uint8 crops cast."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, model.T, 3, model.size, model.size)).astype(np.float32)


def parity(session, net, x: np.ndarray, blobs=("prob",)) -> dict:
    """{blob: rel_diff(ONNX Runtime, Caffe)} on input ``x``."""
    ref = caffe_forward(net, x, blobs)
    got = onnx_run.forward(session, x, blobs)
    return {b: rel_diff(o.reshape(ref[b].shape), ref[b]) for b, o in zip(blobs, got)}


def export(model_dir, out=None, n: int = 4) -> dict:
    """Write ``out`` (default MODEL/model.onnx) after checking ONNX Runtime against Caffe
    on ``n`` random inputs and on one; returns {"path", "parity", "bytes"}."""
    import onnx
    model = P.load_model(model_dir)
    out = Path(out) if out else model.dir / "model.onnx"
    net, proto = load_caffe(model)
    m = build(net, proto, model.exp.model)
    onnx.checker.check_model(m, full_check=True)
    meta = {"experiment": f"{model.exp.name}/{model.exp.split}", "T": model.T,
            "scale": model.exp.scale, "input_size": model.size,
            "input": "data float32 (N, T, 3, S, S), BGR 0..255", "output": "prob (N, 2); "
            "p(genuine) = prob[:, 1]", "video_threshold": model.threshold,
            "sample_threshold": model.sample_threshold, "decision_rule": P.DECISION_RULE}
    onnx.helper.set_model_props(m, {k: str(v) for k, v in meta.items()})
    blob = m.SerializeToString()
    sess = onnx_run.load_session(blob)
    worst = max(parity(sess, net, random_input(model, k, seed=k))["prob"] for k in (n, 1))
    if not worst <= PARITY_RTOL:
        raise ExportError(f"{model.dir}: ONNX Runtime differs from Caffe by {worst:.2e} "
                          f"(relative, > {PARITY_RTOL:g}); {out} not written")
    with atomic_path(out, ".onnx") as tmp:
        tmp.write_bytes(blob)
    return {"path": out, "parity": worst, "bytes": len(blob)}


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.onnx_export",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="finished experiment folder, e.g. "
                    "RUN/experiments/peephole_T7_s1.8/full")
    ap.add_argument("--out", help="where to write (default MODEL/model.onnx)")
    a = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    r = export(a.model, a.out)
    print(f"wrote {r['path']} ({r['bytes'] / 1e6:.1f} MB, opset {OPSET}); ONNX Runtime vs Caffe "
          f"on random inputs: max relative difference of prob {r['parity']:.1e} "
          f"(<= {PARITY_RTOL:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
