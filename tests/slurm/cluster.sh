#!/bin/bash
# A real Slurm cluster in a directory, for the tests of slurm/: its own
# munged (key generated into DIR), slurmctld and one slurmd per node, all
# running as root, with every file (slurm.conf, state, spool, logs, pid
# files, the munge socket) under DIR.
#
#   tests/slurm/cluster.sh start DIR    # idempotent; waits until every node is idle
#   tests/slurm/cluster.sh status DIR   # exit 0 when every daemon runs
#   tests/slurm/cluster.sh stop DIR     # ends the daemons of DIR by their pid files
#   tests/slurm/cluster.sh env DIR      # prints `export SLURM_CONF=...`
#   tests/slurm/cluster.sh logs DIR     # tails of the daemons' logs (for failures)
#
# The clients (sbatch, srun, sinfo, ...) use the cluster through
# SLURM_CONF=DIR/slurm.conf. One node by default: this machine, with its
# CPUs (nproc) and 90 % of its memory. DA_SLURM_NODES=N (2-4) makes N nodes
# that are hosts of their own: network namespaces da<ID>h1..hN from
# tests/hosts/hosts.sh (ID: DA_SLURM_HOSTS_ID, default 30), each node's
# slurmd started inside its namespace under its node name, slurmctld on the
# bridge; each node claims nproc CPUs and 90 % / N of the memory, so their
# jobs share this machine's cores, and ranks on different nodes talk over
# TCP only. proctrack/linuxproc and task/none, so no cgroups are needed.
# Ports: DA_SLURM_PORT (slurmctld; slurmd uses the next one), default the
# first free pair from 16817. Needs root (SlurmUser=root) and Debian's
# slurmctld, slurmd, slurm-client and munge; exit status 77 when they are
# missing (ctest's skip code), 1 when the cluster does not come up (with the
# log tails on stderr); 77 too when namespace nodes cannot be made.
set -uo pipefail

usage() {
  echo "usage: cluster.sh start|stop|status|env|logs DIR" >&2
  exit 2
}
(($# == 2)) || usage
ACTION=$1
DIR=$2
START_TIMEOUT=${DA_SLURM_START_TIMEOUT:-60}
HOSTS=$(dirname "${BASH_SOURCE[0]}")/../hosts/hosts.sh
# The node count and namespace id a cluster was started with are kept in
# DIR/nodes, so that stop and status need only DIR.
if [[ -s "$DIR/nodes" ]]; then
  read -r NODES HOSTS_ID < "$DIR/nodes"
else
  NODES=${DA_SLURM_NODES:-1}
  HOSTS_ID=${DA_SLURM_HOSTS_ID:-30}
fi
[[ "$NODES" =~ ^[1-4]$ ]] || { echo "cluster.sh: DA_SLURM_NODES must be 1 to 4, not '$NODES'" >&2; exit 2; }

log() { echo "[cluster.sh] $*" >&2; }

pid_alive() {  # pid_alive PIDFILE: the process named in PIDFILE runs
  local pid
  [[ -s "$1" ]] || return 1
  pid=$(< "$1")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2> /dev/null
}

port_free() {  # port_free PORT: nothing listens on 127.0.0.1:PORT
  ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null
}

show_logs() {
  local f
  for f in "$DIR"/log/munged.log "$DIR"/log/slurmctld.log "$DIR"/log/slurmd-*.log; do
    [[ -f "$f" ]] || continue
    echo "--- tail of $f ---" >&2
    tail -n 30 "$f" >&2
  done
}

check_prerequisites() {
  local p missing=()
  for p in munged slurmctld slurmd sbatch sinfo scontrol; do
    command -v "$p" > /dev/null 2>&1 || [[ -x /usr/sbin/$p ]] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "not found: ${missing[*]} (Debian packages slurmctld slurmd slurm-client munge)"
    exit 77
  fi
  if (($(id -u) != 0)); then
    log "the test cluster runs its daemons as root (SlurmUser=root): run as root"
    exit 77
  fi
}

# The node names (one a line): this host, or the namespace hosts.
node_names() {
  local i
  if ((NODES == 1)); then
    hostname -s
  else
    for ((i = 1; i <= NODES; i++)); do echo "da${HOSTS_ID}h$i"; done
  fi
}

write_config() {
  local host cpus mem_mb ctl_port ctl_addr i
  host=$(hostname -s)
  cpus=$(nproc)
  mem_mb=$(awk -v n="$NODES" '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 / n }' /proc/meminfo)
  ctl_port=${DA_SLURM_PORT:-}
  if [[ -z "$ctl_port" ]]; then
    ctl_port=16817
    while ! port_free "$ctl_port" || ! port_free $((ctl_port + 1)); do
      ctl_port=$((ctl_port + 2))
      ((ctl_port < 16917)) || { log "no free port pair in 16817-16916 (set DA_SLURM_PORT)"; exit 1; }
    done
  fi
  # The controller listens on every address: 127.0.0.1 for one node, the
  # bridge for namespace nodes.
  ctl_addr=127.0.0.1
  ((NODES == 1)) || ctl_addr=$(bash "$HOSTS" addr "$HOSTS_ID" 254)
  cat > "$DIR/slurm.conf" << EOF
# Written by tests/slurm/cluster.sh: a $NODES-node test cluster in $DIR.
ClusterName=da-test
SlurmctldHost=$host($ctl_addr)
SlurmctldPort=$ctl_port
SlurmdPort=$((ctl_port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: also how long a requeued job waits before it may start again
# (default 120 s); short here so the preemption test's requeue runs at once.
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Test pending jobs every 2 s (default 60 s / 30 s): a requeued job starts
# as soon as it is eligible.
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
ReturnToService=2
JobRequeue=1
PropagateResourceLimits=NONE
MailProg=/bin/true
KillWait=5
InactiveLimit=0
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=60
EOF
  ((NODES == 1)) || echo "TmpFS=$DIR/nodetmp" >> "$DIR/slurm.conf"
  if ((NODES == 1)); then
    echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN" >> "$DIR/slurm.conf"
  else
    for ((i = 1; i <= NODES; i++)); do
      echo "NodeName=da${HOSTS_ID}h$i NodeAddr=$(bash "$HOSTS" addr "$HOSTS_ID" "$i") CPUs=$cpus" \
        "RealMemory=$mem_mb State=UNKNOWN" >> "$DIR/slurm.conf"
    done
  fi
  echo "PartitionName=debug Nodes=$(node_names | paste -sd,) Default=YES MaxTime=INFINITE State=UP" >> "$DIR/slurm.conf"
}

# Starts the slurmd of node NAME (number I): here, or inside host I's
# network namespace with NAME as its host name (as hosts.sh's agent does).
# nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroup
# file systems slurmd checks at start. Each node sees a /tmp of its own at
# DIR/nodetmp (TmpFS, where the PMIx plugin puts each step's directory,
# named by job and step only: two nodes sharing one would collide) through
# a mount namespace; everything else, /tmp included, is shared as on a
# cluster's shared file system.
start_slurmd() {  # start_slurmd NAME I
  pid_alive "$DIR/run/slurmd-$1.pid" && return 0
  mkdir -p "$DIR/spool/$1"
  if ((NODES == 1)); then
    slurmd
  else
    mkdir -p "$DIR/nodetmp" "$DIR/tmp/$1"
    nsenter --net="/run/netns/da${HOSTS_ID}h$2" unshare --uts --mount /bin/sh -c \
      "mount --bind $DIR/tmp/$1 $DIR/nodetmp && hostname $1 && exec slurmd -N $1"
  fi
}

start_munged() {
  if pid_alive "$DIR/run/munged.pid"; then
    return 0
  fi
  mkdir -p "$DIR/munge" && chmod 0755 "$DIR/munge"
  if [[ ! -s "$DIR/munge/munge.key" ]]; then
    # A fresh key for this cluster only (the system's /etc/munge is untouched).
    (umask 077 && dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none) ||
      { log "cannot write $DIR/munge/munge.key"; exit 1; }
  fi
  # munged checks that no one else can write the directories on the way to
  # its socket and key (/tmp is fine: sticky bit).
  if ! munged --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed" --force; then
    log "munged did not start"
    show_logs
    exit 1
  fi
}

start() {
  check_prerequisites
  mkdir -p "$DIR" || { log "cannot create $DIR"; exit 1; }
  DIR=$(cd "$DIR" && pwd)
  chmod 0755 "$DIR"
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/state" "$DIR/spool"
  echo "$NODES $HOSTS_ID" > "$DIR/nodes"
  if ((NODES > 1)) && ! ip netns pids "da${HOSTS_ID}h1" > /dev/null 2>&1; then
    local rc=0
    bash "$HOSTS" up "$HOSTS_ID" "$NODES" || rc=$?
    ((rc == 77)) && { log "cannot make network namespaces for $NODES nodes here"; exit 77; }
    ((rc == 0)) || { log "hosts.sh up $HOSTS_ID $NODES failed ($rc)"; exit 1; }
  fi
  export SLURM_CONF=$DIR/slurm.conf
  [[ -f "$SLURM_CONF" ]] || write_config
  start_munged
  if ! munge -n -S "$DIR/munge/munge.socket" | unmunge -S "$DIR/munge/munge.socket" > /dev/null; then
    log "munge round trip through $DIR/munge/munge.socket failed"
    show_logs
    exit 1
  fi
  if ! pid_alive "$DIR/run/slurmctld.pid"; then
    # -c: no state from an earlier start (the directory may be reused).
    slurmctld -c || { log "slurmctld did not start"; show_logs; exit 1; }
  fi
  local name i=0
  for name in $(node_names); do
    i=$((i + 1))
    start_slurmd "$name" "$i" || { log "slurmd of $name did not start"; show_logs; exit 1; }
  done
  # Up when every node is idle, mixed or allocated.
  local deadline=$((SECONDS + START_TIMEOUT)) state="" up=0
  while ((SECONDS < deadline)); do
    state=$(sinfo -h -N -o '%t' 2> /dev/null | paste -sd' ')
    up=$(sinfo -h -N -o '%t' 2> /dev/null | grep -cE '^(idle|mix|alloc)$')
    ((up == NODES)) && break
    sleep 0.5
  done
  case "$up" in
    "$NODES") ;;
    *)
      log "nodes not up after ${START_TIMEOUT}s (sinfo states '${state:-none}')"
      sinfo -N -l >&2 2> /dev/null || true
      scontrol show node >&2 2> /dev/null || true
      show_logs
      exit 1
      ;;
  esac
  log "cluster up in $DIR ($(sinfo -h -N -o '%N %c CPUs %m MB %t' | paste -sd';'))"
}

stop() {
  [[ -d "$DIR" ]] || return 0
  DIR=$(cd "$DIR" && pwd)
  local name pidfile pid jobs
  export SLURM_CONF=$DIR/slurm.conf
  # Jobs still in this cluster (a test that failed or timed out): cancel
  # them while slurmctld and slurmd run, so their processes end too.
  if pid_alive "$DIR/run/slurmctld.pid"; then
    jobs=$(timeout 10 squeue -h -o %i 2> /dev/null | tr '\n' ' ')
    if [[ -n "${jobs// /}" ]]; then
      log "cancelling jobs $jobs"
      # shellcheck disable=SC2086  # job ids, one word each
      timeout 10 scancel $jobs 2> /dev/null
      for _ in $(seq 60); do
        [[ -z "$(timeout 5 squeue -h -o %i 2> /dev/null)" ]] && break
        sleep 0.25
      done
    fi
  fi
  # slurmd first (it ends the job steps it started), then the controller,
  # then munged; each by its own pid file, never by name.
  for pidfile in "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid" "$DIR/run/munged.pid"; do
    name=$(basename "$pidfile" .pid)
    pid_alive "$pidfile" || continue
    pid=$(< "$pidfile")
    kill -TERM "$pid" 2> /dev/null
    for _ in $(seq 100); do
      kill -0 "$pid" 2> /dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2> /dev/null; then
      log "$name (pid $pid) still runs after 10 s: SIGKILL"
      kill -KILL "$pid" 2> /dev/null
    fi
    rm -f "$pidfile"
  done
  # Job processes left behind (slurmstepd outlives slurmd): processes of a
  # job of this cluster (SLURM_JOB_ID and this SLURM_CONF in their
  # environment) and step daemons working in this cluster's spool.
  local env_file p vars
  for env_file in /proc/[0-9]*/environ; do
    p=${env_file#/proc/}
    p=${p%/environ}
    [[ "$p" == "$$" || "$p" == "$BASHPID" ]] && continue
    vars=$( { tr '\0' '\n' < "$env_file"; } 2> /dev/null) || continue
    if { grep -qxF "SLURM_CONF=$DIR/slurm.conf" <<< "$vars" && grep -q '^SLURM_JOB_ID=' <<< "$vars"; } ||
      [[ "$(readlink "/proc/$p/cwd" 2> /dev/null)" == "$DIR/spool"* ]]; then
      log "killing leftover job process $p ($(tr '\0' ' ' < "/proc/$p/cmdline" 2> /dev/null | cut -c1-80))"
      kill -KILL "$p" 2> /dev/null
    fi
  done
  # The namespace hosts go last (hosts.sh kills what still runs in them).
  ((NODES == 1)) || bash "$HOSTS" down "$HOSTS_ID" "$NODES"
  return 0
}

status() {
  local name rc=0
  for name in munged slurmctld $(node_names | sed 's/^/slurmd-/'); do
    if pid_alive "$DIR/run/$name.pid"; then
      echo "$name running (pid $(< "$DIR/run/$name.pid"))"
    else
      echo "$name not running"
      rc=1
    fi
  done
  if ((rc == 0)); then
    SLURM_CONF=$DIR/slurm.conf sinfo -N -o '%N %c %m %t' || rc=1
  fi
  return "$rc"
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$(cd "$DIR" && pwd)/slurm.conf" ;;
  logs) show_logs ;;
  *) usage ;;
esac
