"""GPU plumbing that training uses: is a GPU usable by this Caffe build?

Caffe's CUDA calls stop the process with a glog CHECK (SIGABRT) when there is no usable
GPU, and a CPU-only Caffe does the same on any GPU call. So nothing here calls into Caffe
on the GPU before ``require_gpu`` has asked the CUDA runtime itself, through ctypes,
how many GPUs there are:

    require_gpu(0)       # GPUUnavailable with the reason, or nothing
    gpu_status(0)        # {"ok": bool, "reason": str, "cuda_build": bool, "devices": n}

The checks of ``make gpu-check`` that compare the GPU with the CPU are diagnostics:
scripts/diagnostics/gpu_compare.py.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

from configs import errors
from configs.errors import GPUUnavailable  # noqa: F401  (raised by require_gpu)

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- probing
def caffe_prefix() -> Path:
    """Install prefix of the imported pycaffe (PREFIX/lib/python3/dist-packages/caffe)."""
    import caffe
    return Path(caffe.__file__).resolve().parents[4]


def build_flags() -> str:
    f = caffe_prefix() / "BUILD_FLAGS"
    return f.read_text().strip() if f.exists() else ""


def _cudart():
    """The CUDA runtime that pycaffe loaded, or None for a CPU-only build."""
    import caffe  # noqa: F401  (loads libcaffe and, in a CUDA build, libcudart)
    with open("/proc/self/maps") as maps:
        for line in maps:
            if "/libcudart.so" in line:
                return ctypes.CDLL(line.split()[-1])
    return None


def gpu_status(gpu: int = 0) -> dict:
    """Whether Caffe can use GPU ``gpu`` here, asked without touching Caffe's GPU code."""
    rt = _cudart()
    if rt is None:
        return {"ok": False, "cuda_build": False, "devices": 0,
                "reason": f"the Caffe build in use ({caffe_prefix()}) is CPU-only; build the CUDA "
                          f"variant with `make setup CAFFE_GPU=1`"}
    rt.cudaGetErrorString.restype = ctypes.c_char_p
    n = ctypes.c_int(0)
    err = rt.cudaGetDeviceCount(ctypes.byref(n))
    if err != 0:
        why = rt.cudaGetErrorString(err).decode()
        return {"ok": False, "cuda_build": True, "devices": 0,
                "reason": f"no usable CUDA GPU: the CUDA runtime says '{why}' (error {err}); this "
                          f"needs a machine with an NVIDIA GPU and its driver"}
    if not 0 <= gpu < n.value:
        return {"ok": False, "cuda_build": True, "devices": n.value,
                "reason": f"GPU {gpu} requested, but {n.value} CUDA GPU(s) present "
                          f"(ids 0..{n.value - 1})" if n.value else "no CUDA GPU present"}
    return {"ok": True, "cuda_build": True, "devices": n.value, "reason": f"{n.value} CUDA GPU(s)"}


def require_gpu(gpu: int) -> None:
    st = gpu_status(int(gpu))
    if not st["ok"]:
        raise GPUUnavailable(f"cannot run Caffe on GPU {gpu}: {st['reason']}")


@errors.cli
def main(argv=None) -> int:
    """``python -m scripts.training.gpu --require N``: exit 0 when GPU N is usable, else
    ``errors.EXIT_NO_GPU`` and why."""
    import argparse
    ap = argparse.ArgumentParser(description="Is a GPU usable by this Caffe build?")
    ap.add_argument("--require", type=int, required=True, metavar="GPU_ID")
    a = ap.parse_args(argv)
    require_gpu(a.require)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
