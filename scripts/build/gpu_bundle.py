"""A relocatable Caffe for a machine without network or compilers (``make gpu-bundle``).

    python -m scripts.build.gpu_bundle --cuda 13 [--arch 90] [--ptx 90] [--out dist/NAME.tar.gz]
    python -m scripts.build.gpu_bundle --cpu                      # the CPU build, the same way
    python -m scripts.build.gpu_bundle --prefix CAFFE_INSTALL     # a build already in the cache

One tarball, unpacked anywhere and run from there (``sh NAME/check.sh``):
  bin/caffe, bin/blob_compare   wrappers that start libexec/'s binaries with the bundle's
                                own dynamic loader (lib/ld-linux-x86-64.so.2)
  libexec/                      Caffe's tool and the check's comparison tool
                                (scripts/build/blob_compare.cpp, compiled here against libcaffe)
  lib/                          libcaffe and every shared library it needs except CUDA's:
                                Boost, glog, gflags, protobuf, HDF5 and what it links,
                                OpenBLAS, libpython, libstdc++, and glibc itself with its
                                loader, so the machine's glibc version does not matter; each
                                non-glibc one with the DT_RPATH $ORIGIN, so the bundle's
                                copies win over anything on the machine's LD_LIBRARY_PATH
  nets/paper/, nets/quick/      the three nets (CNN, LSTM-CNN with Caffe's LSTM layer,
                                peephole LSTM-CNN) with Caffe's HDF5Data layer on small HDF5
                                inputs written here, their solvers and settings; paper:
                                128x128, the paper's batches (100 / 32 samples), T = 7;
                                quick: 32x32, batches 8 / 2, for a rehearsal on a small CPU
  check.sh                      the check (POSIX sh, no Python; scripts/build/bundle_check.sh)
  BUNDLE_INFO                   what was built, from what, and what the bundle needs from
                                the machine (the CUDA libraries' sonames)

The CUDA libraries (cudart, cuBLAS, cuRAND) are not in the bundle (cuBLAS 13 alone is
over 500 MB); check.sh finds them on the machine: pip wheels of a Python environment
(nvidia/*/lib), CUDA_HOME, or the system's library path.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from configs import errors
from configs.errors import UserError
from configs.files import atomic_path, write_text_atomic

ROOT = Path(__file__).resolve().parents[2]
# glibc's libraries. They travel too: Debian 12's libstdc++ and libexpat need glibc 2.36,
# newer than Ubuntu 22.04's (2.35) or RHEL 9's (2.34). The binaries are started with the
# bundle's loader, and these files are copied unchanged (no patchelf, no strip).
GLIBC = ("ld-linux", "libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so",
         "libresolv.so", "libutil.so", "libmvec.so")
# CUDA's libraries and the driver: found on the node, never bundled.
CUDA = ("libcudart.so", "libcublas.so", "libcublasLt.so", "libcurand.so", "libcuda.so",
        "libnvidia-")
# The host code's instruction set: x86-64-v3 (AVX2, FMA, BMI2: every x86 server CPU since
# 2013-2015, so every GPU node) instead of setup.sh's -march=native, which would tie the
# bundle to the build machine's CPU. check.sh refuses a CPU that lacks these flags.
PORTABLE_CXXFLAGS = "-march=x86-64-v3"
V3_FLAGS = "avx avx2 bmi1 bmi2 f16c fma movbe xsave"
# The SIMD extensions -march=native may use, from /proc/cpuinfo's names: a bundle of a
# native build (the venv's, e.g. in the tests) records which of them its CPU had.
SIMD_FLAGS = ("sse4a", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2",
              "movbe", "adx", "sha_ni", "vaes", "vpclmulqdq", "avx512f", "avx512bw", "avx512vl",
              "avx512dq", "avx512cd", "avx512_vnni", "avx512_bf16", "amx_tile")
MODELS = (("cnn", 1), ("lstm", 7), ("peephole", 7))
# The two net sets: input size, batch (CNN, LSTM-CNNs), SGD steps compared CPU vs GPU,
# `caffe time` iterations (CPU, GPU), `caffe train` speed runs (display interval, CPU, GPU).
SETS = {
    "paper": dict(size=None, batch=None, steps=10, time_cpu=2, time_gpu=50, disp_cpu=2, disp_gpu=100),
    "quick": dict(size=32, batch=(8, 2), steps=2, time_cpu=1, time_gpu=5, disp_cpu=1, disp_gpu=5),
}
# Relative tolerances of the check (L2 norm of the difference over that of the CPU's array):
# forward + backward arrays, as scripts/diagnostics/gpu_check.py; updates after `steps` SGD steps.
TOL_FB = 1e-4
TOL_TRAIN = 1e-2


class BundleError(UserError, RuntimeError):
    """The bundle cannot be made (no build, a tool missing); the message says what to do."""


# ---------------------------------------------------------------- the build
def build_prefix(cuda: str | None, arch: str, ptx: str) -> Path:
    """The Caffe install folder from scripts/build/setup.sh (built the first time, cached):
    ``cuda`` None the CPU variant, else CAFFE_CUDA=cuda with those architectures."""
    env = dict(os.environ, SETUP_BUILD_ONLY="1")
    env.setdefault("CAFFE_CXXFLAGS", PORTABLE_CXXFLAGS)
    if cuda is None:
        env.update(CAFFE_GPU="0")
    else:
        env.update(CAFFE_GPU="1", CAFFE_CUDA=cuda, CUDA_ARCH_BIN=arch, CUDA_ARCH_PTX=ptx)
    p = subprocess.Popen(["bash", str(ROOT / "scripts" / "build" / "setup.sh")], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, text=True)
    last = ""
    for line in p.stdout:
        last = line.strip()
        if not last.startswith("/"):
            print(line, end="", file=sys.stderr, flush=True)
    if p.wait() != 0 or not last.startswith("/"):
        raise BundleError(f"scripts/build/setup.sh could not build Caffe (exit {p.returncode}); see above")
    return Path(last)


def build_info(prefix: Path) -> dict:
    """Variant, CUDA toolkit and architectures of the Caffe build in ``prefix``."""
    f = prefix / "BUILD_FLAGS"
    if not (prefix / "bin" / "caffe").exists() or not f.exists():
        raise BundleError(f"{prefix} is not a Caffe install of scripts/build/setup.sh (no bin/caffe "
                          f"or BUILD_FLAGS); run `make setup` or pass --cuda / --cpu")
    flags = f.read_text().strip()
    info = {"flags": flags, "variant": "cpu" if "-DCPU_ONLY=ON" in flags else "cuda",
            "cpu_flags": cpu_flags_needed(flags)}
    if info["variant"] == "cuda":
        def flag(name):
            m = re.search(rf"-D{name}=(.*?)(?= -D|$)", flags)
            return m.group(1).strip() if m else ""
        info.update(arch=flag("CUDA_ARCH_BIN"), ptx=flag("CUDA_ARCH_PTX"),
                    toolkit=flag("CUDA_TOOLKIT_ROOT_DIR"), nvcc=flag("CUDA_NVCC_EXECUTABLE"))
        out = subprocess.run([info["nvcc"], "--version"], capture_output=True, text=True).stdout
        m = re.search(r"release ([0-9.]+), V([0-9.]+)", out)
        info["release"] = m.group(2) if m else "unknown"
    return info


def cpu_flags_needed(build_flags: str) -> str:
    """The /proc/cpuinfo flags a CPU needs to run this build's host code."""
    m = re.search(r"-march=(\S+)", build_flags)
    if not m:
        return ""
    if m.group(1) == "x86-64-v3":
        return V3_FLAGS
    if m.group(1) == "native":
        have = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split())
        return " ".join(f for f in SIMD_FLAGS if f in have)
    raise BundleError(f"the build was made with -march={m.group(1)}; bundle a build made with "
                      f"CAFFE_CXXFLAGS={PORTABLE_CXXFLAGS} or without -march")


def bundle_name(info: dict) -> str:
    if info["variant"] == "cpu":
        return "caffe-lstm-cnn-fasd-cpu"
    sm = "-".join(f"sm{a}" for a in info["arch"].split())
    return f"caffe-lstm-cnn-fasd-cuda{'.'.join(info['release'].split('.')[:2])}-{sm}"


# ---------------------------------------------------------------- binaries and libraries
def compile_compare(prefix: Path, info: dict, out: Path) -> Path:
    """scripts/build/blob_compare.cpp against this build's libcaffe."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise BundleError("no C++ compiler (g++) found: install build-essential (make setup does)")
    cmd = [cxx, "-O2", "-o", str(out), str(ROOT / "scripts" / "build" / "blob_compare.cpp"),
           f"-I{prefix / 'include'}", "-I/usr/include/hdf5/serial", f"-L{prefix / 'lib'}",
           "-lcaffe", "-lglog", "-lgflags", "-lprotobuf", "-lboost_system",
           f"-Wl,-rpath,{prefix / 'lib'}"]
    if info["variant"] == "cpu":
        cmd.insert(2, "-DCPU_ONLY")
    else:
        cmd += [f"-I{info['toolkit']}/include", f"-Wl,-rpath-link,{info['toolkit']}/lib64"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise BundleError(f"compiling scripts/build/blob_compare.cpp failed:\n{r.stderr[-3000:]}")
    return out


def ldd(path: Path) -> list[tuple[str, str | None]]:
    """(soname, resolved path or None) of every library ``path`` loads, transitively."""
    r = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
    if r.returncode:
        raise BundleError(f"ldd {path} failed: {r.stderr.strip()}")
    out = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            name, _, rest = line.partition("=>")
            target = rest.split("(")[0].strip()
            out.append((name.strip(), None if target == "not found" else target))
        elif line:
            out.append((line.split()[0], line.split()[0]))
    return out


def is_glibc(name: str) -> bool:
    return Path(name).name.startswith(GLIBC)


def is_cuda(name: str) -> bool:
    return Path(name).name.startswith(CUDA)


def collect_libs(elfs: list[Path], libdir: Path) -> dict:
    """Copy every library the ELF files load into ``libdir`` under its soname (the dynamic
    loader as ld-linux-x86-64.so.2), except CUDA's. Returns {"bundled": [...], "glibc":
    [...], "cuda": [...]}."""
    seen = {"bundled": set(), "glibc": set(), "cuda": set()}
    for elf in elfs:
        for name, target in ldd(elf):
            base = Path(name).name
            if base.startswith("linux-vdso"):
                continue
            if is_cuda(name):
                seen["cuda"].add(name)
                continue
            if target is None:
                raise BundleError(f"ldd {elf}: {name} not found on this machine; the build is "
                                  f"broken (rerun make setup)")
            if base not in seen["bundled"]:
                shutil.copy2(os.path.realpath(target), libdir / base)
                os.chmod(libdir / base, 0o755)
                seen["bundled"].add(base)
                if is_glibc(base):
                    seen["glibc"].add(base)
    return {k: sorted(v) for k, v in seen.items()}


def patch_rpaths(exedir: Path, libdir: Path) -> None:
    """DT_RPATH $ORIGIN/../lib on the binaries, $ORIGIN on the libraries but glibc's
    (searched before LD_LIBRARY_PATH: a node's own protobuf or Boost never shadows the
    bundle's)."""
    if not shutil.which("patchelf"):
        raise BundleError("patchelf not found: install the Debian package patchelf (make setup does)")
    for d, rpath in ((exedir, "$ORIGIN/../lib"), (libdir, "$ORIGIN")):
        for f in sorted(d.iterdir()):
            if not is_glibc(f.name):
                subprocess.run(["patchelf", "--force-rpath", "--set-rpath", rpath, str(f)], check=True)


WRAPPER = """#!/bin/sh
# Written by scripts/build/gpu_bundle.py: libexec/{name} started with the bundle's own dynamic
# loader and glibc. The library path is LD_LIBRARY_PATH's (the CUDA libraries); the
# bundle's libraries come first through their DT_RPATH. BUNDLE_SYSTEM_LOADER=1 runs it
# with the machine's loader and glibc instead (which must then be glibc >= {glibc}).
B=$(cd "$(dirname "$0")/.." && pwd -P)
[ "${{BUNDLE_SYSTEM_LOADER:-0}}" = 1 ] && exec "$B/libexec/{name}" "$@"
exec "$B/lib/ld-linux-x86-64.so.2" --library-path "${{LD_LIBRARY_PATH:-}}" "$B/libexec/{name}" "$@"
"""


def glibc_min(files: list[Path]) -> str:
    """The newest GLIBC_x.y symbol version any of ``files`` needs."""
    best = (2, 0)
    for f in files:
        out = subprocess.run(["objdump", "-T", str(f)], capture_output=True, text=True).stdout
        for m in re.finditer(r"GLIBC_(\d+)\.(\d+)", out):
            best = max(best, (int(m.group(1)), int(m.group(2))))
    return f"{best[0]}.{best[1]}"


def needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)


def install_binaries(prefix: Path, info: dict, stage: Path) -> dict:
    """bin/, libexec/, lib/ of the bundle; returns the library lists and GLIBC_MIN."""
    bindir, exedir, libdir = stage / "bin", stage / "libexec", stage / "lib"
    for d in (bindir, exedir, libdir):
        d.mkdir(parents=True)
    shutil.copy2(prefix / "bin" / "caffe", exedir / "caffe")
    compile_compare(prefix, info, exedir / "blob_compare")
    libs = collect_libs([exedir / "caffe", exedir / "blob_compare"], libdir)
    for f in [exedir / "caffe", exedir / "blob_compare", *libdir.glob("libcaffe.so*")]:
        os.chmod(f, 0o755)
        subprocess.run(["strip", "--strip-unneeded", str(f)], check=True)
    patch_rpaths(exedir, libdir)
    files = sorted(exedir.iterdir()) + [f for f in sorted(libdir.iterdir()) if not is_glibc(f.name)]
    libs["cuda_needed"] = [n for n in needed(next(libdir.glob("libcaffe.so*"))) if is_cuda(n)]
    libs["glibc_min"] = glibc_min(files)
    libs["glibc"] = glibc_version(libdir / "libc.so.6")
    for name in ("caffe", "blob_compare"):
        write_text_atomic(bindir / name, WRAPPER.format(name=name, glibc=libs["glibc_min"]), mode=0o755)
    return libs


def glibc_version(libc: Path) -> str:
    out = subprocess.run([str(libc)], capture_output=True, text=True).stdout
    m = re.search(r"release version (\d+\.\d+)", out)
    return m.group(1) if m else "unknown"


# ---------------------------------------------------------------- nets and data
def frames(rng, n: int, T: int, size: int) -> np.ndarray:
    """(n, T, 3, size, size) uint8: smooth random images (8x8 blocks of random colour plus
    a little noise), which compress in the tarball where white noise would not."""
    k = max(size // 8, 1)
    low = rng.integers(0, 256, (n, T, 3, size // k, size // k)).astype(np.float32)
    img = np.repeat(np.repeat(low, k, axis=3), k, axis=4)
    img += rng.normal(0.0, 3.0, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_data(path: Path, n: int, T: int, size: int, seed: int) -> None:
    import h5py
    rng = np.random.default_rng(seed)
    with atomic_path(path, ".h5") as tmp, h5py.File(tmp, "w") as f:
        f["data"] = frames(rng, n, T, size)
        f["label"] = (np.arange(n) % 2).astype(np.float32)


def hdf5_net(cfg: dict, model: str, T: int, batch: int, dropout: bool = True):
    """The experiment's train/val net (prototxt.generate.net_param) with one Caffe HDF5Data
    layer in both phases on ``data.txt`` (in order, no shuffling) in place of the two
    SequenceData Python layers; ``dropout=False`` leaves the Dropout layers out."""
    from caffe.proto import caffe_pb2
    from prototxt import generate as G
    src = G.net_param(cfg, model, T, "data.txt", "data.txt", batch)
    net = caffe_pb2.NetParameter(name=src.name)
    d = net.layer.add(name="data", type="HDF5Data", top=["data", "label"])
    d.hdf5_data_param.source = "data.txt"
    d.hdf5_data_param.batch_size = batch
    d.hdf5_data_param.shuffle = False
    for layer in src.layer:
        if layer.type != "Python" and (dropout or layer.type != "Dropout"):
            net.layer.add().CopyFrom(layer)
    return net


def solver(cfg: dict, net: str, max_iter: int, display: int, prefix: str, snapshot: bool) -> str:
    """SGD with the paper's settings (§3.3: momentum 0.9, lr 0.001, weight decay 0.01 from
    the config), a fixed learning rate, no test phase; CPU unless ``caffe -gpu N``."""
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    s = cfg["solver"]
    text = "\n".join([
        f'net: "{net}"', 'type: "SGD"', f"base_lr: {s['base_lr']}", 'lr_policy: "fixed"',
        f"momentum: {s['momentum']}", f"weight_decay: {s['weight_decay']}",
        'regularization_type: "L2"', f"max_iter: {max_iter}", f"display: {display}",
        "snapshot: 0", f'snapshot_prefix: "{prefix}"',
        f"snapshot_after_train: {str(snapshot).lower()}", "solver_mode: CPU",
        f"random_seed: {int(cfg['seed'])}"]) + "\n"
    text_format.Merge(text, caffe_pb2.SolverParameter())
    return text


def write_net_dir(cfg: dict, out: Path, model: str, T: int, batch: int, p: dict) -> None:
    """One net's folder: nets, solvers (init, agreement, speed) and net.info."""
    from google.protobuf import text_format
    out.mkdir(parents=True)
    write_text_atomic(out / "train_val.prototxt", text_format.MessageToString(hdf5_net(cfg, model, T, batch)))
    write_text_atomic(out / "nodrop.prototxt",
                      text_format.MessageToString(hdf5_net(cfg, model, T, batch, dropout=False)))
    files = {
        # max_iter 0: Caffe fills the weights (seeded, on the CPU) and snapshots them.
        "solver_init.prototxt": solver(cfg, "train_val.prototxt", 0, 0, "init", True),
        # Dropout draws its masks from different generators on the CPU and the GPU, so the
        # training comparison runs the net without it: then both compute the same steps.
        "solver_agree.prototxt": solver(cfg, "nodrop.prototxt", p["steps"], 1, "agree", True),
        "solver_speed_cpu.prototxt": solver(cfg, "train_val.prototxt", p["disp_cpu"] + 1, p["disp_cpu"], "speed", False),
        "solver_speed_gpu.prototxt": solver(cfg, "train_val.prototxt", 2 * p["disp_gpu"] + 1, p["disp_gpu"], "speed", False),
    }
    for name, text in files.items():
        write_text_atomic(out / name, text)
    write_text_atomic(out / "net.info", f"MODEL={model}\nT={T}\nBATCH={batch}\nFRAMES={batch * T}\n"
                                        f"DATA=data_T{T}.h5\n")


def write_nets(cfg: dict, stage: Path) -> None:
    for name, p in SETS.items():
        size = p["size"] or int(cfg["net"]["input_size"])
        batches = p["batch"] or (int(cfg["solver"]["batch_cnn"]), int(cfg["solver"]["batch_lstm"]))
        c = dict(cfg, net=dict(cfg["net"], input_size=size))
        root = stage / "nets" / name
        for model, T in MODELS:
            batch = batches[0] if model == "cnn" else batches[1]
            write_net_dir(c, root / model, model, T, batch, p)
            if not (root / f"data_T{T}.h5").exists():
                write_data(root / f"data_T{T}.h5", batch, T, size, int(cfg["seed"]) + T)
        write_text_atomic(root / "set.info", f"SIZE={size}\nSTEPS={p['steps']}\nTIME_CPU={p['time_cpu']}\n"
                                             f"TIME_GPU={p['time_gpu']}\n")


# ---------------------------------------------------------------- the tarball
def _q(v) -> str:
    return "'" + str(v).replace("'", "'\\''") + "'"


def write_info(stage: Path, name: str, info: dict, libs: dict) -> None:
    os_name = "unknown"
    if Path("/etc/os-release").exists():
        m = re.search(r'^PRETTY_NAME="?(.*?)"?$', Path("/etc/os-release").read_text(), re.M)
        os_name = m.group(1) if m else os_name
    keys = {
        "BUNDLE_NAME": name, "VARIANT": info["variant"],
        "CUDA_RELEASE": info.get("release", ""), "CUDA_ARCH_BIN": info.get("arch", ""),
        "CUDA_ARCH_PTX": info.get("ptx", ""), "CUDA_LIBS": " ".join(libs["cuda_needed"]),
        "GLIBC": libs["glibc"], "GLIBC_MIN": libs["glibc_min"], "CPU_FLAGS": info["cpu_flags"],
        "BUNDLED_LIBS": " ".join(libs["bundled"]), "MODELS": " ".join(m for m, _ in MODELS),
        "TOL_FB": TOL_FB, "TOL_TRAIN": TOL_TRAIN,
        "BUILT": datetime.datetime.now().isoformat(timespec="seconds"), "BUILT_ON": os_name,
        "CAFFE_BUILD_FLAGS": info["flags"],
    }
    text = "# Written by scripts/build/gpu_bundle.py; sourced by check.sh.\n"
    text += "".join(f"{k}={_q(v)}\n" for k, v in keys.items())
    write_text_atomic(stage / "BUNDLE_INFO", text)


def make_tarball(stage: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, ".tar.gz") as tmp:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            tar.add(stage, arcname=stage.name)
    return out


def build_bundle(prefix: Path, out: Path | None, config: str | None) -> Path:
    from configs import load_config
    info = build_info(prefix)
    name = bundle_name(info)
    out = out or ROOT / "dist" / f"{name}.tar.gz"
    cfg = load_config(config)
    with tempfile.TemporaryDirectory() as d:
        stage = Path(d) / name
        libs = install_binaries(prefix, info, stage)
        write_nets(cfg, stage)
        shutil.copy2(ROOT / "scripts" / "build" / "bundle_check.sh", stage / "check.sh")
        os.chmod(stage / "check.sh", 0o755)
        write_info(stage, name, info, libs)
        make_tarball(stage, out)
    return out


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--cuda", choices=("11", "13"), help="build (or find) the CUDA variant with "
                   "this toolkit (13: NVIDIA's CUDA 13.0 wheels; 11: Debian's 11.8)")
    g.add_argument("--cpu", action="store_true", help="bundle the CPU build")
    g.add_argument("--prefix", type=Path, help="bundle this Caffe install folder as it is")
    ap.add_argument("--arch", default="90", help="GPU architectures (default 90: H100/H200)")
    ap.add_argument("--ptx", default="90", help="architectures whose PTX is embedded (default 90)")
    ap.add_argument("--out", type=Path, help="the tarball (default dist/<bundle name>.tar.gz)")
    ap.add_argument("--config", default="configs/paper.yaml", help="config of the nets (paper)")
    a = ap.parse_args(argv)
    if a.prefix:
        prefix = a.prefix.resolve()
    else:
        prefix = build_prefix(None if a.cpu else (a.cuda or "13"), a.arch, a.ptx)
    out = build_bundle(prefix, a.out, a.config)
    with tarfile.open(out) as tar:
        top = tar.next().name.split("/")[0]
    print(f"[gpu-bundle] {out} ({out.stat().st_size / 2**20:.1f} MiB); on the target machine: "
          f"tar -xzf {out.name} && sh {top}/check.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
