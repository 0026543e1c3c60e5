"""The checks of ``make gpu-check`` (CLI: scripts/diagnostics/gpu_check.py), each a
JSON-ready dict; ``gpu=None`` runs only the CPU side: ``device_query`` (``caffe
device_query -gpu N``), ``agreement`` (forward and backward of one net on the CPU and then
on the GPU, same weights and batch), ``throughput`` (SGD steps per second, reusing
scripts.diagnostics.bench) and ``train_compare`` (one experiment trained by
``scripts.train`` on the CPU and on the GPU, validation losses side by side). Nothing
here touches the GPU before scripts.training.gpu.require_gpu has said it is usable.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scripts.training.gpu import ROOT


# ---------------------------------------------------------------- checks
def device_query(gpu: int | None, caffe_bin: Path | None = None, timeout: int = 120) -> dict:
    """``caffe device_query -gpu N``: its exit status and output, parsed where it can be."""
    caffe_bin = caffe_bin or ROOT / ".venv" / "bin" / "caffe"
    if gpu is None:
        return {"status": "no GPU: skipped"}
    out = subprocess.run([str(caffe_bin), "device_query", "-gpu", str(gpu)], capture_output=True,
                         text=True, timeout=timeout, env=dict(os.environ, GLOG_minloglevel="0",
                                                              GLOG_logtostderr="1"))
    text = out.stdout + out.stderr
    fields = {}
    for line in text.splitlines():
        if "]" in line and ": " in line:
            k, _, v = line.split("]", 1)[1].strip().partition(": ")
            if k in ("Name", "Major revision number", "Minor revision number", "Total global memory",
                     "Number of multiprocessors", "Clock rate"):
                fields[k] = v.strip()
    return {"status": "ok" if out.returncode == 0 else "failed", "exit_code": out.returncode,
            "fields": fields, "output": text[-4000:]}


def _pass(net, start: str) -> dict:
    """Forward from layer ``start`` (the data already in place), zeroed diffs, backward."""
    net.forward(start=start)
    for blobs in net.params.values():
        for b in blobs:
            b.diff[...] = 0
    net.backward()
    out = {f"blob {k}": v.data.copy() for k, v in net.blobs.items()}
    for name, blobs in net.params.items():
        for i, b in enumerate(blobs):
            out[f"grad {name}[{i}]"] = b.diff.copy()
    return out


def agreement(cfg, model: str, T: int, size: int, batch: int, gpu: int | None, tol: float) -> dict:
    """One net, one batch, the same weights: forward + backward on the CPU, then on the GPU.

    The net is the TEST phase of the experiment's train/val net (dropout is the identity
    there, so both passes compute the same function); the data layer runs once, on the
    CPU, and the GPU pass starts at the layer after it. Every activation and every
    parameter gradient is compared: relative difference ||gpu - cpu|| / ||cpu||."""
    import caffe
    with tempfile.TemporaryDirectory() as d:
        from scripts.diagnostics.bench import paper_nets
        paths = paper_nets(cfg, model, T, size, batch, Path(d))
        if gpu is not None:
            caffe.set_device(int(gpu))
        caffe.set_mode_cpu()
        net = caffe.Net(str(paths["train_val"]), caffe.TEST)
        data_layers = {i for i, l in enumerate(net.layers) if l.type in ("HDF5Data", "Python", "Input")}
        start = next(n for i, n in enumerate(net._layer_names) if i not in data_layers)
        net.forward()
        t = time.perf_counter()
        cpu = _pass(net, start)
        r = {"model": model, "T": T, "size": size, "batch": batch, "tolerance": tol,
             "cpu_loss": float(cpu["blob loss"]), "cpu_seconds": round(time.perf_counter() - t, 3),
             "compared": len(cpu)}
        if gpu is None:
            r["status"] = "no GPU: skipped"
            caffe.set_mode_cpu()
            return r
        caffe.set_mode_gpu()
        try:
            _pass(net, start)  # first touch: allocation, cuBLAS handle
            t = time.perf_counter()
            g = _pass(net, start)
            r["gpu_seconds"] = round(time.perf_counter() - t, 3)
        finally:
            caffe.set_mode_cpu()
        rel = {}
        for k, c in cpu.items():
            den = float(np.linalg.norm(c))
            num = float(np.linalg.norm(g[k].astype(np.float64) - c))
            rel[k] = num / den if den > 0 else num
        worst = max(rel, key=rel.get)
        r.update(gpu_loss=float(g["blob loss"]), max_rel_diff=rel[worst], worst=worst,
                 status="pass" if rel[worst] <= tol else "FAIL")
        return r


def throughput(cfg, model: str, T: int, size: int, iters: int, gpu: int | None) -> dict:
    """SGD steps of the paper-size net, frames per second (scripts.diagnostics.bench.bench_model)."""
    import caffe
    from scripts.diagnostics.bench import bench_model
    with tempfile.TemporaryDirectory() as d:
        if gpu is None:
            caffe.set_mode_cpu()
        else:
            caffe.set_device(int(gpu))
            caffe.set_mode_gpu()
        try:
            return bench_model(cfg, model, T, size, iters, Path(d))
        finally:
            caffe.set_mode_cpu()


def train_compare(config: str, run_root: Path, prep: Path, experiment: str, gpu: int | None,
                  log=print) -> dict:
    """Train ``experiment`` (e.g. cnn_T1_s2.6/fold1) with ``scripts.train`` on the CPU and,
    if ``gpu`` is given, on the GPU, each in a fresh run folder under ``run_root`` that
    reads the prepared data ``prep``; return both validation-loss curves."""
    import shutil
    from configs import grammar
    from scripts.training.curves import read_curve
    if not (prep / "report.json").exists():
        raise FileNotFoundError(f"prepared data not found: {prep}/report.json; run "
                                f"`make prep CONFIG={config}` first")
    out = {"experiment": experiment, "config": config}
    for side, g in (("cpu", None), ("gpu", gpu)):
        if side == "gpu" and gpu is None:
            out["gpu"] = "no GPU: skipped"
            continue
        run = run_root / side
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        (run / "prep").symlink_to(prep.resolve())
        cmd = [sys.executable, "-m", "scripts.train", "--config", config, "--run", str(run),
               "--experiment", experiment] + ([] if g is None else ["--gpu", str(g)])
        log(f"[gpu-check] training {experiment} on the {side.upper()}: {' '.join(cmd[1:])}")
        t = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        secs = round(time.perf_counter() - t, 1)
        d = grammar.parse(experiment).dir(run)
        if p.returncode != 0:
            out[side] = {"status": "failed", "exit_code": p.returncode, "seconds": secs,
                         "stderr": p.stderr[-3000:]}
            continue
        curve = [r for r in read_curve(d / "curve.csv") if r.get("val_loss") is not None]
        out[side] = {"status": "ok", "seconds": secs,
                     "val_loss": {int(r["iter"]): r["val_loss"] for r in curve}}
    c, g = out.get("cpu"), out.get("gpu")
    if isinstance(c, dict) and isinstance(g, dict) and c["status"] == g["status"] == "ok":
        common = sorted(set(c["val_loss"]) & set(g["val_loss"]))
        out["abs_diff"] = {i: abs(c["val_loss"][i] - g["val_loss"][i]) for i in common}
        vl = [g["val_loss"][i] for i in common]
        # Dropout draws its masks from different generators on the CPU and the GPU, so the
        # two runs are not bit-identical: the gate is a finite GPU curve that learns (its
        # lowest validation loss below the first; the demo's curve is noisy, e.g. on the CPU
        # 0.695, 0.684, 0.417, 0.791, 0.604, 0.871, so its last point is no gate).
        ok = bool(common) and all(np.isfinite(vl)) and min(vl[1:], default=vl[0]) < vl[0]
        out["status"] = "pass" if ok else "FAIL"
    else:
        cpu_ok = isinstance(c, dict) and c["status"] == "ok"
        out["status"] = "no GPU: skipped" if cpu_ok and g == "no GPU: skipped" else "FAIL"
    return out
