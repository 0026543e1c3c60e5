"""Training throughput of the paper-size nets on this machine (``make bench``).

Prints, in one run: numpy float32 GEMM throughput (the machine's practical peak),
then for the CNN and the LSTM-CNNs (T = 7) at 128x128 the SGD-step rate of real Caffe
(frames/s), the FLOPs one frame costs (forward + backward ~ 3x forward, counted from
the net's own blob shapes) and the fraction of the GEMM peak that training reaches.
Then the metrics benchmark (eval.bench_metrics) and, if present, the data-prep one.

    python -m scripts.bench [--iters 6] [--models cnn,lstm,peephole] [--size 128]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def gemm_gflops(n: int = 2048, repeat: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeat))
    return 2 * n ** 3 / best / 1e9


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def forward_flops(net, frames: int) -> float:
    """Multiply-adds x 2 of the conv and inner-product layers, per frame."""
    total = 0.0
    for name, layer in zip(net._layer_names, net.layers):
        if layer.type not in ("Convolution", "InnerProduct"):
            continue
        w = layer.blobs[0].data
        top = net.top_names[name][0]
        out = net.blobs[top].data
        if layer.type == "Convolution":
            total += 2.0 * w.size * out.shape[0] * out.shape[2] * out.shape[3]
        else:
            total += 2.0 * w.size * int(np.prod(out.shape[:-1]))
    return total / frames


def paper_nets(cfg, model: str, T: int, size: int, batch: int, tmp: Path, **net_kw) -> dict:
    """Train/val, deploy and solver files of ``model`` at ``size`` and ``batch`` on one HDF5
    file of ``batch`` random samples (prototxt.generate.write_experiment_nets; ``net_kw``
    go there)."""
    import h5py
    from prototxt import generate as G
    rng = np.random.default_rng(0)
    h5 = tmp / f"{model}_T{T}.h5"
    with h5py.File(h5, "w") as f:
        f["data"] = rng.integers(0, 256, (batch, T, 3, size, size), dtype=np.uint8)
        f["label"] = (np.arange(batch) % 2).astype(np.float32)
    lst = tmp / f"{model}_T{T}.txt"
    lst.write_text(f"{h5}\n")
    c = dict(cfg, net=dict(cfg["net"], input_size=size))
    return G.write_experiment_nets(c, model, T, lst, lst, tmp / f"{model}_T{T}", batch=batch, **net_kw)


def bench_model(cfg, model: str, T: int, size: int, iters: int, tmp: Path,
                data_layer: str = "SequenceData") -> dict:
    """One net's SGD-step rate; ``data_layer`` SequenceData (the nets' own) or HDF5Data
    (Caffe's, on the same file: the layer this project used before)."""
    import caffe
    from prototxt import generate as G
    batch = cfg["solver"]["batch_cnn"] if model == "cnn" else cfg["solver"]["batch_lstm"]
    paths = paper_nets(cfg, model, T, size, batch, tmp, max_iter=iters + 1, test_interval=iters + 2)
    if data_layer == "HDF5Data":
        from scripts.mixing import hdf5data_variant
        G.write_net(paths["train_val"], hdf5data_variant(paths["train_val"], tmp))
    solver = caffe.SGDSolver(str(paths["solver"]))
    solver.step(1)  # allocation, first touch
    t = time.perf_counter()
    solver.step(iters)
    dt = time.perf_counter() - t
    frames = batch * T
    fwd = forward_flops(solver.net, frames)
    rate = frames * iters / dt
    return {"model": model, "T": T, "batch": batch, "frames_per_s": rate, "data_layer": data_layer,
            "train_gflops_per_frame": 3 * fwd / 1e9, "achieved_gflops": rate * 3 * fwd / 1e9}


def main(argv=None) -> int:
    from configs import load_config
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--models", default="cnn,lstm,peephole")
    ap.add_argument("--T", type=int, default=7)
    a = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe
    caffe.set_mode_cpu()
    cfg = load_config(a.config)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "(OpenBLAS default: all cores)")
    print(f"cores: {os.cpu_count()}, OPENBLAS_NUM_THREADS={threads}")
    peak = gemm_gflops()
    print(f"numpy float32 GEMM 2048^3: {peak:.0f} GFLOP/s")
    print(f"{'net':<14}{'data layer':<14}{'batch':>6}{'frames/s':>10}{'GFLOP/frame':>13}{'GFLOP/s':>9}"
          f"{'of GEMM':>9}")
    with tempfile.TemporaryDirectory() as d:
        for m in a.models.split(","):
            T = 1 if m == "cnn" else a.T
            for layer in ("SequenceData", "HDF5Data"):
                r = bench_model(cfg, m, T, a.size, a.iters, Path(d), layer)
                name = m if m == "cnn" else f"{m}_T{T}"
                print(f"{name:<14}{layer:<14}{r['batch']:>6}{r['frames_per_s']:>10.1f}"
                      f"{r['train_gflops_per_frame']:>13.3f}{r['achieved_gflops']:>9.1f}"
                      f"{100 * r['achieved_gflops'] / peak:>8.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
