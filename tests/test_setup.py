"""The environment `make setup` builds. Real Caffe, no mocks."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / ".venv" / "bin" / "python"
CAFFE_BIN = ROOT / ".venv" / "bin" / "caffe"


@pytest.mark.caffe
def test_pycaffe_imports_from_any_folder(tmp_path):
    # No PYTHONPATH: the .pth file written by setup must be enough.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(VENV_PY), "-c",
                          "import caffe, sys; print(sorted({'LSTM','HDF5Data','Python'} & set(caffe.layer_type_list())))"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['HDF5Data', 'LSTM', 'Python']"


@pytest.mark.caffe
@pytest.mark.slow
def test_caffe_cli_trains_a_tiny_solver(tmp_path):
    """`caffe train --solver` works from the command line on a solver written here."""
    import h5py
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"] = x
        f["label"] = y
    (tmp_path / "list.txt").write_text(str(tmp_path / "d.h5") + "\n")
    (tmp_path / "net.prototxt").write_text(f"""
layer {{ name: "d" type: "HDF5Data" top: "data" top: "label"
        hdf5_data_param {{ source: "{tmp_path / 'list.txt'}" batch_size: 16 }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
        inner_product_param {{ num_output: 2 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }}
""")
    (tmp_path / "solver.prototxt").write_text(f"""
net: "{tmp_path / 'net.prototxt'}"
base_lr: 0.1 lr_policy: "fixed" momentum: 0.9 max_iter: 200 display: 50
snapshot: 0 snapshot_prefix: "{tmp_path / 'snap'}" solver_mode: CPU random_seed: 1
""")
    out = subprocess.run([str(CAFFE_BIN), "train", "--solver", str(tmp_path / "solver.prototxt")],
                         cwd=tmp_path, capture_output=True, text=True,
                         env=dict(os.environ, GLOG_minloglevel="0"))
    assert out.returncode == 0, out.stderr[-2000:]
    losses = [float(l.rsplit("=", 1)[1]) for l in out.stderr.splitlines()
              if "Iteration" in l and ", loss = " in l]
    assert len(losses) >= 4
    assert losses[-1] < 0.5 * losses[0], losses
    assert (tmp_path / "snap_iter_200.caffemodel").exists()


def test_gpu_build_without_nvcc_fails_clearly(tmp_path):
    """CAFFE_GPU=1 with no CUDA compiler stops before building, naming nvcc."""
    env = dict(os.environ, CAFFE_GPU="1", NVCC=str(tmp_path / "no-nvcc"),
               CAFFE_CACHE=str(tmp_path / "cache"), VENV=str(tmp_path / "venv"))
    out = subprocess.run(["bash", str(ROOT / "scripts" / "build" / "setup.sh")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "nvcc" in out.stderr and "CUDA" in out.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def _fake_nvcc(tmp_path, release="11.8, V11.8.89", archs="35 37 50 60 70 75 80 86 90"):
    """An nvcc that only answers --version and --list-gpu-code, as CUDA 11.8's does."""
    nvcc = tmp_path / "nvcc"
    codes = "\\n".join(f"sm_{a}" for a in archs.split())
    nvcc.write_text(f"""#!/bin/sh
case "$1" in
  --version) echo "Cuda compilation tools, release {release}" ;;
  --list-gpu-code) printf '{codes}\\n' ;;
  *) exit 1 ;;
esac
""")
    nvcc.chmod(0o755)
    return nvcc


def _setup_env(tmp_path, **kw):
    env = dict(os.environ, CAFFE_GPU="1", CAFFE_CACHE=str(tmp_path / "cache"),
               VENV=str(tmp_path / "venv"), PATH="/usr/sbin:/usr/bin:/sbin:/bin", **kw)
    for k in ("CUDA_ARCH_BIN", "CUDA_ARCH_PTX", "CUDA_HOME"):
        if k not in kw:
            env.pop(k, None)
    return env


def _run_setup(env):
    return subprocess.run(["bash", str(ROOT / "scripts" / "build" / "setup.sh")], env=env,
                          capture_output=True, text=True, timeout=300)


def test_gpu_build_nvcc_that_is_not_nvcc(tmp_path):
    """NVCC= pointing at something that prints no CUDA release stops before building."""
    nvcc = tmp_path / "nvcc"
    nvcc.write_text("#!/bin/sh\necho fake\n")
    nvcc.chmod(0o755)
    out = _run_setup(_setup_env(tmp_path, NVCC=str(nvcc)))
    assert out.returncode != 0
    assert "no CUDA release" in out.stderr and "NVCC" in out.stderr


def test_gpu_build_auto_architecture_needs_a_gpu(tmp_path):
    """CUDA_ARCH_BIN=auto asks nvidia-smi; without a GPU the message says to set it."""
    out = _run_setup(_setup_env(tmp_path, NVCC=str(_fake_nvcc(tmp_path)), CUDA_ARCH_BIN="auto"))
    if shutil.which("nvidia-smi", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        pytest.skip("nvidia-smi is present: the no-GPU path cannot be exercised here")
    assert out.returncode != 0
    assert "CUDA_ARCH_BIN" in out.stderr and "nvidia-smi" in out.stderr


def test_gpu_build_architecture_the_toolkit_lacks(tmp_path):
    """An architecture nvcc cannot target is named, with the ones it can."""
    out = _run_setup(_setup_env(tmp_path, NVCC=str(_fake_nvcc(tmp_path, archs="75 80 90")),
                                CUDA_ARCH_BIN="35 90"))
    assert out.returncode != 0
    assert "cannot compile for sm_35" in out.stderr and "75 80 90" in out.stderr


def test_remove_dead_builds_keeps_a_running_build(tmp_path):
    """Only leftover tmp-caffe-* folders of dead builds go; a running setup.sh's stays."""
    func = subprocess.run(["sed", "-n", "/^remove_dead_builds()/,/^}/p",
                           str(ROOT / "scripts" / "build" / "setup.sh")], capture_output=True, text=True).stdout
    assert func.startswith("remove_dead_builds()")
    cache = tmp_path / "cache"
    (tmp_path / "setup.sh").write_text("sleep 60\n")
    live = subprocess.Popen(["bash", str(tmp_path / "setup.sh")])      # a build in progress
    other = subprocess.Popen(["sleep", "60"])                            # a reused PID
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        for name, pid in (("live", live.pid), ("other", other.pid), ("dead", dead.pid)):
            (cache / f"tmp-caffe-cpu-{name}-{pid}").mkdir(parents=True)
        subprocess.run(["bash", "-c", f"say() {{ :; }}\n{func}\nCACHE_ROOT={cache}\nremove_dead_builds"],
                       check=True)
        left = sorted(p.name.split("-")[3] for p in cache.iterdir())
    finally:
        live.kill()
        other.kill()
    assert left == ["live"]


def test_gpu_build_unreachable_mirror_fails_clearly(tmp_path):
    """No nvcc anywhere: the Debian CUDA 11.8 route; a mirror that cannot be reached stops
    it with a message naming the mirror and both ways out, and leaves no partial toolkit."""
    if not shutil.which("g++-11"):
        pytest.skip("g++-11 is not installed: setup would install it with apt first")
    if shutil.which("nvcc", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        pytest.skip("a system nvcc is installed: setup would use it instead of Debian's toolkit")
    env = _setup_env(tmp_path, DEBIAN_MIRROR="http://127.0.0.1:9/debian")
    env.pop("NVCC", None)
    out = _run_setup(env)
    assert out.returncode != 0
    assert "http://127.0.0.1:9/debian" in out.stderr and "DEBIAN_MIRROR" in out.stderr and "NVCC" in out.stderr
    cache = tmp_path / "cache"
    assert not any(p.name.startswith(("cuda-", "tmp-caffe-")) for p in cache.iterdir())


@pytest.mark.slow   # four runs of setup.sh's checks, about 10 s each
def test_a_cache_built_for_one_cpu_is_never_used_on_another(tmp_path):
    """The -march=native build's cache folder is named after everything -march=native
    expands to on this CPU. Another CPU is emulated with the real gcc told to leave out
    AVX-512 (a Zen 3 beside this project's Zen 4 machines: gcc 12 calls both "znver3"),
    and then AVX2 as well: each gets a cache folder of its own, and the folder of this
    CPU is the one the venv uses."""
    def prefix(extra_flags=None, **env):
        e = dict(os.environ, SETUP_PRINT_PREFIX="1", CAFFE_GPU="0", **env)
        if extra_flags:
            wrap = tmp_path / ("bin" + str(abs(hash(extra_flags))))
            wrap.mkdir(exist_ok=True)
            real = shutil.which("gcc")
            (wrap / "gcc").write_text(f'#!/bin/sh\nexec {real} "$@" {extra_flags}\n')
            (wrap / "gcc").chmod(0o755)
            e["PATH"] = f"{wrap}:{e['PATH']}"
        out = subprocess.run(["bash", str(ROOT / "scripts" / "build" / "setup.sh")], cwd=ROOT, env=e,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip().splitlines()[-1]
    here = prefix()
    others = {prefix("-mno-avx512f"), prefix("-mno-avx512f -mno-avx2")}
    assert here not in others and len(others) == 2
    assert prefix(CAFFE_CXXFLAGS="") == prefix("-mno-avx512f", CAFFE_CXXFLAGS="")  # portable
    venv_prefix = ROOT / ".venv" / "caffe-prefix"
    flags = (venv_prefix / "BUILD_FLAGS").read_text() if venv_prefix.exists() else ""
    if all(f in flags for f in ("-march=native", "-DUSE_OPENMP=ON", "-DCPU_ONLY=ON")):
        assert venv_prefix.resolve() == Path(here).resolve()
