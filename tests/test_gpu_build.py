"""The CUDA build of Caffe (`make setup CAFFE_GPU=1`) on a machine without a GPU.

These tests use the newest CUDA build in the Caffe cache, whichever build the venv uses,
and are skipped, with the reason, when there is none (`make setup CAFFE_GPU=1` makes
one; CI never does) or when a GPU is present (then the no-GPU paths cannot happen).
They check that it links against the CUDA libraries and that every way of asking it
for a GPU ends in a clear message and a non-zero exit status or an exception, never in
a CUDA CHECK abort or a hang.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from configs import errors

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / ".venv" / "bin" / "python"
CACHE = Path(os.environ.get("CAFFE_CACHE") or
             Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lstm-cnn-fasd")


def _cuda_build():
    builds = sorted((p for p in CACHE.glob("caffe-*-cuda-*") if (p / "bin" / "caffe").exists()),
                    key=lambda p: p.stat().st_mtime)
    return builds[-1] if builds else None


def _gpu_present() -> bool:
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True).returncode == 0


PREFIX = _cuda_build()
pytestmark = pytest.mark.skipif(PREFIX is None, reason=f"no CUDA build of Caffe in {CACHE} "
                                                       f"(`make setup CAFFE_GPU=1` makes one)")
no_gpu = pytest.mark.skipif(_gpu_present(), reason="a GPU is present: the no-GPU paths cannot "
                                                   "be exercised (`make gpu-check` covers that machine)")


def _env():
    """The CUDA build's pycaffe ahead of the venv's (PYTHONPATH precedes .pth entries)."""
    return dict(os.environ, PYTHONPATH=str(PREFIX / "lib" / "python3" / "dist-packages"),
                GLOG_minloglevel="2")


def test_cuda_build_links_the_cuda_libraries():
    assert "-DCPU_ONLY=OFF" in (PREFIX / "BUILD_FLAGS").read_text()
    lib = next((PREFIX / "lib").glob("libcaffe.so*"))
    ldd = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, check=True).stdout
    for so in ("libcudart.so", "libcublas.so", "libcurand.so"):
        line = next((l for l in ldd.splitlines() if so in l), "")
        assert line and "not found" not in line, f"{so} in ldd {lib}:\n{ldd}"


def test_cuda_build_holds_code_for_its_architectures():
    """The fat binary has an ELF per CUDA_ARCH_BIN entry and the PTX of CUDA_ARCH_PTX."""
    flags = (PREFIX / "BUILD_FLAGS").read_text()
    nvcc = next((f.split("=", 1)[1] for f in flags.split() if f.startswith("-DCUDA_NVCC_EXECUTABLE=")), "")
    cuobjdump = Path(nvcc).parent / "cuobjdump" if nvcc else None
    cuobjdump = cuobjdump if cuobjdump and cuobjdump.exists() else shutil.which("cuobjdump")
    if not cuobjdump:
        pytest.skip("cuobjdump not found next to the build's nvcc or on PATH")
    arch = next(f.split("=", 1)[1] for f in flags.split("-D") if f.startswith("CUDA_ARCH_BIN="))
    lib = next((PREFIX / "lib").glob("libcaffe.so.*"))
    elf = subprocess.run([str(cuobjdump), "--list-elf", str(lib)], capture_output=True, text=True)
    for a in arch.split():
        assert f"sm_{a}" in elf.stdout, f"no sm_{a} code in {lib}"


@no_gpu
def test_cli_device_query_without_gpu_is_a_clear_error():
    out = subprocess.run([str(PREFIX / "bin" / "caffe"), "device_query", "-gpu", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert "no usable CUDA GPU" in out.stderr
    assert "Check failed" not in out.stderr


@no_gpu
def test_pycaffe_gpu_calls_raise_and_cpu_mode_still_works(tmp_path):
    code = r"""
import caffe, sys
assert '-cuda-' in caffe.__file__, caffe.__file__
assert {'LSTM', 'HDF5Data', 'Python'} <= set(caffe.layer_type_list())
for name, call in (("set_device", lambda: caffe.set_device(0)), ("set_mode_gpu", caffe.set_mode_gpu)):
    try:
        call()
    except RuntimeError as e:
        assert "no usable CUDA GPU" in str(e), str(e)
        print(name, "raised:", e)
    else:
        sys.exit(name + " did not raise")
caffe.set_mode_cpu()
open(sys.argv[1], "w").write('input: "x" input_shape { dim: 2 dim: 3 } '
    'layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" '
    'inner_product_param { num_output: 4 weight_filler { type: "constant" value: 1 } } }')
net = caffe.Net(sys.argv[1], caffe.TEST)
net.blobs["x"].data[...] = 1
assert (net.forward()["y"] == 3).all()
print("cpu ok")
"""
    out = subprocess.run([str(VENV_PY), "-c", code, str(tmp_path / "n.prototxt")], env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert out.stdout.count("raised: no usable CUDA GPU") == 2 and "cpu ok" in out.stdout


@no_gpu
def test_project_refuses_the_gpu_before_training(tmp_path):
    """scripts.training.gpu says why; scripts.train --gpu exits 8 (no usable GPU) and makes no run folder."""
    out = subprocess.run([str(VENV_PY), "-m", "scripts.training.gpu", "--require", "0"], cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == errors.EXIT_NO_GPU and "no usable CUDA GPU" in out.stderr, out.stderr
    run = tmp_path / "run"
    out = subprocess.run([str(VENV_PY), "-m", "scripts.train", "--config", "configs/demo.yaml",
                          "--run", str(run), "--experiment", "cnn_T1_s2.6/fold1", "--gpu", "0"],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == errors.EXIT_NO_GPU, out.stderr[-2000:]
    assert "no usable CUDA GPU" in out.stderr and not run.exists()


@no_gpu
def test_gpu_check_runs_the_cpu_side_and_exits_8(tmp_path):
    """`make gpu-check`'s CLI without a GPU: CPU parts run, GPU parts skipped, exit 8."""
    import json
    rep = tmp_path / "report.json"
    out = subprocess.run([str(VENV_PY), "-m", "scripts.diagnostics.gpu_check", "--size", "16", "--models", "cnn",
                          "--cpu-iters", "1", "--skip-train", "--out", str(rep)],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == errors.EXIT_NO_GPU, out.stdout + out.stderr[-2000:]
    r = json.loads(rep.read_text())
    assert r["gpu_status"]["cuda_build"] and not r["gpu_status"]["ok"]
    assert r["device_query"]["status"] == "no GPU: skipped"
    assert r["agreement"][0]["status"] == "no GPU: skipped" and r["agreement"][0]["cpu_loss"] > 0
    assert r["throughput"][0]["cpu_frames_per_s"] > 0
