"""Training throughput of the paper-size nets on this machine (``make bench``).

Prints, in one run: numpy float32 GEMM throughput (the machine's practical peak); for
the CNN and the LSTM-CNNs (T = 7) at 128x128 the SGD-step rate of real Caffe (frames/s),
the FLOPs one frame costs (forward + backward ~ 3x forward, counted from the net's own
blob shapes) and the fraction of the GEMM peak that training reaches, under the
unpatched build of Caffe (BVLC's CPU code; built the first time) and under the venv's
patched one (scripts/build/caffe-patches/), each in its own process; the patched build also
with Caffe's HDF5Data layer in place of the nets' SequenceData; and the per-layer split
of one forward + backward pass under both builds (``caffe time``).

    python -m scripts.diagnostics.bench [--iters 6] [--models cnn,lstm,peephole] [--size 128] [--no-reference]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from configs import errors

ROOT = Path(__file__).resolve().parents[2]


def build_env(prefix: Path | None, **extra) -> dict:
    """os.environ for a process whose ``import caffe`` (and Caffe's embedded Python, for the
    nets' data layer) finds the build in ``prefix`` (None: the venv's own) and this checkout."""
    env = dict(os.environ, GLOG_minloglevel="2", **extra)
    if prefix is not None:
        import sysconfig
        env["PYTHONPATH"] = f"{prefix}/lib/python3/dist-packages:{ROOT}:{sysconfig.get_paths()['purelib']}"
    return env


def reference_build() -> Path:
    """The install folder of the unpatched CPU build of Caffe (CAFFE_CPU_PATCHES=0; built
    the first time, a few minutes; `make caffe-reference`)."""
    import subprocess
    env = dict(os.environ, SETUP_BUILD_ONLY="1", CAFFE_CPU_PATCHES="0", CAFFE_GPU="0")
    r = subprocess.run(["bash", str(ROOT / "scripts" / "build" / "setup.sh")], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"building the unpatched Caffe failed:\n{r.stderr[-3000:]}")
    return Path(r.stdout.strip().splitlines()[-1])


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
    from configs.schedule import Schedule
    paths = paper_nets(cfg, model, T, size, batch, tmp, schedule=Schedule.from_config(cfg, iters + 1),
                       test_interval=iters + 2)
    if data_layer == "HDF5Data":
        from scripts.diagnostics.mixing import hdf5data_variant
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


def cpu_isa() -> str:
    """The widest x86 SIMD the CPU has (from /proc/cpuinfo), for the printout."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 2)[1].split("\n", 1)[0].split()
    except (OSError, IndexError):
        return "unknown"
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"


def measure(cfg, models: list[str], T: int, size: int, iters: int, layers: list[str]) -> list[dict]:
    """frames/s of every model x data layer under the Caffe that ``import caffe`` finds."""
    import caffe
    caffe.set_mode_cpu()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for m in models:
            for layer in layers:
                rows.append(bench_model(cfg, m, 1 if m == "cnn" else T, size, iters, Path(d), layer))
    return rows


def layer_times(cfg, prefix: Path, model: str, T: int, size: int, iters: int = 3) -> dict:
    """Per-layer forward + backward ms of one SGD-size batch: ``caffe time`` of the build in
    ``prefix`` on the train/val net (its own Python data layer importable)."""
    import re
    import subprocess
    batch = cfg["solver"]["batch_cnn"] if model == "cnn" else cfg["solver"]["batch_lstm"]
    with tempfile.TemporaryDirectory() as d:
        paths = paper_nets(cfg, model, T, size, batch, Path(d))
        env = build_env(prefix, GLOG_logtostderr="1")
        env["GLOG_minloglevel"] = "0"
        r = subprocess.run([str(Path(prefix) / "bin" / "caffe"), "time", "-model",
                            str(paths["train_val"]), "-iterations", str(iters)],
                           env=env, capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise RuntimeError(f"caffe time failed:\n{r.stderr[-2000:]}")
    times: dict[str, float] = {}
    for name, _, ms in re.findall(r"\]\s+(\S+)\s+(forward|backward): ([0-9.]+) ms", r.stderr):
        times[name] = times.get(name, 0.0) + float(ms)
    return times


def _in_build(prefix: Path | None, args: list[str]) -> list[dict]:
    """``measure`` in a fresh interpreter whose ``import caffe`` is the build in ``prefix``
    (None: the venv's own)."""
    import json
    import subprocess
    env = build_env(prefix)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "rows.json"
        subprocess.run([sys.executable, "-m", "scripts.diagnostics.bench", "--worker", str(out), *args],
                       env=env, check=True, cwd=ROOT)
        return json.loads(out.read_text())


def _print_rows(label: str, rows: list[dict], peak: float) -> None:
    for r in rows:
        name = r["model"] if r["model"] == "cnn" else f"{r['model']}_T{r['T']}"
        print(f"{label:<11}{name:<14}{r['data_layer']:<14}{r['batch']:>6}{r['frames_per_s']:>10.1f}"
              f"{r['train_gflops_per_frame']:>13.3f}{r['achieved_gflops']:>9.1f}"
              f"{100 * r['achieved_gflops'] / peak:>8.1f}%", flush=True)


def _print_layers(ref: dict, new: dict, top: int = 8) -> None:
    total_r, total_n = sum(ref.values()) or 1.0, sum(new.values()) or 1.0
    print(f"  {'layer':<14}{'unpatched ms':>13}{'share':>7}{'patched ms':>12}{'share':>7}")
    for name in sorted(ref, key=lambda k: -ref[k])[:top]:
        print(f"  {name:<14}{ref[name]:>13.1f}{100 * ref[name] / total_r:>6.1f}%"
              f"{new.get(name, float('nan')):>12.1f}{100 * new.get(name, 0) / total_n:>6.1f}%")
    print(f"  {'all layers':<14}{total_r:>13.1f}{'':>7}{total_n:>12.1f}")


@errors.cli
def main(argv=None) -> int:
    from configs import load_config
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--models", default="cnn,lstm,peephole")
    ap.add_argument("--T", type=int, default=7)
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the unpatched build (else built the first time, a few minutes)")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--data-layers", default="SequenceData", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    cfg = load_config(a.config)
    models = a.models.split(",")
    if a.worker:
        import json
        rows = measure(cfg, models, a.T, a.size, a.iters, a.data_layers.split(","))
        a.worker.write_text(json.dumps(rows))
        return 0
    patched = (ROOT / ".venv" / "caffe-prefix").resolve()
    ref = None if a.no_reference else reference_build()
    threads = os.environ.get("OMP_NUM_THREADS", "(unset: all cores)")
    print(f"cores: {os.cpu_count()} ({cpu_isa()}), OMP_NUM_THREADS={threads}")
    peak = gemm_gflops()
    print(f"numpy float32 GEMM 2048^3: {peak:.0f} GFLOP/s (the peak every share below is of)")
    print(f"{'build':<11}{'net':<14}{'data layer':<14}{'batch':>6}{'frames/s':>10}{'GFLOP/frame':>13}"
          f"{'GFLOP/s':>9}{'of GEMM':>9}")
    common = ["--iters", str(a.iters), "--size", str(a.size), "--models", a.models, "--T", str(a.T)]
    common += ["--config", a.config] if a.config else []
    if ref is not None:
        _print_rows("unpatched", _in_build(ref, common), peak)
    _print_rows("patched", _in_build(None, common + ["--data-layers", "SequenceData,HDF5Data"]), peak)
    if ref is not None:
        for m in ("cnn", "peephole"):
            T = 1 if m == "cnn" else a.T
            print(f"per-layer forward + backward, {m}{'' if m == 'cnn' else f'_T{T}'} at {a.size}x{a.size} "
                  f"(caffe time, 3 passes):")
            _print_layers(layer_times(cfg, ref, m, T, a.size), layer_times(cfg, patched, m, T, a.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
