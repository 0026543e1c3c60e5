"""Does a Caffe build compute what BVLC Caffe computes? Outputs, gradients and SGD steps.

The CPU variant of this project's Caffe carries speed patches (scripts/build/caffe-patches/).
This module runs the three nets of the paper (CNN, LSTM-CNN with Caffe's LSTM layer,
peephole LSTM-CNN) under one Caffe build and saves, per net: every blob after one
forward pass, every parameter gradient after the backward pass, and every parameter
before and after ``steps`` SGD steps of the net's own solver (paper solver settings). Running it
under two builds and comparing the files says whether the patches changed the results.

    python -m scripts.diagnostics.caffe_compare dump OUT.npz [--size 32] [--steps 50]
    python -m scripts.diagnostics.caffe_compare compare A.npz B.npz

``dump`` uses whichever pycaffe ``import caffe`` finds: put a build's
``lib/python3/dist-packages`` first on PYTHONPATH to choose it (``run_dump`` does).
The difference of two arrays is max|a - b| / max|b| (relative to the array's scale, so
that entries near zero do not blow it up).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from configs import errors
from configs.files import atomic_path
from configs.schedule import Schedule
from scripts.diagnostics.bench import ROOT, build_env, paper_nets, reference_build  # noqa: F401 (reference_build: for callers)

# (model, T): the paper's three nets, the LSTM-CNNs at T = 3 to keep the check small.
NETS = (("cnn", 1), ("lstm", 3), ("peephole", 3))


def dump(out: Path, size: int = 32, steps: int = 50, batch_cnn: int = 16,
         batch_lstm: int = 4, seed: int = 1234) -> None:
    import caffe
    from configs import load_config
    caffe.set_mode_cpu()
    cfg = load_config()
    cfg = dict(cfg, solver=dict(cfg["solver"], batch_cnn=batch_cnn, batch_lstm=batch_lstm))
    arrays = {}
    with tempfile.TemporaryDirectory() as d:
        for model, T in NETS:
            batch = batch_cnn if model == "cnn" else batch_lstm
            caffe.set_random_seed(seed)
            paths = paper_nets(cfg, model, T, size, batch, Path(d),
                               schedule=Schedule.from_config(cfg, steps + 1), test_interval=steps + 2)
            solver = caffe.SGDSolver(str(paths["solver"]))
            net = solver.net
            for name, params in net.params.items():
                for i, p in enumerate(params):
                    arrays[f"{model}/init/{name}/{i}"] = p.data.copy()
            net.forward()
            for name, blob in net.blobs.items():
                arrays[f"{model}/forward/{name}"] = blob.data.copy()
            net.backward()
            for name, params in net.params.items():
                for i, p in enumerate(params):
                    arrays[f"{model}/grad/{name}/{i}"] = p.diff.copy()
            solver.step(steps)
            for name, params in net.params.items():
                for i, p in enumerate(params):
                    arrays[f"{model}/after{steps}/{name}/{i}"] = p.data.copy()
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def compare(a: dict, b: dict) -> dict[str, float]:
    """Key -> max|a - b| / max|b| (0 when both are all zero); the key sets must match."""
    if set(a) != set(b):
        raise ValueError(f"different arrays: only in the first {sorted(set(a) - set(b))[:5]}, "
                         f"only in the second {sorted(set(b) - set(a))[:5]}")
    out = {}
    for k in sorted(a):
        x, y = np.asarray(a[k], np.float64), np.asarray(b[k], np.float64)
        if x.shape != y.shape:
            raise ValueError(f"{k}: shapes {x.shape} and {y.shape}")
        scale = np.abs(y).max() if y.size else 0.0
        diff = np.abs(x - y).max() if x.size else 0.0
        out[k] = 0.0 if diff == 0 else float(diff / scale) if scale else float("inf")
    return out


def run_dump(prefix: Path, out: Path, threads: int, **kw) -> None:
    """``dump`` in a fresh interpreter with the pycaffe of the build in ``prefix`` and
    ``threads`` threads: OpenMP's and OpenBLAS's count both set, so that a thread count
    set in the caller's environment (OPENBLAS_NUM_THREADS wins in OpenBLAS) does not
    override the one asked for."""
    env = build_env(prefix, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    args = [f"--{k}={v}" for k, v in kw.items()]
    r = subprocess.run([sys.executable, "-m", "scripts.diagnostics.caffe_compare", "dump", str(out), *args],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"dump under {prefix} failed:\n{r.stderr[-3000:]}")


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--size", type=int, default=32)
    d.add_argument("--steps", type=int, default=50)
    d.add_argument("--batch_cnn", type=int, default=16)
    d.add_argument("--batch_lstm", type=int, default=4)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "dump":
        dump(a.out, a.size, a.steps, a.batch_cnn, a.batch_lstm)
        return 0
    diffs = compare(dict(np.load(a.a)), dict(np.load(a.b)))
    for k, v in diffs.items():
        print(f"{v:10.2e}  {k}")
    print(f"largest: {max(diffs.values()):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
