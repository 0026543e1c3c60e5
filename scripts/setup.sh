#!/usr/bin/env bash
# make setup: system packages, BVLC Caffe built from Debian's source package, .venv.
#
# Idempotent: every step checks a stamp and returns in a second when it is done.
#   1. apt packages the Caffe build needs (REFERENCE.md §3), installed only when missing.
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
#   CAFFE_GPU=1         build with CUDA (CPU_ONLY=OFF, USE_CUDNN=OFF); needs nvcc
#   CUDA_ARCH_BIN="90"  CUDA compute capability(ies); detected with nvidia-smi if unset
#   NVCC=path           the CUDA compiler (default: nvcc on PATH)
#   CAFFE_CACHE=dir     where builds are cached (default: $XDG_CACHE_HOME or ~/.cache,
#                       subfolder lstm-cnn-fasd)
#   PYTHON=python3      the interpreter the venv is made from
#   VENV=.venv          the virtual environment folder
#   JOBS=N              parallel compile jobs (default: number of cores)
#   CAFFE_CXXFLAGS="…"  extra C++ flags for the Caffe build (default "-march=native":
#                       ~9 % faster training measured by `make bench`; "" for a portable
#                       build, e.g. when the cache folder is shared by different CPUs)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$HERE"

CAFFE_DEB_VERSION="1.0.0+git20180821.99bd997-8"
CAFFE_DEB_SUITE="bullseye"   # Debian 11, the last release that shipped BVLC Caffe
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
case "$VENV" in /*) ;; *) VENV="$HERE/$VENV" ;; esac
JOBS="${JOBS:-$(nproc)}"
CAFFE_GPU="${CAFFE_GPU:-0}"
CACHE_ROOT="${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lstm-cnn-fasd}"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
t0=$(date +%s)

# ---------------------------------------------------------------- 1. apt packages
APT_PACKAGES=(build-essential cmake libboost-system-dev libboost-thread-dev
  libboost-filesystem-dev libboost-python-dev libprotobuf-dev protobuf-compiler
  libgoogle-glog-dev libgflags-dev libhdf5-dev libopenblas-dev graphviz
  dpkg-dev xz-utils)
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

# ---------------------------------------------------------------- 2. build flags
[ -x "$(command -v "$PYTHON")" ] || die "Python interpreter '$PYTHON' not found; set PYTHON=/path/to/python3.11"
PY_VER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
FLAGS=(-DCMAKE_BUILD_TYPE=Release -DUSE_OPENCV=OFF -DUSE_LMDB=OFF -DUSE_LEVELDB=OFF
  -DBLAS=Open -Dpython_version=3 -DBUILD_python=ON -DBUILD_python_layer=ON
  -DBUILD_docs=OFF -DBUILD_matlab=OFF)
CAFFE_CXXFLAGS="${CAFFE_CXXFLAGS--march=native}"
[ -z "$CAFFE_CXXFLAGS" ] || FLAGS+=("-DCMAKE_CXX_FLAGS=$CAFFE_CXXFLAGS")
# -march=native means "this CPU": the CPU's architecture name goes into the cache hash too.
CPU_ARCH=""
case "$CAFFE_CXXFLAGS" in *native*)
  CPU_ARCH=$(gcc -march=native -Q --help=target 2>/dev/null | awk '$1 == "-march=" && !a {a = $2} END {print a}' || true) ;; esac
if [ "$CAFFE_GPU" = 1 ]; then
  NVCC="${NVCC:-$(command -v nvcc || true)}"
  [ -n "$NVCC" ] && [ -x "$NVCC" ] || die "CAFFE_GPU=1 needs the CUDA compiler, but nvcc was not found (NVCC='${NVCC:-}'). Install the CUDA toolkit and put nvcc on PATH, or set NVCC=/path/to/nvcc."
  if [ -z "${CUDA_ARCH_BIN:-}" ]; then
    CUDA_ARCH_BIN=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d . | sort -u | tr '\n' ' ' | sed 's/ *$//' || true)
    [ -n "$CUDA_ARCH_BIN" ] || die "could not detect the GPU's compute capability with nvidia-smi; set CUDA_ARCH_BIN, e.g. CUDA_ARCH_BIN=90 for an H100/H200, 80 for an A100."
  fi
  # BVLC Caffe predates the cuDNN 8 API, so cuDNN stays off (REFERENCE.md §3).
  FLAGS+=(-DCPU_ONLY=OFF -DUSE_CUDNN=OFF -DUSE_NCCL=OFF -DCUDA_ARCH_NAME=Manual
    "-DCUDA_ARCH_BIN=$CUDA_ARCH_BIN" "-DCUDA_ARCH_PTX=" "-DCUDA_NVCC_EXECUTABLE=$NVCC")
  VARIANT=cuda
else
  FLAGS+=(-DCPU_ONLY=ON)
  VARIANT=cpu
fi
# The hash covers the flags, the interpreter (pycaffe is compiled against its headers and
# numpy) and this script's source patches, so any of them changing means a new build.
NUMPY_PIN=$(grep -E '^numpy==' requirements.txt | cut -d' ' -f1)
FLAG_HASH=$(printf '%s\n' "${FLAGS[@]}" "py$PY_VER" "$NUMPY_PIN" "${CPU_ARCH:-}" "$(sed -n '/^patch_caffe_source()/,/^}/p' "$0")" | sha256sum | cut -c1-10)
PREFIX="$CACHE_ROOT/caffe-$CAFFE_DEB_VERSION-$VARIANT-$FLAG_HASH"

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

fetch_caffe_source() {  # $1 = destination folder of the unpacked tree
  local dest="$1" apt_dir="$CACHE_ROOT/apt" mirror
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/dl"
  # The mirror the machine already uses: first Debian URI of its own apt sources.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE '(https?|file)://[^ ]*/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
  mirror="${DEBIAN_MIRROR:-$mirror}"
  [ -n "$mirror" ] || die "could not find a Debian mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR=<your Debian mirror URL>"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb-src [signed-by=$keyring] ${mirror%/} $CAFFE_DEB_SUITE main" > "$apt_dir/sources.list"
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
if [ ! -x "$PREFIX/bin/caffe" ]; then
  mkdir -p "$CACHE_ROOT"
  # A leftover temporary folder means an interrupted build: remove it, but only when the
  # build that made it is gone. Its name ends in that setup.sh's process id; a folder
  # whose process is still a running setup.sh is a concurrent build in another checkout
  # sharing this cache, and stays.
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
  WORK="$CACHE_ROOT/tmp-caffe-$VARIANT-$FLAG_HASH-$$"
  mkdir -p "$WORK"
  tb=$(date +%s)
  fetch_caffe_source "$WORK/src"
  patch_caffe_source "$WORK/src"
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
ln -sfn "$PREFIX/bin/caffe" "$VENV/bin/caffe"
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
