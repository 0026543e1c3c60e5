"""Nets and solvers of the paper, generated with Caffe's NetSpec (paper §3.1-§3.3, §4.2).

Three models, all from Caffe's built-in layers only:

``cnn``       §3.2 / §4.2: conv 48@3x3 s1, ReLU, max-pool 2/2; conv 96@3x3 s1, ReLU,
              max-pool 2/2; FC 1000, ReLU, dropout 0.5; FC 2; softmax (Figure 3).
``lstm``      LSTM-CNN with Caffe's own ``LSTM`` layer (30 cells, no peepholes) between
              FC 1000 and the classifier.
``peephole``  LSTM-CNN with the paper's LSTM, Eq. 2-7, unrolled over T steps, each
              step Caffe's ``LSTMUnit`` after InnerProduct (W_h h_{t-1}), three Scale
              (the peepholes on c_{t-1}), Concat and Eltwise (the pre-activations); every
              parameter is shared across time steps by name (Figure 4).

Blob layout (stated once here; data_prep/hdf5_layout.py states the HDF5 side)::

    data     (N, T, 3, S, S)  raw 0..255, BGR, sample-major, as the data layer / deploy input
    scaled   (N, T, 3, S, S)  Power: input_scale * data + input_shift
    frames   (N*T, 3, S, S)   frame n*T + t is frame t of sample n; the CNN runs on all
    fc1000   (N*T, 1000)
    x_tm     (T, N, 1000)     time-major, as Caffe's recurrent layers want (no Permute
                              layer in BVLC Caffe: Reshape + Slice + Concat + Reshape)
    cont     (T, N)           0 at t = 0, 1 after: made in the net (Reduction + Power)
    lstm     (T, N, 30)       h_1 .. h_T (lstm model; peephole: blobs h_1 .. h_T, (N, 30),
                              and c_1 .. c_T, (1, N, 30), LSTMUnit's layout)
    stack    (N, T*30)        [h_1 | h_2 | ... | h_T] per sample (§3.2: "we stack all the
                              outputs each time steps")
    fc2      (N, 2)           one classifier for the stacked vector, then softmax
    prob     (N, 2)           deploy only, its one output; score p(genuine) = prob[:, 1]
                              (label 1 = genuine)

The CNN is the same net at T = 1. The deploy nets take raw 0..255 input of shape
(N, T, 3, S, S) and output ``prob`` (N, 2); every Reshape keeps the batch axis as
-1, so ``net.blobs['data'].reshape(n, T, 3, S, S); net.reshape()`` serves any batch.

Run ``python -m prototxt.generate`` to rewrite the committed files in prototxt/ and
solvers/ from configs/default.yaml; tests/test_nets.py checks they are byte-identical.
"""
from __future__ import annotations

import argparse
import json
import textwrap
import sys
from pathlib import Path

import caffe
from caffe import layers as L, params as P
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from configs import errors
from configs.files import write_text_atomic
from configs.grammar import MODELS, check_model, model_name, scale_dir  # noqa: F401
from prototxt.data_layer import Augment

REPO = Path(__file__).resolve().parent.parent
GATES = ("i", "f", "o", "g")  # Caffe's LSTM gate order in W_xc, b_c, W_hc (caffe/src/caffe/layers/lstm_unit_layer.cpp)
PEEPHOLE_GATES = ("i", "f", "o")  # Eq. 2-4 see c_{t-1}; g (Eq. 5) does not


# ---------------------------------------------------------------------------
# Paths of the prepared data (data_prep/hdf5_layout.py owns the layout)
# ---------------------------------------------------------------------------

def list_file(prep_dir, scale: float, T: int, which: str) -> Path:
    """List file of .h5 shards for the data layer's source (data_prep's layout)."""
    from data_prep.hdf5_layout import list_file as _lf
    return _lf(prep_dir, scale, T, which)


# ---------------------------------------------------------------------------
# Named helpers, in the style of caffe/examples/pycaffe/caffenet.py
# ---------------------------------------------------------------------------

def _filler(cfg_net: dict, kind: str) -> dict:
    """Weight filler of the CNN layers (``cnn``) or of the LSTM weights (``lstm``)."""
    if kind == "cnn":
        name = cfg_net["weight_filler"]
        if name == "xavier":
            return dict(type="xavier")
        if name == "gaussian":
            return dict(type="gaussian", std=cfg_net["weight_std"])
        raise ValueError(f"net.weight_filler: {name!r}; expected xavier or gaussian")
    r = cfg_net["lstm_init_range"]
    return dict(type="uniform", min=-r, max=r)


def conv_relu(bottom, nout, cfg_net, ks=3, stride=1):
    conv = L.Convolution(bottom, kernel_size=ks, stride=stride, num_output=nout,
                         weight_filler=_filler(cfg_net, "cnn"),
                         bias_filler=dict(type="constant", value=0))
    return conv, L.ReLU(conv, in_place=True)


def fc_relu(bottom, nout, cfg_net):
    fc = L.InnerProduct(bottom, num_output=nout, weight_filler=_filler(cfg_net, "cnn"),
                        bias_filler=dict(type="constant", value=0))
    return fc, L.ReLU(fc, in_place=True)


def max_pool(bottom, ks=2, stride=2):
    return L.Pooling(bottom, pool=P.Pooling.MAX, kernel_size=ks, stride=stride)


def shared(name):
    """ParamSpec that shares a blob by name across time steps."""
    return dict(name=name, lr_mult=1, decay_mult=1)


def cnn_features(n, data, cfg_net, T):
    """§4.2's CNN up to FC 1000 (ReLU, dropout), run on all N*T frames at once."""
    S = cfg_net["input_size"]
    n.scaled = L.Power(data, power=1.0, scale=cfg_net["input_scale"],
                       shift=cfg_net["input_shift"])
    n.frames = L.Reshape(n.scaled, reshape_param=dict(shape=dict(dim=[-1, 3, S, S])))
    n.conv1, n.relu1 = conv_relu(n.frames, cfg_net["conv1_filters"], cfg_net,
                                 ks=cfg_net["kernel"])
    n.pool1 = max_pool(n.relu1, cfg_net["pool"], cfg_net["pool"])
    n.conv2, n.relu2 = conv_relu(n.pool1, cfg_net["conv2_filters"], cfg_net,
                                 ks=cfg_net["kernel"])
    n.pool2 = max_pool(n.relu2, cfg_net["pool"], cfg_net["pool"])
    n.fc1000, n.relu3 = fc_relu(n.pool2, cfg_net["fc"], cfg_net)
    n.drop = L.Dropout(n.relu3, dropout_ratio=cfg_net["dropout"], in_place=True)
    return n.drop


def to_time_major(n, x, T, D):
    """(N*T, D), frame n*T + t  ->  x_tm (T, N, D). Slice + Concat + Reshape (no Permute)."""
    n.x_nt = L.Reshape(x, reshape_param=dict(shape=dict(dim=[-1, T, D])))      # (N, T, D)
    steps = L.Slice(n.x_nt, slice_param=dict(axis=1), ntop=T)                 # T x (N, 1, D)
    for t in range(T):
        n[f"x_nt{t + 1}"] = steps[t]
    n.x_tn = L.Concat(*steps, concat_param=dict(axis=0))                      # (T*N, 1, D)
    n.x_tm = L.Reshape(n.x_tn, reshape_param=dict(shape=dict(dim=[T, -1, D])))  # (T, N, D)
    return n.x_tm


def sequence_start(n, x_tm):
    """(1, N) zeros and (T-1, N) ones from x_tm's shape alone; nothing flows back.

    Reduction sums the feature axis away, Power with scale 0 turns any value into the
    constant ``shift``. The data files therefore need no ``cont`` dataset.
    """
    n.x_first, n.x_rest = L.Slice(x_tm, slice_param=dict(axis=0, slice_point=[1]), ntop=2,
                                  propagate_down=[False])
    n.sum_first = L.Reduction(n.x_first, axis=2)                               # (1, N)
    n.sum_rest = L.Reduction(n.x_rest, axis=2)                                 # (T-1, N)
    n.zeros_1n = L.Power(n.sum_first, power=1.0, scale=0.0, shift=0.0)
    n.ones_rest = L.Power(n.sum_rest, power=1.0, scale=0.0, shift=1.0)
    return n.zeros_1n, n.ones_rest


def caffe_lstm(n, x_tm, T, cfg_net):
    """Caffe's LSTM layer (gates i, f, o, g; no peepholes) on (T, N, D) with cont (T, N)."""
    zeros_1n, ones_rest = sequence_start(n, x_tm)
    n.cont = L.Concat(zeros_1n, ones_rest, concat_param=dict(axis=0))         # (T, N)
    n.lstm = L.LSTM(x_tm, n.cont, propagate_down=[True, False],
                    recurrent_param=dict(num_output=cfg_net["lstm_cells"],
                                         weight_filler=_filler(cfg_net, "lstm"),
                                         bias_filler=dict(type="constant",
                                                          value=cfg_net["lstm_bias"])))
    return stack_time_major(n, n.lstm, T, cfg_net["lstm_cells"])


def stack_time_major(n, h_tm, T, H):
    """(T, N, H) -> stack (N, T*H) = [h_1 | ... | h_T] per sample."""
    steps = L.Slice(h_tm, slice_param=dict(axis=0), ntop=T)                   # T x (1, N, H)
    for t in range(T):
        n[f"h_{t + 1}"] = steps[t]
    n.h_cat = L.Concat(*steps, concat_param=dict(axis=2))                     # (1, N, T*H)
    n.stack = L.Reshape(n.h_cat, reshape_param=dict(shape=dict(dim=[-1, T * H])))
    return n.stack


def _peephole_filler(cfg_net: dict) -> dict:
    peep = cfg_net["peephole_init"]
    if peep == "uniform":
        return _filler(cfg_net, "lstm")
    if peep == "zero":
        return dict(type="constant", value=0.0)
    raise ValueError(f"net.peephole_init: {peep!r}; expected uniform or zero")


def peephole_step(n, t, xw_t, h_prev, c_prev, cont_t, zeros, cfg_net):
    """One step of Eq. 2-7 on Caffe's ``LSTMUnit``; t counts from 1.

    Blobs in the unit's layout (1, N, *): xw_t = W_x* x_t + b_* (1, N, 4H), h_prev and
    c_prev (1, N, H), cont_t (1, N), zeros (1, N, H). Every peephole term reads c_{t-1}
    (Eq. 2-4; Eq. 4 as printed), so all four pre-activations are summed before the unit:
    pre = xw_t + W_h* h_{t-1} + [w_ci c | w_cf c | w_co c | 0]. ``LSTMUnit``
    (caffe/src/caffe/layers/lstm_unit_layer.cpp) then applies sigmoid to i, f, o and
    tanh to g (Eq. 2-5), c_t = cont_t f c_{t-1} + i g (Eq. 6) and h_t = o tanh(c_t)
    (Eq. 7). Returns (h_t, c_t) (1, N, H); blob h_<t> is h_t as (N, H).
    """
    H = cfg_net["lstm_cells"]
    n[f"hw_{t}"] = L.InnerProduct(h_prev, num_output=4 * H, bias_term=False, axis=2,
                                  weight_filler=_filler(cfg_net, "lstm"),
                                  param=[shared("W_hc")])                     # W_h* h_{t-1}
    for gate in PEEPHOLE_GATES:                                               # Eq. 2-4
        n[f"{gate}_peep_{t}"] = L.Scale(c_prev, axis=2, num_axes=1, bias_term=False,
                                        filler=_peephole_filler(cfg_net),
                                        param=[shared(f"w_c{gate}")])         # W_c* c_{t-1}
    n[f"peep_{t}"] = L.Concat(*(n[f"{gate}_peep_{t}"] for gate in PEEPHOLE_GATES), zeros,
                              concat_param=dict(axis=2))                      # g: none (Eq. 5)
    n[f"pre_{t}"] = L.Eltwise(xw_t, n[f"hw_{t}"], n[f"peep_{t}"], operation=P.Eltwise.SUM)
    # cont_t takes no gradient (LSTMUnit refuses one; Caffe would ask, as x_tm needs one)
    n[f"c_{t}"], n[f"h_unit_{t}"] = L.LSTMUnit(c_prev, n[f"pre_{t}"], cont_t, ntop=2,
                                                    propagate_down=[True, True, False],
                                                    name=f"unit_{t}")
    n[f"h_{t}"] = L.Reshape(n[f"h_unit_{t}"], reshape_param=dict(shape=dict(dim=[-1, H])))
    return n[f"h_unit_{t}"], n[f"c_{t}"]


def peephole_lstm(n, x_tm, T, cfg_net):
    """The paper's LSTM (Eq. 2-7) unrolled over T steps; returns stack (N, T*H).

    Parameters, each shared by name over the steps: W_xc (4H x D) and b_c (4H) in one
    InnerProduct over all steps (as in Caffe's LSTM), W_hc (4H x H), and the diagonal
    peepholes w_ci, w_cf, w_co (H each, a Scale layer per gate and step). Gate order
    i, f, o, g as in Caffe's LSTM, so the two variants take the same W_xc, b_c, W_hc.
    h_0 = c_0 = 0 at every sequence start, made from x_tm's shape; cont (T, N) is 0 at
    t = 1, as Caffe's LSTM layer gets it. Each step (``peephole_step``) is 8 layers:
    Caffe's own ``LSTMUnit`` and 7 around it (``LSTMLayer`` unrolls its steps around it too).
    """
    H = cfg_net["lstm_cells"]
    zeros_1n, ones_rest = sequence_start(n, x_tm)
    n.cont = L.Concat(zeros_1n, ones_rest, concat_param=dict(axis=0))         # (T, N)
    conts = L.Slice(n.cont, slice_param=dict(axis=0), ntop=T)                 # T x (1, N)
    n.zeros_1n1 = L.Reshape(zeros_1n, reshape_param=dict(shape=dict(dim=[1, -1, 1])))
    n.state_0 = L.Tile(n.zeros_1n1, axis=2, tiles=H)                          # (1, N, H) zeros
    n.xw = L.InnerProduct(x_tm, num_output=4 * H, axis=2,
                          weight_filler=_filler(cfg_net, "lstm"),
                          bias_filler=dict(type="constant", value=cfg_net["lstm_bias"]),
                          param=[shared("W_xc"), shared("b_c")])              # (T, N, 4H)
    steps = L.Slice(n.xw, slice_param=dict(axis=0), ntop=T)                   # T x (1, N, 4H)
    h, c = n.state_0, n.state_0
    for t in range(1, T + 1):
        n[f"xw_{t}"], n[f"cont_{t}"] = steps[t - 1], conts[t - 1]
        h, c = peephole_step(n, t, n[f"xw_{t}"], h, c, n[f"cont_{t}"], n.state_0, cfg_net)
    n.silence_c = L.Silence(c, ntop=0)                                        # c_T: no later step
    n.stack = L.Concat(*(n[f"h_{t}"] for t in range(1, T + 1)),
                       concat_param=dict(axis=1))                             # (N, T*H)
    return n.stack


# ---------------------------------------------------------------------------
# Whole nets
# ---------------------------------------------------------------------------

def _body(n, data, model, T, cfg_net):
    """data (N, T, 3, S, S) raw -> fc2 (N, 2)."""
    feats = cnn_features(n, data, cfg_net, T)
    if model == "cnn":
        top = feats
    else:
        x_tm = to_time_major(n, feats, T, cfg_net["fc"])
        top = caffe_lstm(n, x_tm, T, cfg_net) if model == "lstm" else peephole_lstm(n, x_tm, T, cfg_net)
    n.fc2 = L.InnerProduct(top, num_output=2, weight_filler=_filler(cfg_net, "cnn"),
                           bias_filler=dict(type="constant", value=0))
    return n.fc2


def _finish(n, name, model, cfg_net) -> caffe_pb2.NetParameter:
    proto = n.to_proto()
    proto.name = name
    for layer in proto.layer:  # NetSpec names a layer after its first top
        if layer.type == "Slice":
            layer.name = f"slice_{layer.bottom[0]}"
    return proto


def data_layer(source, batch: int, shuffle: bool, seed: int, phase,
               augment: dict | None = None) -> caffe_pb2.LayerParameter:
    """The ``SequenceData`` Python layer (prototxt/data_layer.py) on one list file: with
    ``shuffle`` every minibatch is a seeded uniform draw over all samples of the list;
    ``augment`` (solver.augment, TRAIN only) is written only when one of its parts is on,
    so nets without it are unchanged."""
    lp = caffe_pb2.LayerParameter(name="data" if phase == caffe.TRAIN else "data_test",
                                  type="Python", top=["data", "label"])
    lp.include.add().phase = phase
    lp.python_param.module = "prototxt.data_layer"
    lp.python_param.layer = "SequenceData"
    param = {"source": str(source), "batch_size": int(batch), "shuffle": bool(shuffle),
             "seed": int(seed)}
    aug = Augment.from_param(augment)          # None when every part is off
    if aug is not None:
        param["augment"] = aug.param()
    lp.python_param.param_str = json.dumps(param)
    return lp


def net_param(cfg: dict, model: str, T: int, train_list, val_list, batch: int | None = None,
              val_batch: int | None = None) -> caffe_pb2.NetParameter:
    """Train/val net: SequenceData (TRAIN: train_list, minibatches drawn over the whole list;
    TEST: val_list in order), loss, accuracy.

    ``train_list`` / ``val_list`` are list files of data_prep's layout (written into the
    prototxt as given: relative paths resolve from the folder ``caffe`` runs in).
    """
    check_model(model, T)
    c_net, c_sol = cfg["net"], cfg["solver"]
    if batch is None:
        batch = c_sol["batch_cnn"] if model == "cnn" else c_sol["batch_lstm"]
    val_batch = batch if val_batch is None else val_batch
    S = c_net["input_size"]
    n = caffe.NetSpec()
    # A placeholder with the data layer's tops; replaced by the Python layers below.
    n.data, n.label = L.DummyData(shape=[dict(dim=[batch, T, 3, S, S]), dict(dim=[batch])], ntop=2)
    fc2 = _body(n, n.data, model, T, c_net)
    n.loss = L.SoftmaxWithLoss(fc2, n.label)
    n.accuracy = L.Accuracy(fc2, n.label, include=dict(phase=caffe.TEST))
    proto = _finish(n, model_name(model, T), model, c_net)
    del proto.layer[0]
    seed = int(cfg["seed"])
    proto.layer.insert(0, data_layer(val_list, val_batch, False, seed, caffe.TEST))
    proto.layer.insert(0, data_layer(train_list, batch, True, seed, caffe.TRAIN,
                                     c_sol["augment"]))
    return proto


def deploy_net(cfg: dict, model: str, T: int, batch: int | None = None) -> caffe_pb2.NetParameter:
    """Deploy net: Input ``data`` (batch, T, 3, S, S) raw 0..255 -> ``prob`` (batch, 2).

    ``prob[:, 1]`` is p(genuine) = p(y = 1 | x), the paper's score (§4.4)."""
    check_model(model, T)
    c_net = cfg["net"]
    batch = c_net["deploy_batch"] if batch is None else batch
    S = c_net["input_size"]
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[batch, T, 3, S, S]))
    fc2 = _body(n, n.data, model, T, c_net)
    n.prob = L.Softmax(fc2)
    return _finish(n, model_name(model, T) + "_deploy", model, c_net)


# ---------------------------------------------------------------------------
# Solvers (§3.3)
# ---------------------------------------------------------------------------

def solver_text(cfg: dict, model: str, T: int, net_path, snapshot_prefix, schedule=None,
                test_iter=None, test_interval=None, header: str = "",
                stage: str | None = None, snapshot=None) -> str:
    """Solver prototxt with the paper's sentence behind each value as a comment.
    ``schedule``: a run's configs.schedule.Schedule (learning rate, policy, steps,
    max_iter; default the config's ``solver.*`` as they are); ``stage``: both phases' net
    state stage (picks a scale in ``committed_train_val``'s net); ``test_interval``,
    ``snapshot``: Caffe's own (default solver.*; snapshot 0 = off)."""
    check_model(model, T)
    s = _solver_values(cfg, schedule, snapshot=snapshot, test_iter=test_iter, test_interval=test_interval)
    snapshot, max_iter, stepvalues, test_iter, test_interval = (
        s[k] for k in ("snapshot", "max_iter", "stepvalues", "test_iter", "test_interval"))
    batch = s["batch_cnn"] if model == "cnn" else s["batch_lstm"]
    lines = [header.rstrip("\n")] if header else []
    lines += [f'net: "{net_path}"']
    if stage is not None:
        lines += [f"# The net holds the data layers of every scale; stage \"{stage}\" picks this one's.",
                  f'train_state {{ stage: "{stage}" }}',
                  f'test_state {{ stage: "{stage}" }}']
    lines += [
        "# §3.3 \"We use Stochastic Gradient Decent (SGD) with a momentum of 0.9\"",
        'type: "SGD"',
        f"momentum: {_num(s['momentum'])}",
        "# §3.3 \"The learning rate is 0.001 for several iterations and when the loss seems no",
        "# descending, we lower the learning rate by a factor of 10\": a fixed schedule here",
        "# (the paper gives no iteration counts; steps and max_iter are this project's choice).",
        f"base_lr: {_num(s['base_lr'])}",
        f'lr_policy: "{s["lr_policy"]}"',
        f"gamma: {_num(s['gamma'])}",
    ]
    if s["lr_policy"] == "multistep":
        lines += [f"stepvalue: {int(v)}" for v in stepvalues]
    elif s["lr_policy"] == "step":
        lines += [f"stepsize: {int(stepvalues[0])}"]
    lines += [
        f"max_iter: {int(max_iter)}",
        "# §3.3 \"we use L2 norm to penalize the parameters with a weight decay of 0.01\"",
        f"weight_decay: {_num(s['weight_decay'])}",
        'regularization_type: "L2"',
        "# §3.3 \"The mini-batch we use is 100 for CNN architecture and 32 for LSTM-CNN\":",
        f"# batch_size {batch} is set in the net's data layer"
        + (f" ({batch} samples of {T} frames)." if model != "cnn" else "."),
        "# §3.3 \"use the truncated BPTT\": each sample is one whole T-step sequence, so",
        "# back-propagation through time is truncated at T steps by construction.",
        "# Validation: test_iter x the TEST batch should cover the held-out list once.",
        f"test_iter: {int(test_iter)}",
        f"test_interval: {int(test_interval)}",
        f"test_initialization: {str(s['test_initialization']).lower()}",
        f"display: {int(s['display'])}",
        f"average_loss: {int(s['average_loss'])}",
        f"snapshot: {int(snapshot)}",
        f'snapshot_prefix: "{snapshot_prefix}"',
        f"solver_mode: {s['mode']}",
        "# Seed in plain sight: configs/default.yaml `seed`.",
        f"random_seed: {int(cfg['seed'])}",
    ]
    text = "\n".join(lines) + "\n"
    sp = caffe_pb2.SolverParameter()
    text_format.Merge(text, sp)  # fail here, not in `caffe train`, on a bad field
    return text


def _solver_values(cfg: dict, schedule, **given) -> dict:
    """``solver.*`` with the run's schedule and the given values (None: the config's) in."""
    s = dict(cfg["solver"])
    if schedule is not None:
        s.update(base_lr=schedule.base_lr, lr_policy=schedule.lr_policy, gamma=schedule.gamma,
                 stepvalues=list(schedule.stepvalues), max_iter=schedule.max_iter)
    s.update({k: v for k, v in given.items() if v is not None})
    return s


def _num(x) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def net_header(model: str, T: int, what: str, source: str) -> str:
    eqs = {
        "cnn": "Paper §3.2 (Figure 3) and §4.2: the CNN baseline.",
        "lstm": "Paper §3.2 (Figure 4) and §4.2 with Caffe's built-in LSTM layer "
                "(gates i, f, o, g; no peepholes)",
        "peephole": "Paper §3.1 Eq. 2-7 (peephole LSTM), §3.2 (Figure 4) and §4.2, "
                    "unrolled over T steps around Caffe's built-in LSTMUnit, parameters "
                    "shared by name",
    }[model]
    t = "" if model == "cnn" else f"; T = {T} frames per sample."
    lines = [f"{what} of '{model_name(model, T)}'.", eqs + t,
             "Xu, Li, Deng 2015, \"Learning Temporal Features Using LSTM-CNN Architecture "
             "for Face Anti-spoofing\".",
             f"Generated by prototxt/generate.py from {source}; do not edit: change the "
             "config and regenerate. Blob layout: see prototxt/generate.py."]
    return "".join("# " + w + "\n" for line in lines for w in textwrap.wrap(line, 86))


def write_text(path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, text)


def write_net(path, proto: caffe_pb2.NetParameter, header: str = "") -> Path:
    return write_text(path, header + text_format.MessageToString(proto))


def write_experiment_nets(cfg: dict, model: str, T: int, train_list, val_list, out_dir,
                          snapshot_prefix=None, schedule=None, test_iter=None,
                          test_interval=None, batch=None, val_batch=None, deploy_batch=None,
                          source: str = "the experiment's config", solver: bool = True) -> dict:
    """Write ``train_val.prototxt``, ``deploy.prototxt`` and (unless ``solver`` is False,
    when the caller writes its own) ``solver.prototxt`` into out_dir.

    Paths inside the files are written as given; the training code passes absolute or
    out_dir-relative paths as it runs ``caffe`` (the solver's ``net:`` is the absolute
    train_val path). Returns {"train_val": Path, "deploy": Path, "solver": Path}.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tv = write_net(out_dir / "train_val.prototxt",
                   net_param(cfg, model, T, train_list, val_list, batch, val_batch),
                   net_header(model, T, "Train/val net", source))
    dp = write_net(out_dir / "deploy.prototxt", deploy_net(cfg, model, T, deploy_batch),
                   net_header(model, T, "Deploy net", source))
    if not solver:
        return {"train_val": tv, "deploy": dp}
    prefix = str(out_dir / "snapshots" / model_name(model, T)) if snapshot_prefix is None \
        else str(snapshot_prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    sv = write_text(out_dir / "solver.prototxt",
                    solver_text(cfg, model, T, tv.resolve(), prefix, schedule,
                                test_iter, test_interval,
                                header=_solver_header(model, T, source)))
    return {"train_val": tv, "deploy": dp, "solver": sv}


def _solver_header(model: str, T: int, source: str) -> str:
    return (f"# Solver of '{model_name(model, T)}': paper §3.3 (Training).\n"
            f"# Generated by prototxt/generate.py from {source}; do not edit.\n")


def committed_models(cfg: dict) -> list[tuple[str, int]]:
    Ts = [int(t) for t in cfg["samples"]["seq_lengths"] if int(t) > 1]
    out = [("cnn", 1)] if 1 in [int(t) for t in cfg["samples"]["seq_lengths"]] else []
    return out + [(m, t) for m in ("lstm", "peephole") for t in Ts]


# The committed nets train and validate like fold 1 of model selection (§4.3): TRAIN on
# the train subjects outside fold 1, TEST on fold 1's held-out train subjects. The test
# subjects are never read by them.
COMMITTED_LISTS = ("fold1_train", "fold1_val")


def committed_train_val(cfg: dict, model: str, T: int) -> caffe_pb2.NetParameter:
    """One train/val net for every scale of the config.

    The scales differ only in the data layers' sources, so the net holds one
    ``SequenceData`` pair (TRAIN, TEST) per scale, each included only under the net
    state stage ``s<scale>``; the scale's solver sets that stage (``train_state`` and
    ``test_state``), so exactly one pair is built. Without a stage no data layer is built.
    """
    prep = cfg["net"]["data_dir"]
    proto = net_param(cfg, model, T, "", "")
    templates, body = proto.layer[:2], list(proto.layer[2:])
    del proto.layer[:]
    for scale in cfg["samples"]["scales"]:
        for which, template in zip(COMMITTED_LISTS, templates):
            layer = proto.layer.add()
            layer.CopyFrom(template)
            param = json.loads(layer.python_param.param_str)
            param["source"] = str(list_file(prep, scale, T, which))
            layer.python_param.param_str = json.dumps(param)
            layer.include[0].stage.append(scale_dir(scale))
    proto.layer.extend(body)
    return proto


def write_committed(cfg: dict, root=REPO, source: str = "configs/default.yaml") -> list[Path]:
    """prototxt/deploy/<name>.prototxt, prototxt/<name>_train_val.prototxt (every scale in
    one net, ``committed_train_val``) and solvers/<s>/<name>_solver.prototxt (one per
    scale, picking its scale by stage) for every model and T of the config.

    Paths inside are relative to the repository root, where ``caffe train`` runs;
    snapshots go to solver.snapshot_dir, a folder kept in git by its .gitignore.
    """
    root = Path(root)
    written = []
    for model, T in committed_models(cfg):
        name = model_name(model, T)
        written.append(write_net(root / "prototxt" / "deploy" / f"{name}.prototxt",
                                 deploy_net(cfg, model, T),
                                 net_header(model, T, "Deploy net", source)))
        tv_rel = f"prototxt/{name}_train_val.prototxt"
        scales = ", ".join(f"{float(s):.1f}" for s in cfg["samples"]["scales"])
        how = (f"Every scale in one net: the data layers of scale S are built under the net "
               f"state stage \"sS\", which solvers/sS/{name}_solver.prototxt sets "
               f"(train_state, test_state); scales: {scales}. TRAIN: the train subjects "
               f"outside fold 1; TEST: fold 1's train subjects, the validation of model "
               f"selection's fold 1. The test subjects are never read.")
        written.append(write_net(
            root / tv_rel, committed_train_val(cfg, model, T),
            net_header(model, T, "Train/val net", source)
            + "".join("# " + w + "\n" for w in textwrap.wrap(how, 86))))
        for scale in cfg["samples"]["scales"]:
            sd = scale_dir(scale)
            written.append(write_text(
                root / "solvers" / sd / f"{name}_solver.prototxt",
                solver_text(cfg, model, T, tv_rel,
                            f"{cfg['solver']['snapshot_dir']}/{name}_{sd}",
                            header=_solver_header(model, T, source), stage=sd)))
    return written


FIGURES = (("cnn", 1, "net_cnn.png"), ("lstm", 7, "net_lstm_T7.png"),
           ("peephole", 3, "net_peephole_T3.png"))


def draw_figures(cfg: dict, out_dir=REPO / "docs" / "figures", rankdir: str = "TB") -> list[Path]:
    """Caffe's own drawing (caffe/draw.py) of the deploy nets: the paper's Figures 3 and 4."""
    import caffe.draw
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for model, T, fname in FIGURES:
        proto = deploy_net(cfg, model, T)
        caffe.draw.draw_net_to_file(proto, str(out_dir / fname), rankdir, phase=caffe.TEST)
        paths.append(out_dir / fname)
    return paths


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=None, help="config file (default: configs/default.yaml)")
    ap.add_argument("--root", default=str(REPO), help="where prototxt/ and solvers/ are written")
    ap.add_argument("--figures", action="store_true",
                    help="also draw docs/figures/net_*.png with caffe.draw (needs pydot, dot)")
    args = ap.parse_args(argv)
    from configs import load_config
    cfg = load_config(args.config)
    source = "configs/default.yaml" if args.config is None else Path(args.config).as_posix()
    for p in write_committed(cfg, args.root, source):
        print(p)
    if args.figures:
        for p in draw_figures(cfg, Path(args.root) / "docs" / "figures"):
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
