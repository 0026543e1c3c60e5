#!/bin/sh
# check.sh of a Caffe bundle made by scripts/build/gpu_bundle.py (`make gpu-bundle`): is this
# Caffe right on this machine, and how fast is it? POSIX sh; needs no Python, no compiler,
# no network. Run it from anywhere:
#
#   sh BUNDLE/check.sh [--gpu N] [--out DIR] [--quick] [--python-env DIR] [--cuda-libs DIRS]
#
#   --gpu N            the GPU to check (default 0)
#   --out DIR          report and logs (default ./caffe-check); DIR/report.txt has one line
#                      per check: name, verdict (pass / FAIL / no-GPU), figures
#   --quick            the 32x32 nets with small batches instead of the paper-size ones
#                      (128x128, batches 100 / 32): a rehearsal that takes seconds
#   --python-env DIR   a Python environment (venv or conda root, or its site-packages)
#                      whose nvidia-* pip wheels hold the CUDA runtime libraries; repeatable.
#                      $VIRTUAL_ENV and $CONDA_PREFIX are tried by themselves
#   --cuda-libs DIRS   folders (colon-separated) holding libcudart, libcublas, libcurand
#   CUDA_HOME          tried too (lib64/, lib/); then the system's library path
#
# The checks: the bundle's libraries all resolve (inside the bundle, which carries glibc
# too, and CUDA's from the places above); `caffe device_query`; for each net (CNN, LSTM-CNN
# with Caffe's LSTM, peephole LSTM-CNN), from the same initial weights and the same
# HDF5 batch: `caffe test` on the CPU and on the GPU (loss, accuracy), every blob and
# gradient of a forward + backward pass (bin/blob_compare), the updates after N SGD steps
# trained by `caffe train` on each, `caffe time` frames/s and a `caffe train` run's
# frames/s on each.
#
# Exit codes (the project's table, configs/errors.py): 0 every check ran on the GPU and
# passed; 1 a check failed; 2 bad command line or an incomplete bundle; 7 Caffe cannot
# load here (a library missing, a CPU without the instruction sets it was built for);
# 8 no usable GPU: the CPU parts ran and passed, the GPU parts were skipped.
EXIT_BACKEND=7 EXIT_NO_GPU=8
set -u
B=$(cd "$(dirname "$0")" && pwd -P)
OUT=./caffe-check
GPU=0
SET=paper
PYENVS="${VIRTUAL_ENV:-} ${CONDA_PREFIX:-}"
CUDA_DIRS=""

usage() { sed -n '6,17p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu) GPU="${2:?--gpu needs a number}"; shift 2 ;;
    --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
    --quick) SET=quick; shift ;;
    --python-env) PYENVS="$PYENVS ${2:?--python-env needs a folder}"; shift 2 ;;
    --cuda-libs) CUDA_DIRS="${CUDA_DIRS:+$CUDA_DIRS:}${2:?--cuda-libs needs folders}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "check.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$GPU" in ''|*[!0-9]*) echo "check.sh: --gpu '$GPU' is not a GPU number (0, 1, ...)" >&2; exit 2 ;; esac
[ -f "$B/BUNDLE_INFO" ] || { echo "check.sh: $B/BUNDLE_INFO is missing: unpack the whole bundle" >&2; exit 2; }
. "$B/BUNDLE_INFO"
. "$B/nets/$SET/set.info"
mkdir -p "$OUT/logs" || { echo "check.sh: cannot create $OUT" >&2; exit 2; }
OUT=$(cd "$OUT" && pwd)
REPORT="$OUT/report.txt"
: > "$REPORT.part"
FAILS=0
T0=$(date +%s)
export GLOG_logtostderr=1 GLOG_minloglevel=0

line() {  # name verdict figures...
  ln_name=$1 ln_verdict=$2; shift 2
  printf '%-20s %-7s %s\n' "$ln_name" "$ln_verdict" "$*" | tee -a "$REPORT.part"
  [ "$ln_verdict" != FAIL ] || FAILS=$((FAILS + 1))
}
finish() {  # exit code
  line total "$([ "$1" = 0 ] || [ "$1" = $EXIT_NO_GPU ] && echo pass || echo FAIL)" \
    "$(( $(date +%s) - T0 )) s, exit code $1 ($BUNDLE_NAME, $SET nets)"
  mv "$REPORT.part" "$REPORT"
  echo "check.sh: report: $REPORT"
  exit "$1"
}
num() {  # the number after the last match of $1 (an awk regex) in file $2
  awk -v re="$1" '{ if (match($0, re)) { s = substr($0, RSTART + RLENGTH); sub(/^[ =:]*/, "", s); split(s, a, /[ ,(]/); v = a[1] } } END { print v }' "$2"
}
reldiff() {  # |a - b| / |b|, and exit 0 when it is <= $3
  awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { if (a == "" || b == "") { print "nan"; exit 1 }
    d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; r = m > 0 ? d / m : d
    printf "%.2e", r; exit !(r <= t) }'
}
fps() {  # frames per second from $1 frames and $2 ms, or $2 iterations/s with $3 = iter
  awk -v f="$1" -v x="$2" -v k="${3:-ms}" 'BEGIN { if (x == "" || x <= 0) { print "?"; exit 1 }
    printf "%.1f", k == "iter" ? f * x : f * 1000 / x }'
}
caffe() { "$B/bin/caffe" "$@"; }

# ------------------------------------------------------------------ 1. the machine
cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
line machine pass "$(uname -n), $cores cores, $(uname -sr), $(date -u '+%Y-%m-%d %H:%M UTC'); bundle $BUNDLE_NAME (built $BUILT)"
# The CPU: the host code's instruction set (x86-64-v3 for a bundle of make gpu-bundle).
if [ -n "$CPU_FLAGS" ] && [ -r /proc/cpuinfo ]; then
  have_flags=" $(grep -m1 '^flags' /proc/cpuinfo | sed 's/^[^:]*://') "
  lack=""
  for f in $CPU_FLAGS; do case "$have_flags" in *" $f "*) ;; *) lack="$lack $f" ;; esac; done
  if [ -n "$lack" ]; then
    line cpu FAIL "this CPU lacks$lack, which the bundle's code was compiled for ($CPU_FLAGS): build the bundle with CAFFE_CXXFLAGS= (no -march)"
    finish $EXIT_BACKEND
  fi
  line cpu pass "has the instruction sets the bundle was compiled for ($CPU_FLAGS)"
fi
# glibc: the bundle carries its own and starts its binaries with its own loader
# (bin/caffe); BUNDLE_SYSTEM_LOADER=1 uses the machine's, which must be >= GLIBC_MIN.
have=$(getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>/dev/null | head -1)
have=$(echo "$have" | awk '{print $NF}')
if [ "${BUNDLE_SYSTEM_LOADER:-0}" = 1 ]; then
  if [ -n "$have" ] && awk -v h="$have" -v n="$GLIBC_MIN" 'BEGIN { split(h, a, "."); split(n, b, ".");
       exit !(a[1] < b[1] || (a[1] == b[1] && a[2] + 0 < b[2] + 0)) }'; then
    line glibc FAIL "BUNDLE_SYSTEM_LOADER=1: this machine has glibc $have, the bundle's binaries need $GLIBC_MIN; unset BUNDLE_SYSTEM_LOADER to use the bundle's glibc $GLIBC"
    finish $EXIT_BACKEND
  fi
  line glibc pass "the machine's glibc ${have:-unknown} (BUNDLE_SYSTEM_LOADER=1), the binaries need >= $GLIBC_MIN"
else
  line glibc pass "the bundle's glibc $GLIBC and loader (the machine has ${have:-unknown})"
fi

# The CUDA runtime libraries: pip wheels (nvidia/*/lib), --cuda-libs, CUDA_HOME.
for e in $PYENVS; do
  for d in "$e"/lib/python3*/site-packages/nvidia/*/lib "$e"/lib64/python3*/site-packages/nvidia/*/lib \
           "$e"/site-packages/nvidia/*/lib "$e"/nvidia/*/lib; do
    [ -d "$d" ] && CUDA_DIRS="${CUDA_DIRS:+$CUDA_DIRS:}$d"
  done
done
if [ -n "${CUDA_HOME:-}" ]; then
  for d in "$CUDA_HOME/lib64" "$CUDA_HOME/lib"; do [ -d "$d" ] && CUDA_DIRS="${CUDA_DIRS:+$CUDA_DIRS:}$d"; done
fi
# The driver's libcuda.so.1 (loaded by the CUDA runtime): where the machine's own ldconfig
# knows it, so that the bundle's loader finds it on any distribution's layout.
drv=$(ldconfig -p 2>/dev/null | awk '$1 == "libcuda.so.1" && /x86-64/ {print $NF; exit}')
[ -z "$drv" ] || CUDA_DIRS="${CUDA_DIRS:+$CUDA_DIRS:}${drv%/*}"
[ -z "$CUDA_DIRS" ] || export LD_LIBRARY_PATH="$CUDA_DIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# Every library of every binary: inside the bundle, or CUDA's from the places above.
if [ "${BUNDLE_SYSTEM_LOADER:-0}" = 1 ]; then
  LDD=$(command -v ldd || true)
  [ -n "$LDD" ] || { line libraries FAIL "BUNDLE_SYSTEM_LOADER=1 and no ldd on this machine"; finish $EXIT_BACKEND; }
  list() { "$LDD" "$1"; }
else
  # what ldd does, with the bundle's loader: it lists missing libraries as "not found"
  list() { LD_TRACE_LOADED_OBJECTS=1 "$B/lib/ld-linux-x86-64.so.2" --library-path "${LD_LIBRARY_PATH:-}" "$1"; }
fi
missing="" outside="" cuda_missing="" cuda_found="" n=0
for f in "$B"/libexec/* "$B"/lib/*; do
  # glibc's own files have no DT_RPATH: loaded by soname, they are the bundle's already
  case "${f##*/}" in ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|libutil.so*|libmvec.so*) continue ;; esac
  list "$f" > "$OUT/logs/ldd.txt" 2>&1 || { missing="$missing ${f##*/}:unreadable"; continue; }
  n=$((n + 1))
  while read -r name arrow path rest; do
    [ "$arrow" = "=>" ] || continue
    case "$name" in libcudart.so*|libcublas*.so*|libcurand.so*|libcuda.so*) cuda=1 ;; *) cuda=0 ;; esac
    if [ "$path" = not ]; then
      if [ $cuda = 1 ]; then cuda_missing="$cuda_missing $name"; else missing="$missing $name"; fi
    elif [ $cuda = 1 ]; then cuda_found="$cuda_found $name=>$path"
    else
      case "$path" in "$B"/lib/*|"$B"/libexec/../lib/*) ;; *) outside="$outside $name=>$path" ;; esac
    fi
  done < "$OUT/logs/ldd.txt"
done
dedup() { printf '%s\n' $1 | sort -u | tr '\n' ' '; }
if [ -n "$missing$outside" ]; then
  line libraries FAIL "$n files; not found: $(dedup "$missing"); outside the bundle: $(dedup "$outside")"
  finish $EXIT_BACKEND
fi
if [ -n "$cuda_missing" ]; then
  line libraries FAIL "CUDA libraries not found: $(dedup "$cuda_missing"). Pass --python-env DIR (an environment with the nvidia-cuda-runtime, nvidia-cublas and nvidia-curand wheels), --cuda-libs DIRS, or set CUDA_HOME"
  finish $EXIT_BACKEND
fi
line libraries pass "$n files, every library in the bundle's lib/${cuda_found:+, CUDA: $(dedup "$cuda_found")}"

# ------------------------------------------------------------------ 2. the GPU
GPU_OK=0
if [ "$VARIANT" = cpu ]; then
  WHY="a CPU-only bundle"
  line device_query no-GPU "$WHY"
elif caffe device_query -gpu "$GPU" > "$OUT/logs/device_query.txt" 2>&1; then
  GPU_OK=1
  q() { grep -m1 "$1" "$OUT/logs/device_query.txt" | sed 's/.*: *//'; }
  line device_query pass "GPU $GPU: $(q 'Name:'), sm_$(q 'Major revision')$(q 'Minor revision'), $(q 'Number of multiprocessors') SMs, $(q 'Total global memory') bytes"
else
  WHY=$(grep -m1 'no usable CUDA GPU' "$OUT/logs/device_query.txt" || tail -1 "$OUT/logs/device_query.txt")
  if grep -q 'no usable CUDA GPU' "$OUT/logs/device_query.txt"; then
    line device_query no-GPU "$WHY"
  else
    line device_query FAIL "caffe device_query -gpu $GPU: $WHY (log: $OUT/logs/device_query.txt)"
  fi
fi
G="-gpu $GPU"

# ------------------------------------------------------------------ 3. the nets
check_net() {  # model
  m=$1 src="$B/nets/$SET/$1" W="$OUT/work/$1"
  . "$src/net.info"
  rm -rf "$W" && mkdir -p "$W/cpu" "$W/gpu"
  for s in cpu gpu; do
    cp "$src"/*.prototxt "$W/$s/"
    printf '%s\n' "$B/nets/$SET/$DATA" > "$W/$s/data.txt"
  done
  L="$OUT/logs/$m"
  # Initial weights: Caffe's fillers, seeded, on the CPU; both sides start from them.
  if ! (cd "$W/cpu" && caffe train -solver solver_init.prototxt > "$L-init.txt" 2>&1); then
    line "init $m" FAIL "caffe train (max_iter 0) did not write the initial weights: $(tail -1 "$L-init.txt")"
    return
  fi
  INIT="$W/cpu/init_iter_0.caffemodel"
  check_forward
  check_blobs
  check_train
  check_time
  check_speed
  rm -f "$W"/*/*.caffemodel "$W"/*/*.solverstate
}

check_forward() {  # caffe test, one batch, on each side
  (cd "$W/cpu" && caffe test -model train_val.prototxt -weights "$INIT" -iterations 1) > "$L-test-cpu.txt" 2>&1 \
    || { line "forward $m" FAIL "caffe test on the CPU failed: $(tail -1 "$L-test-cpu.txt")"; return; }
  lc=$(num '[]] loss = ' "$L-test-cpu.txt") ac=$(num '[]] accuracy = ' "$L-test-cpu.txt")
  if [ $GPU_OK = 0 ]; then line "forward $m" no-GPU "caffe test, 1 batch of $BATCH: CPU loss $lc, accuracy $ac; GPU skipped"; return; fi
  (cd "$W/gpu" && caffe test -model train_val.prototxt -weights "$INIT" -iterations 1 $G) > "$L-test-gpu.txt" 2>&1 \
    || { line "forward $m" FAIL "caffe test on the GPU failed: $(tail -1 "$L-test-gpu.txt")"; return; }
  lg=$(num '[]] loss = ' "$L-test-gpu.txt") ag=$(num '[]] accuracy = ' "$L-test-gpu.txt")
  r=$(reldiff "$lg" "$lc" "$TOL_FB"); ok=$?
  # accuracy: at most one sample of the batch may fall on the other side of 0.5
  awk -v a="$ag" -v b="$ac" -v n="$BATCH" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d * n <= 1.0001) }' || ok=1
  line "forward $m" "$([ $ok = 0 ] && echo pass || echo FAIL)" "caffe test, 1 batch of $BATCH: loss CPU $lc GPU $lg (rel diff $r, tol $TOL_FB), accuracy CPU $ac GPU $ag"
}

check_blobs() {  # every blob and gradient of one forward + backward pass
  gid=-1; [ $GPU_OK = 0 ] || gid=$GPU
  (cd "$W/cpu" && "$B/bin/blob_compare" fb train_val.prototxt "$INIT" "$gid" "$TOL_FB") > "$L-blobs.txt" 2>"$L-blobs.err"
  rc=$?
  k=$(awk '$1 == "arrays" {print $2}' "$L-blobs.txt")
  if [ $GPU_OK = 0 ]; then
    [ $rc = 0 ] && [ -n "$k" ] && line "blobs $m" no-GPU "$k arrays of a forward + backward pass on the CPU; GPU skipped" \
      || line "blobs $m" FAIL "blob_compare on the CPU failed: $(tail -1 "$L-blobs.err")"
    return
  fi
  r=$(awk '$1 == "max_rel_diff" {print $2}' "$L-blobs.txt") w=$(awk '$1 == "worst" {$1 = ""; print}' "$L-blobs.txt")
  case $rc in
    0) line "blobs $m" pass "$k arrays (every blob, every gradient): max rel diff $r ($w), tol $TOL_FB" ;;
    1) line "blobs $m" FAIL "$k arrays: max rel diff $r ($w) > tol $TOL_FB" ;;
    *) line "blobs $m" FAIL "blob_compare failed: $(tail -1 "$L-blobs.err")" ;;
  esac
}

train_side() {  # side [caffe flags]: N SGD steps from INIT; sets loss_<side>
  s=$1; shift
  (cd "$W/$s" && caffe train -solver solver_agree.prototxt -weights "$INIT" "$@") > "$L-train-$s.txt" 2>&1
}

check_train() {  # the same N SGD steps on each side, updates compared
  train_side cpu || { line "train $m" FAIL "caffe train on the CPU failed: $(tail -1 "$L-train-cpu.txt")"; return; }
  lc=$(num 'Iteration [0-9]+, loss = ' "$L-train-cpu.txt")
  if [ $GPU_OK = 0 ]; then line "train $m" no-GPU "$STEPS SGD steps on the CPU, final loss $lc; GPU skipped"; return; fi
  train_side gpu $G || { line "train $m" FAIL "caffe train on the GPU failed: $(tail -1 "$L-train-gpu.txt")"; return; }
  lg=$(num 'Iteration [0-9]+, loss = ' "$L-train-gpu.txt")
  "$B/bin/blob_compare" params "$INIT" "$W/cpu/agree_iter_$STEPS.caffemodel" "$W/gpu/agree_iter_$STEPS.caffemodel" \
    "$TOL_TRAIN" > "$L-params.txt" 2>&1
  rc=$?
  u=$(awk '$1 == "max_update_rel_diff" {print $2}' "$L-params.txt") wu=$(awk '$1 == "worst_update" {print $2}' "$L-params.txt")
  p=$(awk '$1 == "max_param_rel_diff" {print $2}' "$L-params.txt")
  line "train $m" "$([ $rc = 0 ] && echo pass || echo FAIL)" "$STEPS SGD steps (no dropout): updates max rel diff $u ($wu), tol $TOL_TRAIN; weights $p; final loss CPU $lc GPU $lg"
}

check_time() {  # caffe time: forward + backward of the train net
  (cd "$W/cpu" && caffe time -model train_val.prototxt -iterations "$TIME_CPU") > "$L-time-cpu.txt" 2>&1 &&
    fc=$(fps "$FRAMES" "$(num 'Average Forward-Backward: ' "$L-time-cpu.txt")") \
    || { line "time $m" FAIL "caffe time on the CPU failed: $(tail -1 "$L-time-cpu.txt")"; return; }
  if [ $GPU_OK = 0 ]; then line "time $m" no-GPU "caffe time, $FRAMES frames a batch: CPU $fc frames/s; GPU skipped"; return; fi
  (cd "$W/gpu" && caffe time -model train_val.prototxt -iterations "$TIME_GPU" $G) > "$L-time-gpu.txt" 2>&1 &&
    fg=$(fps "$FRAMES" "$(num 'Average Forward-Backward: ' "$L-time-gpu.txt")") \
    || { line "time $m" FAIL "caffe time on the GPU failed: $(tail -1 "$L-time-gpu.txt")"; return; }
  line "time $m" pass "caffe time, $FRAMES frames a batch: CPU $fc, GPU $fg frames/s (x$(awk -v a="$fg" -v b="$fc" 'BEGIN { printf "%.1f", a / b }'))"
}

check_speed() {  # a real caffe train run (SGD with dropout), its own iter/s
  (cd "$W/cpu" && caffe train -solver solver_speed_cpu.prototxt -weights "$INIT") > "$L-speed-cpu.txt" 2>&1 &&
    sc=$(fps "$FRAMES" "$(num 'Iteration [0-9]+ [(]' "$L-speed-cpu.txt")" iter) \
    || { line "train-speed $m" FAIL "caffe train on the CPU failed: $(tail -1 "$L-speed-cpu.txt")"; return; }
  if [ $GPU_OK = 0 ]; then line "train-speed $m" no-GPU "caffe train: CPU $sc frames/s; GPU skipped"; return; fi
  (cd "$W/gpu" && caffe train -solver solver_speed_gpu.prototxt -weights "$INIT" $G) > "$L-speed-gpu.txt" 2>&1 &&
    sg=$(fps "$FRAMES" "$(num 'Iteration [0-9]+ [(]' "$L-speed-gpu.txt")" iter) \
    || { line "train-speed $m" FAIL "caffe train on the GPU failed: $(tail -1 "$L-speed-gpu.txt")"; return; }
  line "train-speed $m" pass "caffe train: CPU $sc, GPU $sg frames/s (x$(awk -v a="$sg" -v b="$sc" 'BEGIN { printf "%.1f", a / b }'))"
}

for m in $MODELS; do check_net "$m"; done
[ $FAILS = 0 ] || finish 1
[ $GPU_OK = 1 ] || finish $EXIT_NO_GPU
finish 0
