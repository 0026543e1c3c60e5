"""The relocatable Caffe bundle (scripts/build/gpu_bundle.py, `make gpu-bundle`) in a clean root.

A bundle of the CPU build is made every time (seconds) and, when the Caffe cache holds a
CUDA 13 build (`make gpu-bundle CUDA=13` makes one; CI never does), one of that build.
Each is unpacked into a root that holds nothing but glibc, a shell and the core tools
(the files of those Debian packages and of what they depend on, copied from this machine:
no Boost, protobuf, HDF5, OpenBLAS, libstdc++ or Python), and its check's CPU half runs
there in an empty environment (`env -i`, chroot in a private mount namespace). It must
find every library inside the bundle (which carries glibc and its loader too; the root's
glibc only runs the shell), run the three nets on the CPU, and exit 8, "no usable GPU"
(configs/errors.py). Needs root (chroot, mounts); skipped with the reason otherwise.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from configs import errors

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("CAFFE_CACHE") or
             Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lstm-cnn-fasd")
# What any Linux machine that runs the check has: glibc, ldd, a POSIX shell and the core
# tools. Their dependencies come along (libgcc_s, libselinux, ...), nothing else.
BASE_PACKAGES = ("libc6", "libc-bin", "dash", "bash", "coreutils", "grep", "sed", "mawk",
                 "findutils", "gzip", "tar")
# Libraries of the Caffe build that the root must not have (the premise of the test).
BUILD_LIBS = ("libstdc++.so", "libboost", "libprotobuf", "libglog", "libgflags", "libhdf5",
              "libopenblas", "libgfortran", "libgomp", "libpython3", "libcudart", "libcublas")
MODELS = ("cnn", "lstm", "peephole")
GLIBC = ("ld-linux", "libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so", "libresolv.so",
         "libutil.so", "libmvec.so")

pytestmark = [pytest.mark.slow, pytest.mark.caffe]


def _can_chroot() -> str | None:
    if os.geteuid() != 0:
        return "needs root for chroot and mounts in a private mount namespace"
    for tool in ("unshare", "chroot", "dpkg-query", "patchelf", "g++"):
        if not shutil.which(tool):
            return f"{tool} not found (make setup installs patchelf and g++)"
    return None


def _deps(pkg: str) -> set[str]:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", pkg],
                         capture_output=True, text=True).stdout
    names = set()
    for alt in out.split(","):
        for choice in alt.split("|"):
            name = choice.strip().split(" ")[0].split(":")[0]
            if name and subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True,
                                       text=True).stdout.endswith("installed"):
                names.add(name)
                break
    return names


def base_root(root: Path) -> set[str]:
    """Copy the files of BASE_PACKAGES and their dependencies into ``root`` (merged /usr,
    as Debian 12); returns the packages."""
    todo, pkgs = list(BASE_PACKAGES), set()
    while todo:
        p = todo.pop()
        if p not in pkgs:
            pkgs.add(p)
            todo.extend(_deps(p) - pkgs)
    for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "dev", "proc", "sys", "tmp", "etc", "out", "opt"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for link in ("bin", "sbin", "lib", "lib64"):
        (root / link).symlink_to(f"usr/{link}")
    for p in sorted(pkgs):
        listing = subprocess.run(["dpkg", "-L", p], capture_output=True, text=True).stdout.split("\n")
        for f in listing:
            if f.startswith("/") and (os.path.islink(f) or os.path.isfile(f)) and not f.startswith("/usr/share"):
                dest = root / f.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not os.path.lexists(dest):
                    shutil.copy2(f, dest, follow_symlinks=False)
    # Commands that update-alternatives links (awk -> mawk), where the target is in the root.
    for link in Path("/usr/bin").iterdir():
        if link.is_symlink() and os.readlink(link).startswith("/etc/alternatives/"):
            target = os.path.realpath(link)
            if (root / target.lstrip("/")).exists() and not os.path.lexists(root / "usr/bin" / link.name):
                (root / "usr/bin" / link.name).symlink_to(target)
    return pkgs


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory) -> Path:
    reason = _can_chroot()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("root")
    base_root(root)
    present = [str(p.relative_to(root)) for p in root.rglob("*") if p.name.startswith(BUILD_LIBS)]
    assert present == [], f"the clean root holds build libraries: {present}"
    assert not list(root.rglob("python3*")), "the clean root holds a Python"
    return root


def in_root(root: Path, script: str, binds: dict[str, Path] | None = None, timeout: int = 300):
    """``script`` (sh) in ``root`` as its /, environment emptied; ``binds``: root path ->
    host folder, mounted read-only for this run only."""
    mounts = "mount --rbind /dev \"$R/dev\" && mount -t proc proc \"$R/proc\" && mount --rbind /sys \"$R/sys\""
    for inside, host in (binds or {}).items():
        (root / inside.lstrip("/")).mkdir(parents=True, exist_ok=True)
        mounts += f" && mount --bind '{host}' \"$R{inside}\" && mount -o remount,bind,ro \"$R{inside}\""
    cmd = (f"{mounts} && exec chroot \"$R\" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp "
           f"/bin/sh -c '{script}'")
    return subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", cmd], env=dict(os.environ, R=str(root)),
                          capture_output=True, text=True, timeout=timeout)


def make_bundle(tmp: Path, args: list[str]) -> Path:
    out = tmp / "bundle.tar.gz"
    r = subprocess.run([sys.executable, "-m", "scripts.build.gpu_bundle", *args, "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert out.stat().st_size < 60 * 2**20, f"bundle is {out.stat().st_size / 2**20:.1f} MiB"
    return out


def unpack(tarball: Path, root: Path) -> str:
    """Unpack into root/opt as the node would; returns the bundle's path inside the root."""
    shutil.rmtree(root / "opt", ignore_errors=True)
    (root / "opt").mkdir()
    with tarfile.open(tarball) as tar:
        top = tar.next().name.split("/")[0]
        tar.extractall(root / "opt")
    return f"/opt/{top}"


def parse_report(text: str) -> dict[str, str]:
    """{check name: verdict} of a report.txt (names are one word, or a check and a net)."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if f[0] in ("machine", "cpu", "glibc", "libraries", "device_query", "total"):
            out[f[0]] = f[1]
        else:
            out[f"{f[0]} {f[1]}"] = f[2]
    return out


def check_rehearsal(root: Path, bundle: str, binds: dict, extra: str = "", libpath: str = "") -> str:
    """The check's CPU half in the root: exit 8 (no GPU), every report line pass or no-GPU, the CPU
    figures there; every binary's libraries inside the bundle (glibc included), CUDA's
    apart. Returns the report."""
    shutil.rmtree(root / "out", ignore_errors=True)
    (root / "out").mkdir()
    r = in_root(root, f"sh {bundle}/check.sh --quick --out /out/check {extra}; echo rc=$?; "
                      f"for f in {bundle}/libexec/* {bundle}/lib/lib*; do echo \"== $f\"; "
                      f"LD_TRACE_LOADED_OBJECTS=1 {bundle}/lib/ld-linux-x86-64.so.2 --library-path \"{libpath}\" \"$f\"; "
                      f"done > /out/ldd.txt",
                binds)
    report = (root / "out" / "check" / "report.txt").read_text() if (root / "out" / "check" / "report.txt").exists() else ""
    assert f"rc={errors.EXIT_NO_GPU}" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    verdicts = parse_report(report)
    assert all(v in ("pass", "no-GPU") for v in verdicts.values()), report
    assert verdicts["libraries"] == "pass" and verdicts["device_query"] == "no-GPU", report
    for m in MODELS:
        for c in ("forward", "blobs", "train", "time", "train-speed"):
            assert re.search(rf"^{c} +{m} +no-GPU ", report, re.M), f"no '{c} {m}' line:\n{report}"
        fps = re.search(rf"^time +{m} .*CPU ([0-9.]+) frames/s", report, re.M)
        assert fps and float(fps.group(1)) > 0, report
        loss = re.search(rf"^forward +{m} .*CPU loss ([0-9.]+)", report, re.M)
        assert loss and 0.3 < float(loss.group(1)) < 1.5, report  # ~ln 2 for random weights
    for block in (root / "out" / "ldd.txt").read_text().split("== ")[1:]:
        name, *lines = block.strip().splitlines()
        if Path(name).name.startswith(GLIBC):
            continue  # no DT_RPATH: in the process they are the bundle's, loaded by soname
        for l in lines:
            assert "not found" not in l, f"{name}: {l}"
            m = re.match(r"\s*(\S+) => (\S+)", l)
            if m and not m.group(2).startswith(bundle):
                assert m.group(1).startswith(("libcudart", "libcublas", "libcurand")) and libpath \
                    and m.group(2).startswith(libpath), \
                    f"{name} loads {m.group(1)} from {m.group(2)}, outside the bundle"
    return report


@pytest.fixture(scope="module")
def cpu_bundle(clean_root, tmp_path_factory) -> Path:
    """A bundle of the CPU build that `make setup` made (cached: setup.sh only finds it).
    `make cpu-bundle` bundles a portable build instead (-march=x86-64-v3, not native);
    the bundling code is the same."""
    env = dict(os.environ, CAFFE_GPU="0", SETUP_BUILD_ONLY="1")
    r = subprocess.run(["bash", "scripts/build/setup.sh"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    prefix = r.stdout.strip().splitlines()[-1]
    return make_bundle(tmp_path_factory.mktemp("cpu_bundle"), ["--prefix", prefix])


def test_cpu_bundle_runs_its_check_in_a_clean_root(clean_root, cpu_bundle):
    bundle = unpack(cpu_bundle, clean_root)
    report = check_rehearsal(clean_root, bundle, {})
    assert "a CPU-only bundle" in report


def test_a_missing_library_is_reported_with_exit_7(clean_root, cpu_bundle):
    """The libraries check can fail: the bundle without its glog (7: Caffe cannot load here)."""
    bundle = unpack(cpu_bundle, clean_root)
    (clean_root / bundle.lstrip("/") / "lib" / "libglog.so.1").unlink()
    r = in_root(clean_root, f"sh {bundle}/check.sh --quick --out /out/bad; echo rc=$?", {})
    assert f"rc={errors.EXIT_BACKEND}" in r.stdout, r.stdout + r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith("libraries"))
    assert "FAIL" in line and "libglog.so.1" in line, line


def _cuda_build():
    """The newest CUDA 12+ build in the cache and its toolkit's wheel folder, or None."""
    for p in sorted(CACHE.glob("caffe-*-cuda-*"), key=lambda p: -p.stat().st_mtime):
        flags = (p / "BUILD_FLAGS").read_text() if (p / "BUILD_FLAGS").exists() else ""
        m = re.search(r"-DCUDA_TOOLKIT_ROOT_DIR=(\S+)", flags)
        if (p / "bin" / "caffe").exists() and m and "/nvidia/cu13" in m.group(1):
            return p, Path(m.group(1)).parents[1]  # .../site (holds nvidia/cu13/lib)
    return None


def test_cuda_bundle_runs_its_check_in_a_clean_root(clean_root, tmp_path):
    """With the CUDA 13 wheels' folder mounted as a Python environment's site-packages."""
    found = _cuda_build()
    if found is None:
        pytest.skip(f"no CUDA 13 build of Caffe in {CACHE} (`make gpu-bundle CUDA=13` makes one, "
                    f"about an hour on 2 cores; CI never does)")
    prefix, site = found
    smi = shutil.which("nvidia-smi")
    if smi and subprocess.run([smi, "-L"], capture_output=True).returncode == 0:
        pytest.skip("a GPU is present: the no-GPU exit cannot happen (run check.sh itself)")
    bundle = unpack(make_bundle(tmp_path, ["--prefix", str(prefix)]), clean_root)
    report = check_rehearsal(clean_root, bundle, {"/opt/pyenv/lib/python3.12/site-packages": site},
                             "--python-env /opt/pyenv",
                             "/opt/pyenv/lib/python3.12/site-packages/nvidia/cu13/lib")
    assert "no usable CUDA GPU" in report
    assert re.search(r"^libraries +pass .*CUDA: .*libcublas\.so\.13=>/opt/pyenv/", report, re.M), report
