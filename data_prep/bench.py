"""Data preparation figures: detection speed, cost of the 25 (scale, T), memory.

    python -m data_prep.bench --dataset data/synth [--subset 48] [--workers N] [--keep DIR]

1. Viola-Jones frames/s on the same ``--subset`` videos with 1 worker and with all
   workers, and the ratio (goal >= 1.8 on 2 cores).
2. One full detection pass over the data set (all workers), then all 25 (scale, T)
   combinations from that cache; the ratio build / detection (goal <= 2).
3. Peak resident memory (main process and largest worker) of the build on half the
   subjects and on all of them: it must not grow with the size of the data set.
Not part of the timed tests. Every pass starts from an empty cache.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from configs import errors, load_config
from configs.files import write_json_atomic
from data_prep import detect, index

_CHILD = """
import json, resource, sys, io, contextlib
from configs import load_config
from data_prep import pipeline
cfg = load_config(None, sys.argv[3:])
with contextlib.redirect_stdout(io.StringIO()):
    rep = pipeline.run(cfg, sys.argv[1], sys.argv[2], progress=False)
print(json.dumps({"build_s": rep["timing"]["build_seconds"],
                  "samples": sum(g["genuine"] + g["attack"] for c in rep["samples"].values()
                                 for g in c["groups"].values()),
                  "videos": rep["videos"]["usable"],
                  "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _build(root, out, sets):
    r = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(out), *sets],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _subtree(root: Path, dst: Path, keep) -> Path:
    for v in index.scan(root).videos:
        if keep(v):
            q = dst / v.rel
            q.parent.mkdir(parents=True, exist_ok=True)
            q.symlink_to(v.path)
    return dst


def _detect_speed(sub, tmp: Path, params: dict, workers: int, res: dict) -> None:
    """1. detection, 1 worker vs all workers, same videos, fresh caches."""
    for w in (1, workers):
        _, st = detect.run_detection(sub, tmp / f"det_sub_w{w}", params, w, progress=False)
        res[f"detect_fps_w{w}"] = round(st["frames"] / st["seconds"], 1)
    res["detect_speedup"] = round(res[f"detect_fps_w{workers}"] / res["detect_fps_w1"], 2)
    w = workers
    print(f"detection: {res['detect_fps_w1']} frames/s with 1 worker, {res[f'detect_fps_w{w}']} "
          f"with {w}: x{res['detect_speedup']} (goal >= 1.8 on 2 cores)", flush=True)


def _build_cost(root: Path, jobs, tmp: Path, params: dict, workers: int, res: dict) -> None:
    """2. full detection pass, then the 25 combinations from its cache."""
    cache = tmp / "detections"
    t = time.perf_counter()
    _, st = detect.run_detection(jobs, cache, params, workers, progress=True)
    res["detect_full_s"] = round(time.perf_counter() - t, 1)
    res["frames"] = st["frames"]
    sets = [f"prep.cache_dir={cache}", f"prep.workers={workers}"]
    half = _subtree(root, tmp / "half", lambda v: v.subject % 2 == 0)
    h = _build(half, tmp / "out_half", sets)
    f = _build(root, tmp / "out_full", sets)
    res["build25_s"] = f["build_s"]
    res["build25_over_detect"] = round(f["build_s"] / res["detect_full_s"], 2)
    res["samples_25"] = f["samples"]
    res["peak_rss_mb"] = {"half": {"videos": h["videos"], "main": round(h["rss_main_mb"]),
                                   "worker": round(h["rss_worker_mb"])},
                          "all": {"videos": f["videos"], "main": round(f["rss_main_mb"]),
                                  "worker": round(f["rss_worker_mb"])}}
    out_bytes = sum(p.stat().st_size for p in (tmp / "out_full").rglob("*.h5"))
    res["hdf5_gb"] = round(out_bytes / 1e9, 2)


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_prep.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default=None, help="CASIA-FASD-layout root (default dataset.root)")
    ap.add_argument("--config", default=None)
    ap.add_argument("--subset", type=int, default=48, help="videos for the 1-vs-N worker detection figure")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--keep", default=None, help="keep the bench outputs in this folder")
    ap.add_argument("--every", type=int, default=1,
                    help="use only subjects whose number is a multiple of this (a quicker run)")
    a = ap.parse_args(argv)
    cfg = load_config(a.config)
    root = Path(a.dataset or cfg["dataset"]["root"]).resolve()
    tmp = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="prep_bench_"))
    tmp.mkdir(parents=True, exist_ok=True)
    if a.every > 1:
        root = _subtree(root, tmp / f"every{a.every}", lambda v: v.subject % a.every == 0)
    params = detect.detector_params(cfg["detect"])
    from data_prep.util import file_sha256
    vids = index.scan(root).videos
    jobs = [(v.key, v.path, file_sha256(v.path)) for v in vids]
    step = max(1, len(jobs) // a.subset)
    sub = jobs[::step][:a.subset]
    res = {"dataset": str(root), "videos": len(jobs), "workers": a.workers,
           "detector": params}

    _detect_speed(sub, tmp, params, a.workers, res)
    _build_cost(root, jobs, tmp, params, a.workers, res)
    print(f"full detection pass: {res['frames']} frames in {res['detect_full_s']} s; all 25 (scale, T): "
          f"{res['build25_s']} s = {res['build25_over_detect']}x detection (goal <= 2); "
          f"{res['samples_25']} samples, {res['hdf5_gb']} GB of HDF5")
    m = res["peak_rss_mb"]
    print(f"peak memory (MB, main / largest worker): {m['half']['videos']} videos "
          f"{m['half']['main']} / {m['half']['worker']}, {m['all']['videos']} videos "
          f"{m['all']['main']} / {m['all']['worker']}")
    write_json_atomic(tmp / "bench.json", res)
    print(f"figures: {tmp / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
