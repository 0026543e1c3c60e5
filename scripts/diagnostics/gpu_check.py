"""One command for a GPU machine (``make gpu-check``): is the CUDA build of Caffe right there?

    python -m scripts.diagnostics.gpu_check [--gpu 0] [--out runs/gpu-check/report.json]

Prints, and writes as JSON (atomically, to --out):
  1. the device query (``caffe device_query -gpu N``);
  2. CPU-vs-GPU agreement of forward and backward on the three paper-size nets (CNN,
     LSTM-CNN T = 7, peephole LSTM-CNN T = 7; 128x128, the paper's batches), relative
     difference <= --tol (1e-4) on every activation and parameter gradient;
  3. SGD training throughput, frames/s on the GPU beside the CPU;
  4. the demo config's first Table 1 experiment (fold 1) trained on the CPU and on the
     GPU, validation loss at the same iterations.
Without a usable GPU (a CPU-only machine, or the CPU build of Caffe) the CPU side of
every part runs and the GPU side is reported as "no GPU: skipped".

Exit codes (the table in configs/errors.py): 0 every check ran on the GPU and passed; 1 a
check failed; 2 bad input or order of steps (e.g. no prepared demo data); 8 no usable GPU:
the CPU parts ran and passed, the GPU parts were skipped (the report says why).
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from configs import errors
from configs.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[2]


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, obj, default=float)


def _parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", type=int, default=0, help="GPU id (default 0)")
    ap.add_argument("--out", default="runs/gpu-check/report.json")
    ap.add_argument("--config", default="configs/paper.yaml", help="config of the paper-size nets")
    ap.add_argument("--demo-config", default="configs/demo.yaml")
    ap.add_argument("--demo-run", default="runs/synth-demo",
                    help="run folder whose prep/ holds the demo config's prepared data")
    ap.add_argument("--models", default="cnn,lstm,peephole")
    ap.add_argument("--T", type=int, default=7)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--cpu-iters", type=int, default=3, help="timed SGD steps on the CPU")
    ap.add_argument("--gpu-iters", type=int, default=20, help="timed SGD steps on the GPU")
    ap.add_argument("--skip-train", action="store_true", help="leave out part 4")
    return ap


def _agreement(G, cfg, models, a, gpu, rep, out) -> None:
    """2. CPU vs GPU forward + backward on the paper-size nets."""
    rep["agreement"] = []
    print(f"[gpu-check] 2. CPU vs GPU, forward + backward, {a.size}x{a.size}, relative tolerance {a.tol:g}")
    for m, T in models:
        batch = cfg["solver"]["batch_cnn"] if m == "cnn" else cfg["solver"]["batch_lstm"]
        r = G.agreement(cfg, m, T, a.size, batch, gpu, a.tol)
        rep["agreement"].append(r)
        extra = (f"gpu loss {r['gpu_loss']:.6f}, max rel diff {r['max_rel_diff']:.2e} ({r['worst']})"
                 if "gpu_loss" in r else "")
        print(f"    {m:<9}T={T} batch {batch}: {r['compared']} arrays, cpu loss {r['cpu_loss']:.6f} "
              f"{extra} -> {r['status']}", flush=True)
        _write_json(out, rep)


def _throughput(G, cfg, models, a, gpu, rep, out) -> None:
    """3. training throughput (frames/s of SGD steps), CPU and GPU."""
    rep["throughput"] = []
    print("[gpu-check] 3. training throughput (frames/s, SGD steps)")
    for m, T in models:
        c = G.throughput(cfg, m, T, a.size, a.cpu_iters, None)
        r = {"model": m, "T": T, "batch": c["batch"], "cpu_frames_per_s": round(c["frames_per_s"], 1)}
        if gpu is not None:
            g = G.throughput(cfg, m, T, a.size, a.gpu_iters, gpu)
            r.update(gpu_frames_per_s=round(g["frames_per_s"], 1),
                     speedup=round(g["frames_per_s"] / c["frames_per_s"], 1))
        else:
            r["gpu"] = "no GPU: skipped"
        rep["throughput"].append(r)
        print(f"    {m:<9}T={T} batch {r['batch']}: CPU {r['cpu_frames_per_s']}, "
              f"GPU {r.get('gpu_frames_per_s', 'skipped')}", flush=True)
        _write_json(out, rep)


def _training(G, demo, a, gpu, rep, out) -> None:
    """4. a short training run of the demo config's first Table 1 experiment."""
    from configs import grammar
    exp = f"{grammar.table1_names(demo)[0]}/fold{grammar.fold_ids(demo)[0]}"
    print(f"[gpu-check] 4. training {exp} ({a.demo_config}), CPU and GPU")
    tr = G.train_compare(a.demo_config, out.parent / "train", ROOT / a.demo_run / "prep",
                         exp, gpu, log=print)
    rep["training"] = tr
    for side in ("cpu", "gpu"):
        v = tr.get(side)
        if isinstance(v, dict) and v.get("val_loss"):
            pts = ", ".join(f"{i}: {l:.4f}" for i, l in v["val_loss"].items())
            print(f"    {side.upper()} ({v['seconds']} s) validation loss at {pts}")
        else:
            print(f"    {side.upper()}: {v if isinstance(v, str) else v.get('status')}"
                  + (f"\n{v.get('stderr', '')}" if isinstance(v, dict) else ""))
    print(f"    -> {tr['status']}")


def _verdict(rep: dict, gpu, st: dict) -> tuple[int, str]:
    statuses = ([rep["device_query"]["status"]] + [r["status"] for r in rep["agreement"]]
                + ([rep["training"]["status"]] if "training" in rep else []))
    if [s for s in statuses if s in ("FAIL", "failed")]:
        return errors.EXIT_FAILED, "FAILED"
    if gpu is None:
        return errors.EXIT_NO_GPU, f"no usable GPU: CPU parts passed, GPU parts skipped ({st['reason']})"
    return errors.EXIT_OK, "all checks passed on the GPU"


@errors.cli
def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    from configs import load_config
    from scripts.diagnostics import gpu_compare as G
    from scripts.training import gpu as probe

    t0 = time.time()
    out = Path(a.out)
    st = probe.gpu_status(a.gpu)
    gpu = a.gpu if st["ok"] else None
    rep = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
           "cores": os.cpu_count(), "caffe_prefix": str(probe.caffe_prefix()),
           "caffe_build_flags": probe.build_flags(), "gpu_id": a.gpu, "gpu_status": st}
    print(f"[gpu-check] Caffe: {rep['caffe_prefix']}")
    print(f"[gpu-check] GPU {a.gpu}: {'usable' if gpu is not None else 'not usable'} ({st['reason']})")
    cfg = load_config(a.config)
    demo = load_config(a.demo_config)
    # 1. device query
    rep["device_query"] = G.device_query(gpu)
    dq = rep["device_query"]
    print(f"[gpu-check] 1. device query: {dq['status']} {dq.get('fields', '')}")
    _write_json(out, rep)
    models = [(m, 1 if m == "cnn" else a.T) for m in a.models.split(",")]
    _agreement(G, cfg, models, a, gpu, rep, out)
    _throughput(G, cfg, models, a, gpu, rep, out)
    if not a.skip_train:
        try:
            _training(G, demo, a, gpu, rep, out)
        except FileNotFoundError as e:   # no prepared demo data: run make prep first
            raise errors.UserError(str(e)) from None
    code, verdict = _verdict(rep, gpu, st)
    rep.update(exit_code=code, verdict=verdict, seconds=round(time.time() - t0, 1))
    _write_json(out, rep)
    print(f"[gpu-check] {verdict}; {rep['seconds']} s; report: {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
