# shellcheck shell=bash
# Shared logic of the da_dist sbatch scripts; sourced, never run on its own.
#
#   source common.sh
#   da_slurm_main srun|mpirun CONFIG [DA_DIST_ARGS...]
#
# da_slurm_main resolves the run directory (<output_dir>/<job id>, the same
# folder again after a requeue), exports the NCCL and OpenMP environment,
# starts one da_dist per task through the launcher with `--resume auto`,
# forwards a preemption warning (SIGUSR1, or SIGTERM) from the batch shell to
# the step, and requeues the job when da_dist reports "stopped early,
# resumable" (exit status 75, EX_TEMPFAIL). It returns the status the batch
# script should exit with.
#
# Environment (all optional):
#   DA_DIST          da_dist executable (default: da_dist on PATH, else
#                    <submit dir>/build/src/da_dist)
#   DA_OUTPUT_DIR    parent of the run directories (default: <submit dir>/runs)
#   DA_MAX_REQUEUES  stop requeueing after this many restarts (default: 50)
#   DA_LAUNCHER_ARGS extra words for srun/mpirun (word-split), e.g. "--cpu-bind=cores"
#   OMP_NUM_THREADS  intra-op threads per rank (default: SLURM_CPUS_PER_TASK, else 1)
#   NCCL_*           anything set before sbatch is kept (sbatch exports the
#                    submitting environment by default)

# EX_TEMPFAIL: da_dist stopped early on a signal, rank 0 wrote
# <run dir>/checkpoints/last.pt, and `--resume auto` continues from it.
readonly DA_EXIT_RESUMABLE=75

da_log() { printf '[da_slurm %s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# Exits the batch script: setup failures happen before any step runs.
da_die() {
  da_log "error: $*"
  exit 2
}

da_find_da_dist() {
  if [[ -n "${DA_DIST:-}" ]]; then
    [[ -x "$DA_DIST" ]] || command -v "$DA_DIST" > /dev/null 2>&1 || da_die "DA_DIST=$DA_DIST is not executable"
    printf '%s\n' "$DA_DIST"
  elif command -v da_dist > /dev/null 2>&1; then
    command -v da_dist
  elif [[ -x "$DA_SUBMIT_DIR/build/src/da_dist" ]]; then
    printf '%s\n' "$DA_SUBMIT_DIR/build/src/da_dist"
  else
    da_die "da_dist not found: put it on PATH, set DA_DIST, or submit from a checkout with build/src/da_dist"
  fi
}

# NCCL and threading environment for every rank (values already set win).
da_export_env() {
  # Warnings only; use INFO (and NCCL_DEBUG_SUBSYS=INIT,NET) to see the
  # transport NCCL picked per connection.
  export NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
  # da_dist does not use PyTorch's process group, so TORCH_NCCL_ASYNC_ERROR_HANDLING,
  # NCCL_ASYNC_ERROR_HANDLING and NCCL_BLOCKING_WAIT have no effect on it: its
  # NCCL communicator polls ncclCommGetAsyncError itself and a collective that
  # is not complete after dist.timeout_s (config, default 600) aborts the
  # job on every rank. Lower it with `--set dist.timeout_s=...` if a hung
  # rank should end the job sooner.
  #
  # Network selection (cluster-specific; set them before sbatch or here):
  #   NCCL_SOCKET_IFNAME=ib0      # or ^lo,docker0: interface for bootstrap and
  #                               # TCP fallback; the wrong one hangs ncclCommInitRank
  #   NCCL_IB_HCA=mlx5_0,mlx5_1   # InfiniBand / RoCE adapters to use
  #   NCCL_IB_GID_INDEX=3         # RoCE v2 usually needs this
  #   NCCL_IB_TIMEOUT=22          # longer IB retransmission timeout on large fabrics
  #   NCCL_IB_DISABLE=1           # force TCP sockets (debugging only, slow)
  #   NCCL_NET_GDR_LEVEL=PHB      # GPUDirect RDMA distance limit
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"
}

# The launcher command line, into the array DA_LAUNCH.
da_launch_command() {
  local launcher=$1
  local -a extra=()
  if [[ -n "${DA_LAUNCHER_ARGS:-}" ]]; then
    read -r -a extra <<< "$DA_LAUNCHER_ARGS"
  fi
  case "$launcher" in
    srun)
      # One task per GPU, every task sees all the node's GPUs (da_dist picks
      # the GPU by its local rank). --kill-on-bad-exit=0: a rank that exits
      # 75 first must not kill rank 0 while it writes last.pt; a failing rank
      # still ends the job, through da_dist's MPI_Abort (or dist.timeout_s).
      DA_LAUNCH=(srun --mpi=pmix --kill-on-bad-exit=0 "--cpus-per-task=${SLURM_CPUS_PER_TASK:-1}" "${extra[@]}")
      ;;
    mpirun)
      # Open MPI reads the allocation from Slurm; -x exports the variables
      # to the ranks on other nodes. mpirun aborts the other ranks as soon as
      # one exits non-zero and then exits with that status (75 passes
      # through); turning that off (orte_abort_on_non_zero_status=0) would
      # make mpirun exit 0 instead, so da_dist's ranks exit 75 only after
      # rank 0 has written last.pt.
      local ntasks=${SLURM_NTASKS:-1}
      local per_node=${SLURM_NTASKS_PER_NODE:-8}
      per_node=${per_node%%(*}  # "8(x2)" -> "8"
      # No binding: OMP_NUM_THREADS sizes each rank's pool, and PE=-style
      # core binding breaks where Slurm counts hardware threads as CPUs.
      # TCP keepalive on mpirun's own connections to its node daemons: a node
      # that dies or is cut off is noticed within 25 s (10 s idle, then 3
      # probes 5 s apart) and the job ends naming it; with Open MPI's defaults
      # (300 s, 9 x 20 s) mpirun would wait 8 minutes for the lost daemon.
      DA_LAUNCH=(mpirun -np "$ntasks" --map-by "ppr:${per_node}:node" --bind-to none
        --mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 5 --mca oob_tcp_keepalive_probes 3)
      local var
      for var in PATH LD_LIBRARY_PATH OMP_NUM_THREADS $(compgen -e | grep -E '^(NCCL_|DA_)' || true); do
        [[ -n "${!var+set}" ]] && DA_LAUNCH+=(-x "$var")
      done
      DA_LAUNCH+=("${extra[@]}")
      ;;
    *) da_die "unknown launcher '$launcher' (srun or mpirun)" ;;
  esac
}

# Signal handling. With `#SBATCH --signal=B:USR1@180` only this batch shell
# receives the warning; it is forwarded once to the step (srun and mpirun
# both pass SIGUSR1 on to every rank), and bash runs the trap while it waits
# on the backgrounded step.
DA_STEP_PID=""
DA_SIGNALLED=""
da_on_signal() {
  local sig=$1
  da_log "received SIG$sig"
  if [[ -n "$DA_SIGNALLED" ]]; then
    return
  fi
  DA_SIGNALLED=$sig
  if [[ -n "$DA_STEP_PID" ]] && kill -0 "$DA_STEP_PID" 2> /dev/null; then
    da_log "forwarding SIGUSR1 to the step (pid $DA_STEP_PID): finish the current step, checkpoint, exit $DA_EXIT_RESUMABLE"
    kill -USR1 "$DA_STEP_PID" 2> /dev/null || true
  fi
}

da_requeue() {
  local restarts=${SLURM_RESTART_COUNT:-0}
  if ((restarts >= ${DA_MAX_REQUEUES:-50})); then
    da_log "not requeueing: already restarted $restarts times (DA_MAX_REQUEUES=${DA_MAX_REQUEUES:-50})"
    return 1
  fi
  da_log "requeueing job $SLURM_JOB_ID (restart $((restarts + 1))); it resumes from $DA_RUN_DIR/checkpoints/last.pt"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    da_log "scontrol requeue $SLURM_JOB_ID failed; resubmit by hand, the run resumes with --resume auto"
    return 1
  fi
}

da_slurm_main() {
  (($# >= 2)) || da_die "usage: sbatch <script> CONFIG.yaml [da_dist arguments...]"
  local launcher=$1
  local config=$2
  shift 2
  [[ -n "${SLURM_JOB_ID:-}" ]] || da_die "SLURM_JOB_ID is not set: submit with sbatch"
  [[ -r "$config" ]] || da_die "config file '$config' not readable (relative paths are taken from $PWD)"

  DA_SUBMIT_DIR=${SLURM_SUBMIT_DIR:-$PWD}
  local da_dist
  da_dist=$(da_find_da_dist) || exit 2
  local output_dir=${DA_OUTPUT_DIR:-$DA_SUBMIT_DIR/runs}
  [[ "$output_dir" == /* ]] || output_dir=$DA_SUBMIT_DIR/$output_dir
  # The job id survives `scontrol requeue`, so a requeued job finds its own
  # run directory (and checkpoints/last.pt) again.
  local run_name=$SLURM_JOB_ID
  DA_RUN_DIR=$output_dir/$run_name
  mkdir -p "$DA_RUN_DIR" || da_die "cannot create $DA_RUN_DIR"

  da_export_env
  da_launch_command "$launcher"
  local -a cmd=("${DA_LAUNCH[@]}" "$da_dist" --config "$config"
    --set "run.output_dir=$output_dir" --set "run.name=$run_name" --resume auto "$@")

  trap 'da_on_signal USR1' USR1
  trap 'da_on_signal TERM' TERM
  da_log "job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NUM_NODES:-1} node(s), ${SLURM_NTASKS:-1} task(s); run directory $DA_RUN_DIR"
  da_log "NCCL_DEBUG=$NCCL_DEBUG OMP_NUM_THREADS=$OMP_NUM_THREADS"
  da_log "running: ${cmd[*]}"
  printf '%s job %s restart %s start: %s\n' "$(date -u +%FT%TZ)" "$SLURM_JOB_ID" "${SLURM_RESTART_COUNT:-0}" \
    "${cmd[*]}" >> "$DA_RUN_DIR/slurm-attempts.log"

  # In the background so the traps run as soon as a signal arrives (bash
  # defers traps until a foreground command ends); wait returns early (>128)
  # when a trap ran, so wait again until the step itself has ended.
  "${cmd[@]}" &
  DA_STEP_PID=$!
  if [[ -n "$DA_SIGNALLED" ]]; then
    # The signal came while the step was being started: forward it now.
    da_log "forwarding SIGUSR1 to the step (pid $DA_STEP_PID)"
    kill -USR1 "$DA_STEP_PID" 2> /dev/null || true
  fi
  local status=0
  while :; do
    status=0
    wait "$DA_STEP_PID" || status=$?
    if ((status > 128)) && kill -0 "$DA_STEP_PID" 2> /dev/null; then
      continue  # woken by a trapped signal; the step is still running
    fi
    break
  done
  if ((status > 128)) && [[ -n "$DA_SIGNALLED" ]]; then
    # The wait may have been interrupted by the trap just as the step ended:
    # bash keeps an ended child's status, so ask once more (127: none kept).
    local again=0
    wait "$DA_STEP_PID" || again=$?
    ((again == 127)) || status=$again
  fi
  trap - USR1 TERM

  printf '%s job %s restart %s exit: %s%s\n' "$(date -u +%FT%TZ)" "$SLURM_JOB_ID" "${SLURM_RESTART_COUNT:-0}" \
    "$status" "${DA_SIGNALLED:+ (after SIG$DA_SIGNALLED)}" >> "$DA_RUN_DIR/slurm-attempts.log"
  if ((status == 0)); then
    da_log "da_dist finished${DA_SIGNALLED:+ (it completed before stopping on SIG$DA_SIGNALLED)}"
    return 0
  fi
  if ((status == DA_EXIT_RESUMABLE)) || [[ -n "$DA_SIGNALLED" ]]; then
    da_log "da_dist stopped early (exit status $status${DA_SIGNALLED:+, after SIG$DA_SIGNALLED})"
    da_requeue || true
    return "$status"
  fi
  da_log "da_dist failed with exit status $status; not requeueing"
  return "$status"
}
