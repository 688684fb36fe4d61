#!/bin/bash
# Tests of the sbatch scripts in slurm/ without a Slurm cluster: srun, mpirun,
# scontrol and da_dist are replaced by the stubs in tests/slurm/stubs/ (put
# first on PATH), which record their arguments to $STUB_LOG.
#
#   test_slurm_scripts.sh SOURCE_DIR syntax|control_flow|signals|test_only
#
# Exit status 0 when every check passed, 1 with a message per failed check,
# 77 (ctest SKIP_RETURN_CODE) when a test cannot run here.
set -uo pipefail

SRC=$(cd "${1:?usage: test_slurm_scripts.sh SOURCE_DIR TEST}" && pwd)
TEST=${2:?usage: test_slurm_scripts.sh SOURCE_DIR TEST}
STUBS=$SRC/tests/slurm/stubs
SCRIPTS=(single_node.sbatch multi_node.sbatch multi_node_mpirun.sbatch)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILURES=0

fail() {
  echo "FAIL [$CASE]: $*" >&2
  FAILURES=$((FAILURES + 1))
}
expect_eq() {  # expect_eq WHAT EXPECTED ACTUAL
  [[ "$2" == "$3" ]] || fail "$1: expected '$2', got '$3'"
}
count_lines() {  # count_lines PATTERN FILE: lines equal to PATTERN
  grep -cxF -- "$1" "$2" 2> /dev/null || true
}
# The da_dist arguments of the first recorded call, one per line.
da_dist_args() {
  sed -n '/^da_dist begin$/,/^da_dist end$/p' "$STUB_LOG" | sed -n 's/^arg //p'
}

# A clean submit directory with a config, and the Slurm environment of a job.
new_case() {
  CASE=$1
  SUBMIT=$TMP/$CASE/submit
  mkdir -p "$SUBMIT"
  echo "run: {max_epochs: 1}" > "$SUBMIT/conf.yaml"
  export STUB_LOG=$TMP/$CASE/calls.log
  : > "$STUB_LOG"
  export STUB_READY=$TMP/$CASE/ready
  unset STUB_DA_MODE STUB_DA_EXIT STUB_SCONTROL_EXIT NCCL_DEBUG OMP_NUM_THREADS NCCL_SOCKET_IFNAME NCCL_IB_HCA \
    DA_OUTPUT_DIR DA_MAX_REQUEUES DA_DIST DA_LAUNCHER_ARGS SLURM_RESTART_COUNT SLURM_NTASKS_PER_NODE
  export PATH=$STUBS:$BASE_PATH
  export DA_SLURM_DIR=$SRC/slurm
  export SLURM_JOB_ID=4242 SLURM_SUBMIT_DIR=$SUBMIT SLURM_CPUS_PER_TASK=6 SLURM_NTASKS=8 SLURM_JOB_NUM_NODES=1
}

# run_script SCRIPT ARGS...: runs it from the submit directory; sets RC.
run_script() {
  local script=$1
  shift
  RC=0
  (cd "$SUBMIT" && bash "$SRC/slurm/$script" "$@") > "$TMP/$CASE/stdout" 2> "$TMP/$CASE/stderr" || RC=$?
}

dump_on_failure() {
  local before=$1
  if ((FAILURES > before)); then
    echo "--- calls ($CASE) ---" >&2
    cat "$STUB_LOG" >&2
    echo "--- stderr ($CASE) ---" >&2
    cat "$TMP/$CASE/stderr" >&2 || true
  fi
}

BASE_PATH=$PATH

# Checks the da_dist command line: config first, then the run directory
# overrides, --resume auto, then the pass-through arguments in order.
check_da_dist_call() {  # check_da_dist_call OUTPUT_DIR EXTRA_ARGS...
  local output_dir=$1
  shift
  local expected
  expected=$(printf '%s\n' --config conf.yaml --set "run.output_dir=$output_dir" --set run.name=4242 \
    --resume auto "$@")
  expect_eq "da_dist arguments" "$expected" "$(da_dist_args)"
  expect_eq "da_dist calls" 1 "$(count_lines 'da_dist begin' "$STUB_LOG")"
  [[ -d "$output_dir/4242" ]] || fail "run directory $output_dir/4242 not created"
  grep -q "job 4242 restart 0 start: " "$output_dir/4242/slurm-attempts.log" 2> /dev/null ||
    fail "no start line in $output_dir/4242/slurm-attempts.log"
}

test_syntax() {
  CASE=syntax
  local f
  for f in "$SRC"/slurm/*.sh "$SRC"/slurm/*.sbatch "$SRC"/tests/slurm/*.sh "$STUBS"/*; do
    bash -n "$f" || fail "bash -n $f"
    [[ "$f" == */common.sh ]] || [[ -x "$f" ]] || fail "$f is not executable"
  done
  for f in "${SCRIPTS[@]}"; do
    local p=$SRC/slurm/$f
    [[ -f "$p" ]] || fail "missing slurm/$f"
    # srun binds one GPU to each task (CUDA_VISIBLE_DEVICES one id); mpirun's
    # ranks see the node's GPUs and pick theirs by local rank.
    local gpus="--gpus-per-task=1"
    [[ "$f" == *mpirun* ]] && gpus="--gpus-per-node=8"
    for directive in "--signal=B:USR1@180" "--requeue" "--open-mode=append" "--ntasks-per-node=8" "$gpus"; do
      grep -qxF "#SBATCH $directive" "$p" || fail "slurm/$f lacks '#SBATCH $directive'"
    done
    # shellcheck disable=SC2016  # the literal text
    grep -q 'source "$da_dir/common.sh"' "$p" || fail "slurm/$f does not source common.sh"
  done
  if command -v shellcheck > /dev/null; then
    shellcheck -x -P "$SRC/slurm" "$SRC"/slurm/*.sbatch "$SRC"/slurm/common.sh || fail "shellcheck"
  fi
}

test_control_flow() {
  local before

  # srun, success: the full command line, the environment, no requeue.
  new_case srun_ok
  before=$FAILURES
  run_script single_node.sbatch conf.yaml --set optimizer.lr=1e-3 --log-level debug
  expect_eq "exit status" 0 "$RC"
  expect_eq "srun call" "srun --mpi=pmix --kill-on-bad-exit=0 --cpus-per-task=6 $(command -v da_dist) --config conf.yaml --set run.output_dir=$SUBMIT/runs --set run.name=4242 --resume auto --set optimizer.lr=1e-3 --log-level debug" \
    "$(grep '^srun ' "$STUB_LOG")"
  check_da_dist_call "$SUBMIT/runs" --set optimizer.lr=1e-3 --log-level debug
  expect_eq "NCCL_DEBUG" 1 "$(count_lines 'env NCCL_DEBUG=WARN' "$STUB_LOG")"
  expect_eq "OMP_NUM_THREADS from SLURM_CPUS_PER_TASK" 1 "$(count_lines 'env OMP_NUM_THREADS=6' "$STUB_LOG")"
  expect_eq "scontrol calls" 0 "$(grep -c '^scontrol' "$STUB_LOG")"
  grep -q "job 4242 restart 0 exit: 0" "$SUBMIT/runs/4242/slurm-attempts.log" || fail "attempt log lacks exit 0"
  dump_on_failure "$before"

  # srun, exit 75: exactly one requeue of this job, the status is kept.
  new_case srun_75
  before=$FAILURES
  export STUB_DA_EXIT=75
  run_script single_node.sbatch conf.yaml
  expect_eq "exit status" 75 "$RC"
  check_da_dist_call "$SUBMIT/runs"
  expect_eq "requeue calls" 1 "$(count_lines 'scontrol requeue 4242' "$STUB_LOG")"
  expect_eq "scontrol calls" 1 "$(grep -c '^scontrol' "$STUB_LOG")"
  dump_on_failure "$before"

  # Other failures propagate and are not requeued.
  local code
  for code in 1 2 3 137; do
    new_case "srun_fail_$code"
    before=$FAILURES
    export STUB_DA_EXIT=$code
    run_script multi_node.sbatch conf.yaml
    expect_eq "exit status" "$code" "$RC"
    check_da_dist_call "$SUBMIT/runs"
    expect_eq "scontrol calls" 0 "$(grep -c '^scontrol' "$STUB_LOG")"
    dump_on_failure "$before"
  done

  # multi-node srun, exit 75.
  new_case multi_srun_75
  before=$FAILURES
  export STUB_DA_EXIT=75 SLURM_NTASKS=16 SLURM_JOB_NUM_NODES=2
  run_script multi_node.sbatch conf.yaml --set data.batch_size=4
  expect_eq "exit status" 75 "$RC"
  grep -q '^srun --mpi=pmix ' "$STUB_LOG" || fail "multi_node does not launch with srun --mpi=pmix"
  check_da_dist_call "$SUBMIT/runs" --set data.batch_size=4
  expect_eq "requeue calls" 1 "$(count_lines 'scontrol requeue 4242' "$STUB_LOG")"
  dump_on_failure "$before"

  # mpirun: ranks and mapping from Slurm, the environment exported with -x.
  for code in 0 75 1; do
    new_case "mpirun_$code"
    before=$FAILURES
    export STUB_DA_EXIT=$code SLURM_NTASKS=16 SLURM_NTASKS_PER_NODE='8(x2)' SLURM_JOB_NUM_NODES=2
    export NCCL_SOCKET_IFNAME=ib0 LD_LIBRARY_PATH=/opt/stub/lib
    run_script multi_node_mpirun.sbatch conf.yaml --log-level info
    expect_eq "exit status" "$code" "$RC"
    local call
    call=$(grep '^mpirun ' "$STUB_LOG")
    [[ "$call" == "mpirun -np 16 --map-by ppr:8:node --bind-to none "* ]] || fail "mpirun call: $call"
    local var
    for var in PATH LD_LIBRARY_PATH OMP_NUM_THREADS NCCL_DEBUG NCCL_SOCKET_IFNAME; do
      [[ "$call" == *" -x $var "* ]] || fail "mpirun does not export $var: $call"
    done
    [[ "$call" != *" -x NCCL_IB_HCA "* ]] || fail "mpirun exports the unset NCCL_IB_HCA: $call"
    check_da_dist_call "$SUBMIT/runs" --log-level info
    expect_eq "NCCL_SOCKET_IFNAME kept" 1 "$(count_lines 'env NCCL_SOCKET_IFNAME=ib0' "$STUB_LOG")"
    expect_eq "requeue calls" "$([[ $code == 75 ]] && echo 1 || echo 0)" \
      "$(count_lines 'scontrol requeue 4242' "$STUB_LOG")"
    dump_on_failure "$before"
  done

  # Values set before sbatch win; DA_OUTPUT_DIR relative to the submit dir.
  new_case preset_env
  before=$FAILURES
  export NCCL_DEBUG=INFO OMP_NUM_THREADS=3 DA_OUTPUT_DIR=out
  run_script single_node.sbatch conf.yaml
  expect_eq "exit status" 0 "$RC"
  check_da_dist_call "$SUBMIT/out"
  expect_eq "NCCL_DEBUG kept" 1 "$(count_lines 'env NCCL_DEBUG=INFO' "$STUB_LOG")"
  expect_eq "OMP_NUM_THREADS kept" 1 "$(count_lines 'env OMP_NUM_THREADS=3' "$STUB_LOG")"
  dump_on_failure "$before"

  # A requeued job (same job id) runs in the same directory again.
  new_case requeued
  before=$FAILURES
  export STUB_DA_EXIT=75
  run_script single_node.sbatch conf.yaml
  export SLURM_RESTART_COUNT=1 STUB_DA_EXIT=0
  run_script single_node.sbatch conf.yaml
  expect_eq "exit status after restart" 0 "$RC"
  expect_eq "da_dist calls" 2 "$(count_lines 'da_dist begin' "$STUB_LOG")"
  expect_eq "run.name both times" 2 "$(count_lines 'arg run.name=4242' "$STUB_LOG")"
  expect_eq "requeue calls" 1 "$(count_lines 'scontrol requeue 4242' "$STUB_LOG")"
  grep -q "job 4242 restart 1 exit: 0" "$SUBMIT/runs/4242/slurm-attempts.log" || fail "attempt log lacks restart 1"
  dump_on_failure "$before"

  # Requeue limit, and a failing scontrol: no loop, the status stays 75.
  new_case requeue_limit
  before=$FAILURES
  export STUB_DA_EXIT=75 SLURM_RESTART_COUNT=3 DA_MAX_REQUEUES=3
  run_script single_node.sbatch conf.yaml
  expect_eq "exit status" 75 "$RC"
  expect_eq "scontrol calls" 0 "$(grep -c '^scontrol' "$STUB_LOG")"
  dump_on_failure "$before"
  new_case scontrol_fails
  before=$FAILURES
  export STUB_DA_EXIT=75 STUB_SCONTROL_EXIT=1
  run_script single_node.sbatch conf.yaml
  expect_eq "exit status" 75 "$RC"
  expect_eq "requeue calls" 1 "$(count_lines 'scontrol requeue 4242' "$STUB_LOG")"
  grep -q "failed; resubmit by hand" "$TMP/$CASE/stderr" || fail "no message about the failed requeue"
  dump_on_failure "$before"

  # Setup errors: exit 2 before any step starts.
  new_case no_config
  before=$FAILURES
  run_script single_node.sbatch missing.yaml
  expect_eq "exit status" 2 "$RC"
  expect_eq "da_dist calls" 0 "$(count_lines 'da_dist begin' "$STUB_LOG")"
  grep -q "missing.yaml" "$TMP/$CASE/stderr" || fail "error does not name the config"
  dump_on_failure "$before"
  new_case no_args
  run_script single_node.sbatch
  expect_eq "exit status" 2 "$RC"
  grep -q "usage: sbatch" "$TMP/$CASE/stderr" || fail "no usage line"
  new_case no_job_id
  unset SLURM_JOB_ID
  run_script single_node.sbatch conf.yaml
  expect_eq "exit status" 2 "$RC"
  expect_eq "da_dist calls" 0 "$(count_lines 'da_dist begin' "$STUB_LOG")"

  # As sbatch runs it: a copy in a spool directory, no DA_SLURM_DIR;
  # common.sh is found through SLURM_SUBMIT_DIR/slurm.
  new_case spool_copy
  before=$FAILURES
  unset DA_SLURM_DIR
  mkdir -p "$TMP/$CASE/spool" "$TMP/$CASE/repo"
  cp -r "$SRC/slurm" "$TMP/$CASE/repo/slurm"
  cp "$SRC/slurm/single_node.sbatch" "$TMP/$CASE/spool/slurm_script"
  cp "$SUBMIT/conf.yaml" "$TMP/$CASE/repo/conf.yaml"
  SUBMIT=$TMP/$CASE/repo
  export SLURM_SUBMIT_DIR=$SUBMIT
  RC=0
  (cd "$SUBMIT" && bash "$TMP/$CASE/spool/slurm_script" conf.yaml) > "$TMP/$CASE/stdout" 2> "$TMP/$CASE/stderr" || RC=$?
  expect_eq "exit status" 0 "$RC"
  check_da_dist_call "$SUBMIT/runs"
  dump_on_failure "$before"
}

# Starts SCRIPT in the background with the signal-waiting stub, sends SIG to
# the batch shell once da_dist runs, and checks forwarding and requeue.
signal_case() {  # signal_case NAME SCRIPT SIG
  local name=$1 script=$2 sig=$3 before
  new_case "$name"
  before=$FAILURES
  export STUB_DA_MODE=signal
  (cd "$SUBMIT" && exec bash "$SRC/slurm/$script" conf.yaml) > "$TMP/$CASE/stdout" 2> "$TMP/$CASE/stderr" &
  local pid=$!
  for _ in $(seq 200); do
    [[ -e "$STUB_READY" ]] && break
    sleep 0.05
  done
  if [[ ! -e "$STUB_READY" ]]; then
    fail "the stub da_dist did not start"
    kill "$pid" 2> /dev/null
  fi
  kill "-$sig" "$pid"
  RC=0
  wait "$pid" || RC=$?
  expect_eq "exit status after SIG$sig" 75 "$RC"
  expect_eq "signals seen by da_dist" "da_dist got USR1" "$(grep '^da_dist got' "$STUB_LOG")"
  [[ -f "$SUBMIT/runs/4242/checkpoints/last.pt" ]] || fail "no checkpoints/last.pt"
  expect_eq "requeue calls" 1 "$(count_lines 'scontrol requeue 4242' "$STUB_LOG")"
  expect_eq "scontrol calls" 1 "$(grep -c '^scontrol' "$STUB_LOG")"
  grep -q "exit: 75 (after SIG$sig)" "$SUBMIT/runs/4242/slurm-attempts.log" || fail "attempt log lacks the signal"
  grep -q "received SIG$sig" "$TMP/$CASE/stderr" || fail "no 'received SIG$sig' message"
  dump_on_failure "$before"
}

test_signals() {
  signal_case usr1_srun single_node.sbatch USR1
  signal_case usr1_multi multi_node.sbatch USR1
  signal_case usr1_mpirun multi_node_mpirun.sbatch USR1
  # SIGTERM to the batch shell (time limit, scancel) is forwarded as SIGUSR1.
  signal_case term_srun single_node.sbatch TERM
}

# `sbatch --test-only` validates the scripts against the cluster the Slurm
# clients reach (SLURM_CONF or /etc/slurm): skipped where there is no sbatch
# or no reachable cluster (test_real_slurm.sh test_only starts its own one).
# Extra sbatch options (partition, account, a smaller geometry):
# DA_SBATCH_TEST_ARGS.
test_test_only() {
  CASE=test_only
  if ! command -v sbatch > /dev/null; then
    echo "sbatch not found: skipping sbatch --test-only"
    exit 77
  fi
  if ! timeout 20 sinfo -h > /dev/null 2>&1; then
    echo "no Slurm cluster reachable (sinfo fails): skipping sbatch --test-only"
    exit 77
  fi
  local f extra=()
  read -r -a extra <<< "${DA_SBATCH_TEST_ARGS:-}"
  for f in "${SCRIPTS[@]}"; do
    (cd "$SRC" && sbatch --test-only "${extra[@]}" "slurm/$f" conf/demo.yaml) || fail "sbatch --test-only slurm/$f"
  done
}

case "$TEST" in
  syntax) test_syntax ;;
  control_flow) test_control_flow ;;
  signals) test_signals ;;
  test_only) test_test_only ;;
  *)
    echo "unknown test '$TEST'" >&2
    exit 2
    ;;
esac

if ((FAILURES > 0)); then
  echo "$TEST: $FAILURES check(s) failed" >&2
  exit 1
fi
echo "$TEST: all checks passed"
