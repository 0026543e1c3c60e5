#!/usr/bin/env bash
# A private single-node Slurm on this machine, for trying `make sweep-slurm` and for its test.
#
#   bash scripts/slurm/slurm_local.sh start DIR   install slurm-wlm + munge if missing (apt-get),
#                                           start munged, slurmctld and slurmd from DIR
#   source DIR/env                          point sbatch/squeue/sinfo at it (SLURM_CONF)
#   bash scripts/slurm/slurm_local.sh stop DIR    cancel its jobs, stop exactly its daemons
#
# Everything lives in DIR: slurm.conf, the munge key and socket, state, spool, logs and pid
# files. The node is this host (NodeName = `hostname -s`, address 127.0.0.1) with
# SLURM_LOCAL_CPUS CPUs (default 2) and no GPU, in one partition `local`. Chosen for a
# machine without systemd or cgroups (containers, CI): ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none, SelectType=select/cons_tres with CR_CPU (CPUs are the consumable;
# memory limits are checked against the node's RealMemory but not enforced), no accounting.
# The ports are free ones picked at start (the system's own Slurm, if any, keeps 6817/6818).
# Daemons run as root (SlurmUser=root), so `start` needs root, as does apt-get.
#
# Exit codes of `start`: 0 running; 77 the packages are missing and cannot be installed
# (not root, no apt-get, or apt-get failed); 1 the daemons did not come up (their logs are
# printed). `stop` always leaves none of DIR's daemons running.
#
# Packages (Debian 12): slurm-wlm (slurmctld, slurmd, slurm-client) and munge, installed
# with --no-install-recommends. On a machine whose init starts services on install, the
# packages' own system daemons may start too; this script never uses or stops them.
set -euo pipefail

CMD=${1:-}
DIR=${2:-}
CPUS=${SLURM_LOCAL_CPUS:-2}
START_TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}

die()  { echo "slurm_local: $*" >&2; exit 1; }
skip() { echo "slurm_local: $*" >&2; exit 77; }
say()  { echo "slurm_local: $*"; }

[ -n "$CMD" ] && [ -n "$DIR" ] || die "usage: $0 start|stop DIR"
case "$CMD" in start|stop) ;; *) die "unknown command '$CMD': use start or stop";; esac
if [ "$CMD" = stop ] && [ ! -d "$DIR" ]; then say "$DIR does not exist: nothing to stop"; exit 0; fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

# Debian puts the daemons in /usr/sbin, which a non-login root shell may lack in PATH.
export PATH="$PATH:/usr/sbin:/sbin"

# ------------------------------------------------------------------ stop
pid_of() { [ -s "$DIR/run/$1.pid" ] && cat "$DIR/run/$1.pid" || true; }
# A zombie (state Z, waiting for init to reap it) counts as stopped.
alive()  { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

stop_daemon() {  # name: TERM, wait up to 20 s, then KILL
  local pid; pid=$(pid_of "$1")
  alive "$pid" || { rm -f "$DIR/run/$1.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  alive "$pid" && die "could not stop $1 (pid $pid)"
  rm -f "$DIR/run/$1.pid"
  say "stopped $1 (pid $pid)"
}

if [ "$CMD" = stop ]; then
  if [ -f "$DIR/slurm.conf" ] && alive "$(pid_of slurmctld)"; then
    # Jobs first: a job's slurmstepd outlives slurmd, so cancel them and wait until gone.
    export SLURM_CONF="$DIR/slurm.conf"
    scancel --quiet --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 300); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && ! ls "$DIR/spool/$(hostname -s)"_* >/dev/null 2>&1 && break
      sleep 0.1
    done
  fi
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon munged
  exit 0
fi

# ------------------------------------------------------------------ start: packages
need=()
for b in slurmctld slurmd sbatch squeue sinfo scancel; do command -v "$b" >/dev/null || need=(slurm-wlm); done
command -v munged >/dev/null || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || skip "${need[*]} not installed and not root: install them with 'apt-get install ${need[*]}'"
  command -v apt-get >/dev/null || skip "${need[*]} not installed and no apt-get: install them with your package manager"
  say "installing ${need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q >"$DIR/apt.log" 2>&1 \
    && apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${need[@]}" >>"$DIR/apt.log" 2>&1 \
    || { tail -n 20 "$DIR/apt.log" >&2; skip "apt-get could not install ${need[*]} (log: $DIR/apt.log)"; }
fi
[ "$(id -u)" = 0 ] || skip "the daemons run as root here (SlurmUser=root): run this as root"

# ------------------------------------------------------------------ start: config
for d in slurmctld slurmd munged; do
  alive "$(pid_of $d)" && die "$d of $DIR is already running (pid $(pid_of $d)); run '$0 stop $DIR' first"
done
mkdir -p "$DIR"/{run,log,state,spool,munge}
chmod 700 "$DIR/munge"
HOST=$(hostname -s)
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
# Two TCP ports in 30000-59999 that nothing on this machine uses (/proc/net/tcp*).
used=" $(for f in /proc/net/tcp /proc/net/tcp6; do if [ -r "$f" ]; then tail -n +2 "$f"; fi; done \
  | while read -r _ local _; do echo $((16#${local##*:})); done | tr '\n' ' ') "
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((30000 + RANDOM % 30000))
    [[ "$used" == *" $p "* ]] || { echo "$p"; return 0; }
  done
  die "found no free TCP port"
}
CTLD_PORT=$(free_port)
used+="$CTLD_PORT "
SLURMD_PORT=$(free_port)
cat > "$DIR/slurm.conf" <<EOF
# Written by scripts/slurm/slurm_local.sh: a private one-node cluster, everything under $DIR.
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
echo "export SLURM_CONF=$DIR/slurm.conf" > "$DIR/env"
export SLURM_CONF="$DIR/slurm.conf"

# ------------------------------------------------------------------ start: daemons
fail() {
  echo "slurm_local: $1; the daemons' logs:" >&2
  for f in "$DIR"/log/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  "$0" stop "$DIR" >/dev/null 2>&1 || true
  exit 1
}

[ -s "$DIR/munge/munge.key" ] || {
  if command -v mungekey >/dev/null; then mungekey --create --keyfile="$DIR/munge/munge.key" >/dev/null
  else dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none; fi
}
chmod 600 "$DIR/munge/munge.key"
munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
  --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
  --seed-file="$DIR/munge/munged.seed" --force >/dev/null 2>&1 \
  || fail "munged did not start"
for _ in $(seq 50); do [ -S "$DIR/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$DIR/munge/munge.socket" ] || fail "munged made no socket"

slurmctld -f "$DIR/slurm.conf" || fail "slurmctld did not start"
slurmd -f "$DIR/slurm.conf" || fail "slurmd did not start"

state=
for _ in $(seq $((START_TIMEOUT * 2))); do
  state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || fail "node $HOST not idle after ${START_TIMEOUT}s (sinfo: '${state:-no answer}')"
say "running: node $HOST ($CPUS CPUs, ${MEM_MB} MB), partition local, ports $CTLD_PORT/$SLURMD_PORT"
say "clients: source $DIR/env   (SLURM_CONF=$DIR/slurm.conf)"
