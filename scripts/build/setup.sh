#!/usr/bin/env bash
# make setup: system packages, BVLC Caffe built from Debian's source package, .venv.
#
# Idempotent: every step checks a stamp and returns in a second when it is done.
#   1. apt packages the Caffe build needs, installed only when missing.
#   2. Caffe source = Debian's `caffe` 1.0.0+git20180821.99bd997-8 (upstream master of
#      Aug 2018 + Debian's build patches), fetched with `apt-get source` through a
#      private apt configuration, so that the machine's own apt setup is left alone.
#   3. CMake build in a temporary folder, installed with DESTDIR and renamed into the
#      cache folder at the end: an interrupted build never leaves a half-built cache.
#      The folder name carries the Caffe version and a hash of the build flags.
#   4. .venv with the pins of requirements.txt; a .pth file makes pycaffe importable and
#      .venv/bin/caffe points at the command-line tool.
#   5. Verification: caffe --version, import caffe, the LSTM/HDF5Data/Python layers,
#      and pycaffe's own 52 unit tests (once per build).
#
# Environment knobs (all optional):
#   CAFFE_GPU=1         build with CUDA (CPU_ONLY=OFF, USE_CUDNN=OFF); see "CUDA toolkit"
#   CAFFE_CUDA=13       with CAFFE_GPU=1: CUDA 13.0 from NVIDIA's PyPI wheels (nvcc, runtime,
#                       cuBLAS, cuRAND; pinned below) instead of Debian's 11.8; "11" or
#                       unset: the 11.8 route. NVCC= / CUDA_HOME= still take precedence.
#   SETUP_CUDA_TOOLKIT_ONLY=1  fetch (or find) the CUDA toolkit, print its folder, stop
#   CUDA_ARCH_BIN="…"   GPU architectures to compile for (default "35 60 70 75 80 86 90",
#                       the K40 to the H100/H200; "auto" asks nvidia-smi); e.g. "90"
#   CUDA_ARCH_PTX="90"  architectures whose PTX is embedded too (newer GPUs JIT it)
#   NVCC=path           the CUDA compiler; CUDA_HOME=dir means NVCC=$CUDA_HOME/bin/nvcc
#   CUDA_HOST_CXX=g++-11  host compiler nvcc uses (default g++-11 with the Debian toolkit)
#   CAFFE_CACHE=dir     where builds are cached (default: $XDG_CACHE_HOME or ~/.cache,
#                       subfolder lstm-cnn-fasd)
#   PYTHON=python3      the interpreter the venv is made from
#   VENV=.venv          the virtual environment folder
#   JOBS=N              parallel compile jobs (default: number of cores)
#   CAFFE_CPU_PATCHES=0 build the CPU variant without the speed patches of
#                       scripts/build/caffe-patches/ (OpenMP over the images of a batch; see
#                       that folder's README): BVLC Caffe's own CPU code. A separate
#                       cached build; `make bench` and the results-unchanged test
#                       (tests/test_caffe_patches.py) compare the two.
#   SETUP_PRINT_PREFIX=1  print the cache folder these settings build into (or find) and
#                       stop, building nothing (its name hashes the flags and this CPU)
#   SETUP_BUILD_ONLY=1  build (or find) Caffe, print its install folder, and stop: no
#                       venv, nothing else touched
#   CAFFE_CXXFLAGS="…"  extra C++ flags for the Caffe build (default "-march=native":
#                       ~9 % faster training measured by `make bench`; "" for a portable
#                       build, e.g. when the cache folder is shared by different CPUs)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$HERE"

CAFFE_DEB_VERSION="1.0.0+git20180821.99bd997-8"
CAFFE_DEB_SUITE="bullseye"   # Debian 11, the last release that shipped BVLC Caffe
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
case "$VENV" in /*) ;; *) VENV="$HERE/$VENV" ;; esac
JOBS="${JOBS:-$(nproc)}"
CAFFE_GPU="${CAFFE_GPU:-0}"
CAFFE_CPU_PATCHES="${CAFFE_CPU_PATCHES:-1}"
CACHE_ROOT="${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lstm-cnn-fasd}"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
t0=$(date +%s)

remove_dead_builds() {
  # A leftover temporary folder means an interrupted build: remove it, but only when the
  # build that made it is gone. Its name ends in that setup.sh's process id; a folder
  # whose process is still a running setup.sh is a concurrent build in another checkout
  # sharing this cache, and stays.
  local d pid
  for d in "$CACHE_ROOT"/tmp-caffe-*; do
    [ -d "$d" ] || continue
    pid="${d##*-}"
    case "$pid" in ''|*[!0-9]*) continue ;; esac
    if [ -r "/proc/$pid/cmdline" ]; then
      tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'setup\.sh' && continue
    elif kill -0 "$pid" 2>/dev/null; then
      continue
    fi
    say "removing the leftover folder of an interrupted build: $d"
    rm -rf "$d"
  done
}

# ---------------------------------------------------------------- CUDA toolkit
# Which nvcc builds the CUDA variant (CAFFE_GPU=1); the first that applies wins:
#   1. NVCC=/path/to/nvcc, or CUDA_HOME=dir (then dir/bin/nvcc): your choice, used as is.
#   2. nvcc on PATH when it is CUDA 11 or 12 (a system CUDA).
#   3. otherwise Debian 12's nvidia-cuda-toolkit 11.8.89 (component non-free), fetched
#      through a private apt configuration and unpacked (dpkg -x) into the cache folder:
#      nothing is installed system-wide except the host compiler g++-11 (Debian main),
#      and no NVIDIA driver package is pulled in (apt would install libcuda1 535 as a
#      dependency, which could shadow the driver of a GPU machine). CUDA 11.8 compiles
#      for sm_35 (the paper's K40) up to sm_90 (H100/H200) and accepts g++ <= 11.
# An nvcc >= 13 on PATH is passed over (case 3 applies): CUDA 13 dropped sm_35..sm_70 and
# its headers need C++17, which this 2018 Caffe was never built with. NVCC= still forces it.
#   CAFFE_CUDA=13 replaces cases 2 and 3: NVIDIA's CUDA 13.0 wheels from PyPI, pinned
#      below, installed with `pip install --target` into the cache folder (the wheels put
#      one CUDA_HOME-like tree at nvidia/cu13: bin/nvcc, include/, lib/, nvvm/); setup
#      adds the unversioned .so links and targets/x86_64-linux/ that CMake's FindCUDA and
#      nvcc.profile look for. CUDA 13 compiles for sm_75 (T4) and newer only; the source
#      changes it needs are scripts/build/caffe-patches/cuda/*.patch (applied for CUDA >= 12).
#      13.0 because a binary built with it runs on every CUDA 13 driver (>= 580) and its
#      PTX can be compiled by them; a newer nvcc's PTX needs a newer driver.
CUDA_DEB_SUITE="bookworm"
CUDA_DEB_ID="11.8.89-deb12u1"   # the cache folder name of the unpacked toolkit
CUDA_DEB_PACKAGES=(            # pinned; nvidia-cuda-dev has the headers and .so links
  nvidia-cuda-toolkit=11.8.89~11.8.0-5~deb12u1 nvidia-cuda-dev=11.8.89~11.8.0-5~deb12u1
  libcudart11.0=11.8.89~11.8.0-5~deb12u1 libcublas11=11.11.3.6~11.8.0-5~deb12u1
  libcublaslt11=11.11.3.6~11.8.0-5~deb12u1 libcurand10=11.1.1+~10.3.0.86~11.8.0-5~deb12u1
  libthrust-dev=1.17.2-2 libcub-dev=1.17.2-2 libcu++-dev=1.8.1-2)
CUDA_PYPI_ID="13.0.88"          # the cache folder name of the CUDA 13 wheels (nvcc's version)
CUDA_PYPI_PACKAGES=(            # CUDA 13.0 update 2, pinned; --no-deps, so this is all of it
  nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
  nvidia-cublas==13.1.0.3 nvidia-curand==10.4.0.35)
CAFFE_CUDA="${CAFFE_CUDA:-11}"
case "$CAFFE_CUDA" in 11|13) ;; *) die "CAFFE_CUDA=$CAFFE_CUDA: expected 11 (Debian's CUDA 11.8) or 13 (NVIDIA's CUDA 13.0 wheels from PyPI); for another toolkit set NVCC= or CUDA_HOME=" ;; esac
CUDA_ROUTE=""
if [ "$CAFFE_GPU" = 1 ] || [ "${SETUP_CUDA_TOOLKIT_ONLY:-0}" = 1 ]; then
  if [ -n "${NVCC:-}" ]; then CUDA_ROUTE="NVCC"
  elif [ -n "${CUDA_HOME:-}" ]; then NVCC="$CUDA_HOME/bin/nvcc"; CUDA_ROUTE="CUDA_HOME"
  elif [ "$CAFFE_CUDA" = 13 ]; then CUDA_ROUTE="pypi"
  elif p=$(command -v nvcc) && v=$("$p" --version 2>/dev/null | grep -oE 'release [0-9]+' | grep -oE '[0-9]+') \
       && [ "$v" -ge 11 ] && [ "$v" -le 12 ]; then NVCC="$p"; CUDA_ROUTE="PATH"
  else
    CUDA_ROUTE="debian"
    command -v nvcc >/dev/null && say "passing over $(command -v nvcc) (CUDA ${v:-?}: only CUDA 11/12 are used from PATH; set NVCC= to force it)"
  fi
  if [ "$CUDA_ROUTE" != debian ] && [ "$CUDA_ROUTE" != pypi ]; then
    [ -x "$NVCC" ] || die "CAFFE_GPU=1: the CUDA compiler nvcc was not found at '$NVCC' (from $CUDA_ROUTE). Install the CUDA toolkit and set NVCC=/path/to/nvcc, or unset NVCC and CUDA_HOME to let setup fetch Debian's CUDA 11.8 toolkit."
  fi
fi

# ---------------------------------------------------------------- 1. apt packages
# patchelf: scripts/build/gpu_bundle.py sets the bundle's library paths with it.
APT_PACKAGES=(build-essential cmake libboost-system-dev libboost-thread-dev
  libboost-filesystem-dev libboost-python-dev libprotobuf-dev protobuf-compiler
  libgoogle-glog-dev libgflags-dev libhdf5-dev libopenblas-dev graphviz
  dpkg-dev xz-utils libopenblas0-openmp patchelf)
[ "$CUDA_ROUTE" != debian ] || APT_PACKAGES+=(g++-11)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  command -v apt-get >/dev/null || die "apt-get not found. Install these packages with your system's package manager: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "missing system packages: ${missing[*]}. Run as root:  sudo sh -c '$cmd'  then run make setup again."
  say "installing system packages: ${missing[*]}"
  ta=$(date +%s)
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  say "system packages installed in $(( $(date +%s) - ta )) s"
fi

debian_mirror() {  # the mirror the machine already uses: first Debian URI of its apt sources
  local mirror
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE '(https?|file)://[^ ]*/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
  mirror="${DEBIAN_MIRROR:-$mirror}"
  [ -n "$mirror" ] || die "could not find a Debian mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR=<your Debian mirror URL>"
  echo "${mirror%/}"
}

install_debian_cuda() {  # prints the toolkit folder: bin/nvcc, include/, lib64/ (CUDA_HOME layout)
  local tk="$CACHE_ROOT/cuda-$CUDA_DEB_ID"
  if [ ! -x "$tk/bin/nvcc" ]; then
    local apt_dir="$CACHE_ROOT/apt-cuda" tmp="$CACHE_ROOT/tmp-caffe-toolkit-$$" f
    mkdir -p "$CACHE_ROOT" && remove_dead_builds >&2
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$tmp/dl" "$tmp/root"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) $CUDA_DEB_SUITE main contrib non-free" > "$apt_dir/sources.list"
    local APT=(apt-get -q -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
    say "fetching Debian's CUDA toolkit 11.8.89 ($CUDA_DEB_SUITE non-free, ~1.1 GB) with a private apt configuration" >&2
    "${APT[@]}" update >/dev/null 2>"$apt_dir/update.err" || { cat "$apt_dir/update.err" >&2; rm -rf "$tmp"; die "apt-get update of the private $CUDA_DEB_SUITE non-free list failed"; }
    (cd "$tmp/dl" && "${APT[@]}" download "${CUDA_DEB_PACKAGES[@]}" >/dev/null 2>"$apt_dir/download.err") \
      || { cat "$apt_dir/update.err" "$apt_dir/download.err" >&2; rm -rf "$tmp"
           die "apt-get download of the pinned CUDA 11.8 packages from $(debian_mirror) ($CUDA_DEB_SUITE main contrib non-free) failed (see above). Set DEBIAN_MIRROR to a reachable Debian mirror, or install a CUDA toolkit and set NVCC. Pinned: ${CUDA_DEB_PACKAGES[*]}"; }
    say "unpacking the CUDA toolkit into $tk" >&2
    for f in "$tmp"/dl/*.deb; do dpkg -x "$f" "$tmp/root"; done
    # Static libraries (2.7 GB) are never linked: Caffe links the shared cudart/cuBLAS/cuRAND.
    find "$tmp/root" -name '*.a' -delete
    rm -rf "$tmp/dl" "$tmp/root/usr/share/doc"
    # A CUDA_HOME-style tree for CMake's FindCUDA, and nvcc's profile pointing into it
    # (Debian's profile, /etc/nvcc.profile, names the system paths /usr/...).
    mkdir -p "$tmp/bin"
    ln -s root/usr/include "$tmp/include"
    ln -s root/usr/lib/x86_64-linux-gnu "$tmp/lib64"
    for f in "$tmp"/root/usr/bin/*; do ln -s "../root/usr/bin/${f##*/}" "$tmp/bin/${f##*/}"; done
    ln -sfn ../root/usr/lib/nvidia-cuda-toolkit/bin/nvcc "$tmp/bin/nvcc"   # not Debian's wrapper
    # nvcc reads nvcc.profile beside the path it was called by: both bin folders get one.
    local r="$tk/root/usr"
    rm -f "$tmp/root/usr/lib/nvidia-cuda-toolkit/bin/nvcc.profile"
    cat > "$tmp/bin/nvcc.profile" <<EOF
NVVMIR_LIBRARY_DIR = $r/lib/nvidia-cuda-toolkit/libdevice
PATH += $r/lib/nvidia-cuda-toolkit/bin:$r/bin:
INCLUDES += "-I$r/include" \$(_SPACE_)
LIBRARIES =+ \$(_SPACE_) "-L$r/lib/x86_64-linux-gnu"
EOF
    cp "$tmp/bin/nvcc.profile" "$tmp/root/usr/lib/nvidia-cuda-toolkit/bin/nvcc.profile"
    if [ -x "$tk/bin/nvcc" ]; then rm -rf "$tmp"; else rm -rf "$tk"; mv "$tmp" "$tk"; fi
    # Smoke test before the long build: one kernel for the oldest and newest targets.
    mkdir -p "$tk/smoke"
    printf '__global__ void k(float* x) { x[threadIdx.x] *= 2; }\n' > "$tk/smoke/k.cu"
    "$tk/bin/nvcc" -ccbin "${CUDA_HOST_CXX:-g++-11}" -Wno-deprecated-gpu-targets -gencode arch=compute_35,code=sm_35 \
        -gencode arch=compute_90,code=sm_90 -c "$tk/smoke/k.cu" -o "$tk/smoke/k.o" >&2 \
      || { rm -rf "$tk"; die "the unpacked CUDA 11.8 toolkit cannot compile a kernel (see above); removed $tk"; }
  fi
  echo "$tk"
}

install_pypi_cuda() {  # prints the toolkit folder (CUDA_HOME layout) of the pinned CUDA 13 wheels
  local top="$CACHE_ROOT/cuda-pypi-$CUDA_PYPI_ID" tk f
  tk="$top/site/nvidia/cu13"
  if [ ! -x "$tk/bin/nvcc" ] || [ ! -e "$top/READY" ]; then
    local tmp="$CACHE_ROOT/tmp-caffe-toolkit-$$"
    mkdir -p "$CACHE_ROOT" && remove_dead_builds >&2
    rm -rf "$tmp" && mkdir -p "$tmp"
    say "fetching NVIDIA's CUDA $CUDA_PYPI_ID wheels from PyPI (~0.8 GB): ${CUDA_PYPI_PACKAGES[*]}" >&2
    "$PYTHON" -m pip install -q --disable-pip-version-check --no-deps --target "$tmp/site" \
        "${CUDA_PYPI_PACKAGES[@]}" >&2 \
      || { rm -rf "$tmp"; die "pip install of the pinned CUDA 13 wheels failed (see above). They come from PyPI: check that pip reaches it, or install a CUDA toolkit and set CUDA_HOME. Pinned: ${CUDA_PYPI_PACKAGES[*]}"; }
    local t="$tmp/site/nvidia/cu13"
    [ -x "$t/bin/nvcc" ] || { rm -rf "$tmp"; die "the CUDA wheels have no nvidia/cu13/bin/nvcc: their layout changed; set CUDA_HOME to a CUDA 13 toolkit instead"; }
    # What a toolkit installer adds and wheels cannot carry: links without the soname's
    # version (the linker and FindCUDA look for libcublas.so), lib64, and the target folder
    # that nvcc.profile names (targets/x86_64-linux/{include,lib}).
    for f in "$t"/lib/lib*.so.*; do
      [ -e "${f%%.so.*}.so" ] || ln -s "${f##*/}" "${f%%.so.*}.so"
    done
    ln -sfn lib "$t/lib64"
    mkdir -p "$t/targets/x86_64-linux"
    ln -sfn ../../include "$t/targets/x86_64-linux/include"
    ln -sfn ../../lib "$t/targets/x86_64-linux/lib"
    rm -rf "$top" && mv "$tmp" "$top"
    mkdir -p "$top/smoke"
    printf '__global__ void k(float* x) { x[threadIdx.x] *= 2; }\n' > "$top/smoke/k.cu"
    "$tk/bin/nvcc" -gencode arch=compute_90,code=sm_90 -c "$top/smoke/k.cu" -o "$top/smoke/k.o" >&2 \
      || { rm -rf "$top"; die "the CUDA 13 wheels cannot compile a kernel (see above); removed $top"; }
    touch "$top/READY"
  fi
  echo "$tk"
}

# ---------------------------------------------------------------- 2. build flags
[ -x "$(command -v "$PYTHON")" ] || die "Python interpreter '$PYTHON' not found; set PYTHON=/path/to/python3.11"
PY_VER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "${SETUP_CUDA_TOOLKIT_ONLY:-0}" = 1 ]; then
  case "$CUDA_ROUTE" in
    debian) install_debian_cuda ;;
    pypi) install_pypi_cuda ;;
    *) cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd ;;
  esac
  exit 0
fi
FLAGS=(-DCMAKE_BUILD_TYPE=Release -DUSE_OPENCV=OFF -DUSE_LMDB=OFF -DUSE_LEVELDB=OFF
  -DBLAS=Open -Dpython_version=3 -DBUILD_python=ON -DBUILD_python_layer=ON
  -DBUILD_docs=OFF -DBUILD_matlab=OFF)
CAFFE_CXXFLAGS="${CAFFE_CXXFLAGS--march=native}"
[ -z "$CAFFE_CXXFLAGS" ] || FLAGS+=("-DCMAKE_CXX_FLAGS=$CAFFE_CXXFLAGS")
# -march=native means "this CPU", so what it expands to goes into the cache hash too: every
# instruction-set flag and cache parameter gcc passes to its compiler proper. The -march=
# name alone is not enough: gcc 12 calls an AVX-512 Zen 4 "znver3", like a Zen 3 without
# AVX-512, and a build of the first would die of an illegal instruction on the second.
cpu_identity() {
  echo | gcc -march=native -E -v - 2>&1 | grep -m1 -- '/cc1 ' \
    | grep -oE -- '-march=[^ ]+|-mtune=[^ ]+|-m(no-)?[a-z0-9.]+|--param [a-z0-9-]+=[0-9]+' | tr '\n' ' '
}
CPU_ARCH=""
case "$CAFFE_CXXFLAGS" in *native*)
  CPU_ARCH=$(cpu_identity || true)
  [ -n "$CPU_ARCH" ] || die "CAFFE_CXXFLAGS has -march=native, but 'gcc -march=native -E -v' printed no target flags to tell this CPU's builds apart; set CAFFE_CXXFLAGS=\"\" for a portable build" ;; esac
if [ "$CAFFE_GPU" = 1 ]; then
  CUDA_HOST_CXX="${CUDA_HOST_CXX:-}"
  if [ "$CUDA_ROUTE" = debian ]; then
    CUDA_ROOT=$(install_debian_cuda)
    NVCC="$CUDA_ROOT/bin/nvcc"
    CUDA_HOST_CXX="${CUDA_HOST_CXX:-g++-11}"   # CUDA 11.8 refuses g++ 12 (Debian 12's default)
  elif [ "$CUDA_ROUTE" = pypi ]; then
    CUDA_ROOT=$(install_pypi_cuda)
    NVCC="$CUDA_ROOT/bin/nvcc"
  else
    CUDA_ROOT=$(cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd)
  fi
  NVCC_VERSION=$("$NVCC" --version 2>&1 | grep -oE 'release [0-9.]+, V[0-9.]+' || true)
  [ -n "$NVCC_VERSION" ] || die "'$NVCC --version' does not run or prints no CUDA release; check NVCC / CUDA_HOME"
  # The architectures: the K40 (sm_35, the paper's GPU), P100 60, V100 70, T4/RTX 20xx 75,
  # A100 80, RTX 30xx/A10 86, H100/H200 90, plus PTX of 90 that newer GPUs compile at load.
  # Those the toolkit cannot target (e.g. 35 from CUDA 12 on) are left out of the default.
  # A venv already on a CUDA build keeps that build's architectures when CUDA_ARCH_BIN is
  # not given: re-running setup (e.g. `make test` after this script changed) must find
  # the cached build, not start a build for the default list.
  OLD_FLAGS="$VENV/caffe-prefix/BUILD_FLAGS"
  if [ -z "${CUDA_ARCH_BIN:-}" ] && grep -qs -- '-DCPU_ONLY=OFF' "$OLD_FLAGS"; then
    CUDA_ARCH_BIN=$(sed -n 's/.*-DCUDA_ARCH_BIN=\([0-9 ]*\) -D.*/\1/p' "$OLD_FLAGS")
    CUDA_ARCH_PTX="${CUDA_ARCH_PTX-$(sed -n 's/.*-DCUDA_ARCH_PTX=\([0-9 ]*\) -D.*/\1/p' "$OLD_FLAGS")}"
    [ -z "$CUDA_ARCH_BIN" ] || say "keeping the architectures of the CUDA build $VENV uses: CUDA_ARCH_BIN=\"$CUDA_ARCH_BIN\" (set CUDA_ARCH_BIN to change them)"
  fi
  SUPPORTED=$("$NVCC" --list-gpu-code 2>/dev/null | grep -oE '^sm_[0-9]+$' | sed 's/sm_//' | tr '\n' ' ' || true)
  case "${CUDA_ARCH_BIN:-}" in
    "")
      CUDA_ARCH_BIN=""
      for a in 35 60 70 75 80 86 90; do
        [ -z "$SUPPORTED" ] || [[ " $SUPPORTED " == *" $a "* ]] && CUDA_ARCH_BIN="${CUDA_ARCH_BIN:+$CUDA_ARCH_BIN }$a"
      done
      CUDA_ARCH_PTX="${CUDA_ARCH_PTX-90}" ;;
    auto)
      CUDA_ARCH_BIN=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d . | sort -u | tr '\n' ' ' | sed 's/ *$//' || true)
      [ -n "$CUDA_ARCH_BIN" ] || die "CUDA_ARCH_BIN=auto: nvidia-smi found no GPU to ask; set CUDA_ARCH_BIN, e.g. CUDA_ARCH_BIN=90 for an H100/H200, 80 for an A100, or leave it unset for the default list."
      CUDA_ARCH_PTX="${CUDA_ARCH_PTX-}" ;;
    *) CUDA_ARCH_PTX="${CUDA_ARCH_PTX-}" ;;
  esac
  for a in $CUDA_ARCH_BIN $CUDA_ARCH_PTX; do
    [[ "$a" =~ ^[0-9]+$ ]] || die "CUDA_ARCH_BIN / CUDA_ARCH_PTX: '$a' is not a compute capability like 90 (no dots, space-separated)"
    [ -z "$SUPPORTED" ] || [[ " $SUPPORTED " == *" $a "* ]] \
      || die "CUDA_ARCH_BIN / CUDA_ARCH_PTX: $NVCC ($NVCC_VERSION) cannot compile for sm_$a; it supports: $SUPPORTED"
  done
  [ -n "$CUDA_ARCH_BIN" ] || die "no CUDA architecture left to build for; set CUDA_ARCH_BIN"
  # BVLC Caffe predates the cuDNN 8 API, so cuDNN stays off.
  FLAGS+=(-DCPU_ONLY=OFF -DUSE_CUDNN=OFF -DUSE_NCCL=OFF -DCUDA_ARCH_NAME=Manual
    "-DCUDA_ARCH_BIN=$CUDA_ARCH_BIN" "-DCUDA_ARCH_PTX=$CUDA_ARCH_PTX"
    "-DCUDA_TOOLKIT_ROOT_DIR=$CUDA_ROOT" "-DCUDA_NVCC_EXECUTABLE=$NVCC"
    -DCUDA_USE_STATIC_CUDA_RUNTIME=OFF -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=ON)
  [ -z "$CUDA_HOST_CXX" ] || FLAGS+=("-DCUDA_HOST_COMPILER=$(command -v "$CUDA_HOST_CXX" || echo "$CUDA_HOST_CXX")")
  say "CUDA: $NVCC ($NVCC_VERSION, from $CUDA_ROUTE), host compiler ${CUDA_HOST_CXX:-cmake default}, sm: $CUDA_ARCH_BIN, PTX: ${CUDA_ARCH_PTX:-none}"
  VARIANT=cuda
else
  FLAGS+=(-DCPU_ONLY=ON)
  VARIANT=cpu
  if [ "$CAFFE_CPU_PATCHES" = 1 ]; then
    # The speed patches run Caffe's per-image loops on OpenMP threads, and each thread's
    # GEMM must then be single-threaded: OpenBLAS's OpenMP build (libopenblas0-openmp) does
    # that inside a parallel region, its pthreads build (the system default, left as it
    # is) would start its own threads from every one of them. So libcaffe links the
    # OpenMP build by its path.
    OMP_BLAS=$(dpkg -L libopenblas0-openmp 2>/dev/null | grep -m1 '/openblas-openmp/libopenblas\.so\.0$' || true)
    [ -n "$OMP_BLAS" ] || die "libopenblas0-openmp's libopenblas.so.0 not found (dpkg -L libopenblas0-openmp); install that package or set CAFFE_CPU_PATCHES=0"
    FLAGS+=(-DUSE_OPENMP=ON "-DOpenBLAS_LIB=$OMP_BLAS")
  fi
fi
# The hash covers the flags, the interpreter (pycaffe is compiled against its headers and
# numpy) and this script's source patches, so any of them changing means a new build.
NUMPY_PIN=$(grep -E '^numpy==' requirements.txt | cut -d' ' -f1)
# The CUDA variant's hash also covers the nvcc release and the CUDA-only patches (left out
# of the CPU hash, so that editing them never rebuilds the CPU variant).
# CUDA 12 and newer also get scripts/build/caffe-patches/cuda/*.patch (in the hash only then, so
# the 11.8 build keeps its name).
CUDA_HASH_EXTRA=()
CUDA_MAJOR=""
if [ "$VARIANT" = cuda ]; then
  CUDA_MAJOR=$(echo "$NVCC_VERSION" | sed -n 's/^release \([0-9]*\)\..*/\1/p')
  CUDA_HASH_EXTRA=("$NVCC_VERSION" "$(sed -n '/^patch_caffe_cuda()/,/^}/p' "$0")")
  [ "${CUDA_MAJOR:-0}" -lt 12 ] || CUDA_HASH_EXTRA+=("$(cat "$HERE"/scripts/build/caffe-patches/cuda/*.patch)")
fi
# The patched CPU variant's hash also covers the speed patches (left out when they are
# off, so the unpatched build keeps the name it always had).
CPU_PATCH_HASH_EXTRA=()
[ "$VARIANT" != cpu ] || [ "$CAFFE_CPU_PATCHES" != 1 ] \
  || CPU_PATCH_HASH_EXTRA=("$(sed -n '/^patch_caffe_cpu_speed()/,/^}/p' "$0")" "$(cat "$HERE"/scripts/build/caffe-patches/*.patch)")
FLAG_HASH=$(printf '%s\n' "${FLAGS[@]}" "py$PY_VER" "$NUMPY_PIN" "${CPU_ARCH:-}" "$(sed -n '/^patch_caffe_source()/,/^}/p' "$0")" "${CUDA_HASH_EXTRA[@]}" "${CPU_PATCH_HASH_EXTRA[@]}" | sha256sum | cut -c1-10)
PREFIX="$CACHE_ROOT/caffe-$CAFFE_DEB_VERSION-$VARIANT-$FLAG_HASH"
if [ "${SETUP_PRINT_PREFIX:-0}" = 1 ]; then echo "$PREFIX"; exit 0; fi

patch_caffe_source() {  # $1 = unpacked source tree
  local src="$1" p
  # Debian's build patches, in their order (debian/patches/series).
  while read -r p; do
    [ -z "$p" ] || [ "${p#\#}" != "$p" ] && continue
    patch -d "$src" -p1 -s -N < "$src/debian/patches/$p"
  done < "$src/debian/patches/series"
  # protobuf >= 3.21 only has the one-argument CodedInputStream::SetTotalBytesLimit.
  sed -i 's/SetTotalBytesLimit(\([^,()]*\), *[0-9]*)/SetTotalBytesLimit(\1)/' "$src/src/caffe/util/io.cpp"
  grep -q 'SetTotalBytesLimit(kProtoReadBytesLimit)' "$src/src/caffe/util/io.cpp" \
    || die "patching SetTotalBytesLimit in src/caffe/util/io.cpp failed"
}

patch_caffe_cpu_speed() {  # $1 = unpacked source tree; the CPU variant, CAFFE_CPU_PATCHES=1
  # scripts/build/caffe-patches/*.patch in name order; each one says what it changes and why.
  local src="$1" p
  for p in "$HERE"/scripts/build/caffe-patches/*.patch; do
    patch -d "$src" -p1 -s -N < "$p" || die "applying $p to Caffe's source failed"
  done
}

patch_caffe_cuda() {  # $1 = unpacked source tree; the CUDA variant only
  local src="$1"
  # Without a usable GPU, Caffe's CUDA build stops in a CUDA_CHECK (a glog CHECK: SIGABRT
  # and a stack trace) in `caffe ... -gpu N` and in pycaffe's set_device/set_mode_gpu.
  # These two additions turn that into a message and exit status 1 / a RuntimeError.
  # 1. tools/caffe.cpp, at the top of get_gpus() (every -gpu flag goes through it).
  cat > "$src/gpu_guard.inc" <<'EOF'
  // lstm-cnn-fasd: no usable GPU is a one-line error and exit 1, not a CUDA_CHECK abort.
  if (FLAGS_gpu.size()) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    std::string why = e != cudaSuccess ? cudaGetErrorString(e) : "0 CUDA devices";
    vector<string> ids;
    boost::split(ids, FLAGS_gpu, boost::is_any_of(","));
    for (int i = 0; e == cudaSuccess && n > 0 && i < ids.size(); ++i)
      if (ids[i] != "all" && boost::lexical_cast<int>(ids[i]) >= n)
        why = "GPU " + ids[i] + " requested, " + boost::lexical_cast<string>(n) + " present";
    if (e != cudaSuccess || n == 0 || why.find("requested") != string::npos) {
      std::cerr << "caffe: -gpu " << FLAGS_gpu << ": no usable CUDA GPU (" << why << ")" << std::endl;
      exit(1);
    }
  }
EOF
  sed -i '/^static void get_gpus(vector<int>\* gpus) {$/r '"$src/gpu_guard.inc" "$src/tools/caffe.cpp"
  grep -q 'lstm-cnn-fasd: no usable GPU' "$src/tools/caffe.cpp" || die "patching get_gpus in tools/caffe.cpp failed"
  # 2. pycaffe: set_device and set_mode_gpu ask the CUDA runtime (already loaded with
  # libcaffe) how many GPUs there are before calling into Caffe.
  cat >> "$src/python/caffe/__init__.py" <<'EOF'


# lstm-cnn-fasd (CUDA build): without a usable GPU, set_device/set_mode_gpu raise a
# RuntimeError that says why, instead of Caffe's CUDA_CHECK aborting the interpreter.
from . import _caffe


def gpu_count():
    """(number of CUDA GPUs, the CUDA runtime's message) without touching Caffe."""
    import ctypes
    lib = None
    with open("/proc/self/maps") as maps:
        for line in maps:
            if "/libcudart.so" in line:
                lib = line.split()[-1]
                break
    if lib is None:
        return 0, "libcudart is not loaded: this pycaffe is not a CUDA build"
    rt = ctypes.CDLL(lib)
    rt.cudaGetErrorString.restype = ctypes.c_char_p
    n = ctypes.c_int(0)
    err = rt.cudaGetDeviceCount(ctypes.byref(n))
    if err != 0:
        return 0, rt.cudaGetErrorString(err).decode()
    return n.value, "%d CUDA device(s)" % n.value


def _require_gpu(device_id=0):
    n, why = gpu_count()
    if n == 0 or not 0 <= int(device_id) < n:
        raise RuntimeError("no usable CUDA GPU %d (%s); run on a machine with an NVIDIA GPU "
                           "and driver, or use set_mode_cpu()" % (int(device_id), why))


def set_device(device_id):
    _require_gpu(device_id)
    _caffe.set_device(device_id)


def set_mode_gpu():
    _require_gpu(0)
    _caffe.set_mode_gpu()
EOF
  grep -q '^def _require_gpu' "$src/python/caffe/__init__.py" || die "patching python/caffe/__init__.py failed"
}

fetch_caffe_source() {  # $1 = destination folder of the unpacked tree
  local dest="$1" apt_dir="$CACHE_ROOT/apt" mirror
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/dl"
  mirror=$(debian_mirror)
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb-src [signed-by=$keyring] $mirror $CAFFE_DEB_SUITE main" > "$apt_dir/sources.list"
  local APT=(apt-get -q -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
  say "fetching Debian source package caffe=$CAFFE_DEB_VERSION ($CAFFE_DEB_SUITE) with a private apt configuration"
  if ! ls "$apt_dir/dl"/caffe_*.orig.tar.gz >/dev/null 2>&1; then
    "${APT[@]}" update >/dev/null 2>"$apt_dir/update.err" || { cat "$apt_dir/update.err" >&2; die "apt-get update of the private $CAFFE_DEB_SUITE deb-src list failed"; }
    (cd "$apt_dir/dl" && "${APT[@]}" source --download-only "caffe=$CAFFE_DEB_VERSION" >/dev/null 2>"$apt_dir/source.err") || {
      cat "$apt_dir/source.err" >&2
      die "apt-get source caffe=$CAFFE_DEB_VERSION failed. Debian $CAFFE_DEB_SUITE may have moved to Debian's archive: set DEBIAN_MIRROR to an archive mirror and rerun."; }
  fi
  rm -rf "$dest" && mkdir -p "$dest"
  tar -xzf "$apt_dir"/dl/caffe_*.orig.tar.gz -C "$dest"
  tar -xJf "$apt_dir"/dl/caffe_*.debian.tar.xz -C "$dest"
}

# ---------------------------------------------------------------- 3. build Caffe
mkdir -p "$CACHE_ROOT"
remove_dead_builds
if [ ! -x "$PREFIX/bin/caffe" ]; then
  WORK="$CACHE_ROOT/tmp-caffe-$VARIANT-$FLAG_HASH-$$"
  mkdir -p "$WORK"
  tb=$(date +%s)
  fetch_caffe_source "$WORK/src"
  patch_caffe_source "$WORK/src"
  [ "$VARIANT" != cuda ] || patch_caffe_cuda "$WORK/src"
  if [ "$VARIANT" = cuda ] && [ "${CUDA_MAJOR:-0}" -ge 12 ]; then
    for p in "$HERE"/scripts/build/caffe-patches/cuda/*.patch; do  # each one says why
      patch -d "$WORK/src" -p1 -s -N < "$p" || die "applying $p to Caffe's source failed"
    done
  fi
  [ "$VARIANT" != cpu ] || [ "$CAFFE_CPU_PATCHES" != 1 ] || patch_caffe_cpu_speed "$WORK/src"
  PYINC=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  # numpy's headers: from the pinned numpy, installed into a throwaway folder.
  "$PYTHON" -m pip install -q --no-deps --target "$WORK/numpy" "$NUMPY_PIN"
  NPINC=$(PYTHONPATH="$WORK/numpy" "$PYTHON" -c 'import numpy; print(numpy.get_include())')
  say "building Caffe ($VARIANT, $JOBS jobs) in $WORK; the log is $WORK/build.log"
  mkdir -p "$WORK/build"
  (cd "$WORK/build" && cmake "$WORK/src" "${FLAGS[@]}" -DCMAKE_INSTALL_PREFIX="$PREFIX" \
      -DPYTHON_EXECUTABLE="$(command -v "$PYTHON")" -DPYTHON_INCLUDE_DIR="$PYINC" \
      -DNUMPY_INCLUDE_DIR="$NPINC" -DPython_NumPy_INCLUDE_DIR="$NPINC" > "$WORK/build.log" 2>&1 \
    && PYTHONPATH="$WORK/numpy" make -j"$JOBS" >> "$WORK/build.log" 2>&1 \
    && make install DESTDIR="$WORK/stage" >> "$WORK/build.log" 2>&1) \
    || { tail -40 "$WORK/build.log" >&2; die "Caffe build failed; full log: $WORK/build.log"; }
  # Keep Caffe's python sources (unit tests included) next to the install, then publish.
  # The staging name carries this process id too: two checkouts building the same flags at
  # once never write into one folder; the first to finish publishes, the other is dropped.
  PART="$PREFIX.partial-$$"
  mv "$WORK/stage$PREFIX" "$PART"
  # pycaffe's unit tests, with the models/ and examples/ prototxts that test_draw reads.
  mkdir -p "$PART/share/caffe/source/python/caffe"
  cp -r "$WORK/src/python/caffe/test" "$PART/share/caffe/source/python/caffe/"
  cp -r "$WORK/src/models" "$WORK/src/examples" "$PART/share/caffe/source/"
  echo "$CAFFE_DEB_VERSION ${FLAGS[*]}" > "$PART/BUILD_FLAGS"
  if [ -x "$PREFIX/bin/caffe" ]; then
    rm -rf "$PART"
  else
    rm -rf "$PREFIX"
    mv "$PART" "$PREFIX"
  fi
  rm -rf "$WORK"
  say "Caffe built and installed in $(( $(date +%s) - tb )) s: $PREFIX"
fi
PYCAFFE_DIR="$PREFIX/lib/python3/dist-packages"
[ -f "$PYCAFFE_DIR/caffe/__init__.py" ] || die "pycaffe missing from the Caffe build at $PREFIX; delete that folder and rerun make setup"
if [ "${SETUP_BUILD_ONLY:-0}" = 1 ]; then
  echo "$PREFIX"
  exit 0
fi

# ---------------------------------------------------------------- 4. .venv
REQ_HASH=$(cat requirements.txt | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.requirements.sha" 2>/dev/null)" != "$REQ_HASH" ]; then
  tv=$(date +%s)
  say "installing the pinned Python packages of requirements.txt"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$REQ_HASH" > "$VENV/.requirements.sha"
  rm -f "$VENV/.caffe-verified"
  say "Python packages installed in $(( $(date +%s) - tv )) s"
fi
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PYCAFFE_DIR" > "$SITE/caffe_build.pth.tmp" && mv "$SITE/caffe_build.pth.tmp" "$SITE/caffe_build.pth"
# .venv/bin/caffe: Caffe's own command-line tool, started with PYTHONPATH set so that its
# embedded Python finds the nets' data layer (prototxt/data_layer.py, a Python layer),
# pycaffe and the venv's packages (numpy, h5py).
rm -f "$VENV/bin/caffe"
cat > "$VENV/bin/caffe.tmp" <<EOF_CAFFE
#!/bin/sh
# Written by scripts/build/setup.sh: Caffe's caffe tool with this checkout's Python layers importable.
PYTHONPATH="$HERE:$PYCAFFE_DIR:$SITE\${PYTHONPATH:+:\$PYTHONPATH}" exec "$PREFIX/bin/caffe" "\$@"
EOF_CAFFE
chmod +x "$VENV/bin/caffe.tmp" && mv "$VENV/bin/caffe.tmp" "$VENV/bin/caffe"
ln -sfn "$PREFIX" "$VENV/caffe-prefix"

# ---------------------------------------------------------------- 5. verify
"$VENV/bin/caffe" --version >/dev/null 2>&1 || "$VENV/bin/caffe" --version
(cd / && "$VENV/bin/python" - <<'EOF') || die "pycaffe check failed (see above)"
import caffe
need = {"LSTM", "HDF5Data", "Python"}
have = set(caffe.layer_type_list())
missing = need - have
assert not missing, "Caffe lacks layers: %s" % sorted(missing)
EOF
STAMP="$VENV/.caffe-verified"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$PREFIX" ]; then
  say "running pycaffe's own unit tests"
  # Caffe's python/caffe/test, kept beside the install (its install step leaves it out).
  out=$(cd "$PREFIX/share/caffe/source/python/caffe/test" && "$VENV/bin/python" -m unittest discover -s . 2>&1) \
    || { echo "$out" | tail -30 >&2; die "pycaffe unit tests failed"; }
  ran=$(echo "$out" | grep -oE '^Ran [0-9]+ tests' | grep -oE '[0-9]+')
  [ "${ran:-0}" -ge 52 ] || { echo "$out" | tail -30 >&2; die "expected 52 pycaffe unit tests, ran ${ran:-0}"; }
  say "pycaffe unit tests: $ran passed"
  echo "$PREFIX" > "$STAMP"
fi
say "ready in $(( $(date +%s) - t0 )) s: $("$VENV/bin/caffe" --version 2>&1 | head -1), pycaffe from $PYCAFFE_DIR"
