"""The peephole LSTM as prototxt/generate.py built it before it used Caffe's ``LSTMUnit``:
Eq. 2-7 from 19 primitive layers per step (InnerProduct, Eltwise, Slice, Scale, Sigmoid,
TanH, Reshape). Kept only as the reference that tests/test_nets.py compares the
``LSTMUnit`` net against (same layer and parameter names, so the same weights load into
both). Swap it in with ``monkeypatch.setattr(G, "peephole_lstm", peephole_lstm)``.
"""
from __future__ import annotations

from caffe import layers as L, params as P

from prototxt import generate as G


def peephole_step(n, t, xw_t, h_prev, c_prev, cfg_net):
    """One step of Eq. 2-7; t counts from 1. Returns (h_t, c_t), each (N, H)."""
    H = cfg_net["lstm_cells"]
    n[f"hw_{t}"] = L.InnerProduct(h_prev, num_output=4 * H, bias_term=False,
                                  weight_filler=G._filler(cfg_net, "lstm"),
                                  param=[G.shared("W_hc")])                   # W_h* h_{t-1}
    n[f"pre_{t}"] = L.Eltwise(xw_t, n[f"hw_{t}"], operation=P.Eltwise.SUM)
    gates = L.Slice(n[f"pre_{t}"], slice_param=dict(axis=1), ntop=4)          # i, f, o, g
    act = {}
    for k, gate in enumerate(G.GATES):
        n[f"{gate}_pre_{t}"] = gates[k]
    for gate in G.PEEPHOLE_GATES:                                             # Eq. 2-4
        n[f"{gate}_peep_{t}"] = L.Scale(c_prev, axis=1, num_axes=1, bias_term=False,
                                        filler=G._peephole_filler(cfg_net),
                                        param=[G.shared(f"w_c{gate}")])       # W_c* c_{t-1}
        n[f"{gate}_sum_{t}"] = L.Eltwise(n[f"{gate}_pre_{t}"], n[f"{gate}_peep_{t}"],
                                         operation=P.Eltwise.SUM)
        n[f"{gate}_{t}"] = act[gate] = L.Sigmoid(n[f"{gate}_sum_{t}"])
    n[f"g_{t}"] = act["g"] = L.TanH(n[f"g_pre_{t}"])                          # Eq. 5
    n[f"f_cprev_{t}"] = L.Eltwise(act["f"], c_prev, operation=P.Eltwise.PROD)      # Eq. 6
    n[f"i_g_{t}"] = L.Eltwise(act["i"], act["g"], operation=P.Eltwise.PROD)
    n[f"c_{t}"] = L.Eltwise(n[f"f_cprev_{t}"], n[f"i_g_{t}"], operation=P.Eltwise.SUM)
    n[f"tanh_c_{t}"] = L.TanH(n[f"c_{t}"])                                    # Eq. 7
    n[f"h_{t}"] = L.Eltwise(act["o"], n[f"tanh_c_{t}"], operation=P.Eltwise.PROD)
    return n[f"h_{t}"], n[f"c_{t}"]


def peephole_lstm(n, x_tm, T, cfg_net):
    """Eq. 2-7 unrolled over T steps from primitive layers; returns stack (N, T*H)."""
    H = cfg_net["lstm_cells"]
    zeros_1n, ones_rest = G.sequence_start(n, x_tm)
    n.silence_rest = L.Silence(ones_rest, ntop=0)
    n.zeros_n1 = L.Reshape(zeros_1n, reshape_param=dict(shape=dict(dim=[-1, 1])))
    n.state_0 = L.Tile(n.zeros_n1, axis=1, tiles=H)                           # (N, H) zeros
    n.xw = L.InnerProduct(x_tm, num_output=4 * H, axis=2,
                          weight_filler=G._filler(cfg_net, "lstm"),
                          bias_filler=dict(type="constant", value=cfg_net["lstm_bias"]),
                          param=[G.shared("W_xc"), G.shared("b_c")])          # (T, N, 4H)
    steps = L.Slice(n.xw, slice_param=dict(axis=0), ntop=T)
    h, c = n.state_0, n.state_0
    hs = []
    for t in range(1, T + 1):
        n[f"xw_step{t}"] = steps[t - 1]                                       # (1, N, 4H)
        n[f"xw_{t}"] = L.Reshape(steps[t - 1], reshape_param=dict(shape=dict(dim=[-1, 4 * H])))
        h, c = peephole_step(n, t, n[f"xw_{t}"], h, c, cfg_net)
        hs.append(h)
    n.stack = L.Concat(*hs, concat_param=dict(axis=1))                        # (N, T*H)
    return n.stack
