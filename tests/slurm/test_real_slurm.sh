#!/bin/bash
# The sbatch scripts in slurm/ on a real one-node Slurm cluster started in a
# temporary directory by tests/slurm/cluster.sh (munged, slurmctld, slurmd as
# root): the project's own scripts, submitted with sbatch from the checkout,
# launching 2 CPU ranks of the real da_dist on tiny synthetic demo data.
#
#   test_real_slurm.sh SOURCE_DIR DA_DIST DA_TILES run|preempt|test_only|run_two_nodes|preempt_two_nodes
#
#   run        slurm/single_node.sbatch conf/demo.yaml for one epoch, with
#              `sbatch --wait`: state COMPLETED, exit 0, 2 ranks, an epoch line
#              in metrics.jsonl, checkpoints/last.pt readable; the same for
#              slurm/multi_node_mpirun.sbatch with -N 1 (mpirun in the job).
#   preempt    a 4-epoch run is sent SIGUSR1 (`scancel --signal=USR1 --batch`,
#              what `#SBATCH --signal=B:USR1@180` does) after its first step:
#              da_dist writes last.pt and exits 75, the script requeues the
#              job, which resumes with --resume auto and completes; its final
#              checkpoint must equal (every tensor, within 1e-6; bit-exact is
#              reported) that of an uninterrupted run of the same config.
#   test_only  `sbatch --test-only` of all three scripts against the cluster
#              (-N 1; without it the multi-node scripts must be refused).
#   run_two_nodes, preempt_two_nodes
#              the same as run and preempt on a cluster of two nodes that are
#              hosts of their own (network namespaces, cluster.sh with
#              DA_SLURM_NODES=2): `sbatch -N 2 --ntasks-per-node=1` of
#              slurm/multi_node.sbatch (srun) and multi_node_mpirun.sbatch,
#              one rank on each node (each rank's log names its node); the
#              preempted two-node job requeues, resumes on both nodes and
#              ends with the parameters of an uninterrupted two-node run.
#
# The 8-GPU geometry of the scripts is overridden on the sbatch command line
# (--ntasks-per-node=2 --gpus-per-task=0 --gpus-per-node=0 --cpus-per-task=1:
# zero GPUs whichever of the two GPU layouts a script asks for); everything else
# (#SBATCH --signal, --requeue, --open-mode, srun --mpi=pmix) is the scripts'
# own. Exit status 0 when every check passed, 1 with messages, the job output
# and the daemons' log tails, 77 (ctest's skip code) without root or without
# the Slurm and munge packages.
set -uo pipefail

SRC=$(cd "${1:?usage: test_real_slurm.sh SOURCE_DIR DA_DIST DA_TILES TEST}" && pwd)
DA_DIST_BIN=$(realpath -e "${2:?DA_DIST}") || exit 1
DA_TILES_BIN=$(realpath -e "${3:?DA_TILES}") || exit 1
TEST=${4:?TEST}
HERE=$SRC/tests/slurm
python=${PYTHON:-$SRC/.venv/bin/python}
CLUSTER=$HERE/cluster.sh
# The two-node tests take longer: their ranks' collectives cross a
# software bridge whose packets the same 2 cores must process.
two_nodes=0
[[ "${4:-}" == *_two_nodes ]] && two_nodes=1
JOB_TIMEOUT=${DA_SLURM_JOB_TIMEOUT:-$((two_nodes ? 300 : 150))}  # seconds for any one job (requeues included)
# Every wait also ends by this overall deadline, so the script fails (and
# stops its daemons) before ctest's TIMEOUT would kill it.
DEADLINE=$((SECONDS + ${DA_SLURM_TEST_TIMEOUT:-$((two_nodes ? 560 : 280))}))
# CPU overrides of the scripts' 8-GPU geometry, and a short time limit.
# DA_SLURM_TEST_TASKS: ranks per job (default 2; 1 separates a multi-rank
# problem from a Slurm one).
TASKS=${DA_SLURM_TEST_TASKS:-2}
GEOMETRY=(--ntasks-per-node="$TASKS" --gpus-per-task=0 --gpus-per-node=0 --cpus-per-task=1 --time=10)
# The two-node tests: two namespace hosts (ids apart from tests/hosts'), one
# rank on each; the single-node scripts' preemption test runs the
# multi-node script there.
NODES=1
NODE_OPTS=()
PREEMPT_SCRIPT=slurm/single_node.sbatch
# The preemption test's run: 4 epochs of 48 tiles of 64x64 (24 steps) on
# one node, 3 of 32 of 32x32 (12 steps) on two.
PREEMPT_RUN=(4 48 64)
if ((two_nodes)); then
  NODES=2 TASKS=2
  export DA_SLURM_NODES=2 DA_SLURM_HOSTS_ID=31
  NODE_OPTS=(-N 2 --ntasks-per-node=1)
  PREEMPT_SCRIPT=slurm/multi_node.sbatch
  PREEMPT_RUN=(3 32 32)
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/da_slurm_test.XXXXXX")
FAILURES=0
KEEP=${DA_SLURM_KEEP:-}  # set: keep $TMP for inspection

cleanup() {
  bash "$CLUSTER" stop "$TMP/cluster"
  if [[ -z "$KEEP" ]]; then
    rm -rf "$TMP"
  else
    echo "kept $TMP" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=$SECONDS
say() { echo "[$((SECONDS - t_start))s] $*"; }
fail() {
  echo "FAIL [$TEST]: $*" >&2
  FAILURES=$((FAILURES + 1))
}
# Everything that explains a failure: the job's output, its scontrol record,
# the run's attempt log, the daemons' logs.
dump_job() {  # dump_job JOBID
  local job=$1
  echo "--- scontrol show job $job ---" >&2
  scontrol show job "$job" >&2 2>&1 || true
  if [[ -f "$TMP/out/job-$job.out" ]]; then
    echo "--- job output $TMP/out/job-$job.out (last 60 lines) ---" >&2
    grep -v 'received no gradient' "$TMP/out/job-$job.out" | tail -n 60 >&2
  fi
  if [[ -f "$TMP/runs/$job/slurm-attempts.log" ]]; then
    echo "--- $TMP/runs/$job/slurm-attempts.log ---" >&2
    cat "$TMP/runs/$job/slurm-attempts.log" >&2
  fi
  bash "$CLUSTER" logs "$TMP/cluster"
}
die() {  # die MESSAGE [JOBID]
  fail "$1"
  if [[ -n "${2:-}" ]]; then dump_job "$2"; else bash "$CLUSTER" logs "$TMP/cluster"; fi
  exit 1
}

job_field() {  # job_field JOBID FIELD: one field of `scontrol show job`
  scontrol show job -o "$1" 2> /dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# Waits until the job has ended for good (a requeued job is PENDING again,
# so it is not ended); returns its state in JOB_STATE.
# The end of a wait of TIMEOUT seconds from now, or the overall deadline.
wait_until() {  # wait_until TIMEOUT
  local t=$((SECONDS + $1))
  echo $((t < DEADLINE ? t : DEADLINE))
}

wait_job_end() {  # wait_job_end JOBID TIMEOUT
  local job=$1 deadline
  deadline=$(wait_until "$2")
  JOB_STATE=""
  while ((SECONDS < deadline)); do
    JOB_STATE=$(job_field "$job" JobState)
    case "$JOB_STATE" in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) return 0 ;;
    esac
    sleep 0.5
  done
  die "job $job did not end within $2 s or by the test's deadline (state '${JOB_STATE:-unknown}')" "$job"
}

# Waits until FILE has a line matching the extended regex.
wait_for_line() {  # wait_for_line FILE REGEX TIMEOUT JOBID WHAT
  local deadline
  deadline=$(wait_until "$3")
  while ((SECONDS < deadline)); do
    grep -qE -- "$2" "$1" 2> /dev/null && return 0
    local state
    state=$(job_field "$4" JobState)
    case "$state" in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL) die "job $4 ended ($state) before $5" "$4" ;;
    esac
    sleep 0.2
  done
  die "no $5 within $3 s or by the test's deadline (no line matching '$2' in $1)" "$4"
}

start_cluster() {
  local rc=0
  say "starting the cluster in $TMP/cluster"
  bash "$CLUSTER" start "$TMP/cluster" || rc=$?
  ((rc == 77)) && exit 77
  ((rc == 0)) || die "the test cluster did not start (cluster.sh exit status $rc)"
  export SLURM_CONF=$TMP/cluster/slurm.conf
  mkdir -p "$TMP/out" "$TMP/runs"
}

# Tiny demo data: the demo's synthetic generator, small.
make_data() {  # make_data TILES SIZE
  "$DA_TILES_BIN" synth --out "$TMP/data" --tiles "$1" --val-tiles 8 --size "$2" --seed 0 > "$TMP/synth.log" 2>&1 ||
    { cat "$TMP/synth.log" >&2; die "da_tiles synth failed"; }
}

# da_dist arguments for conf/demo.yaml on the tiny data: the tiny encoder,
# batch 4 per rank, no loader threads, a log line per step.
DA_ARGS=()
set_da_args() {  # set_da_args EPOCHS
  local d=$TMP/data
  DA_ARGS=(--set "run.max_epochs=$1" --set model.encoder=tiny --set data.batch_size=4 --set data.workers=0
    --set run.log_every_n_steps=1 --set logging.progress=false
    --set "data.source.train=[$d/source_train.h5]" --set "data.source.val=[$d/source_val.h5]"
    --set "data.target.train=[$d/target_train.h5]" --set "data.target.val=[$d/target_val.h5]")
}

# sbatch from the checkout, as a user would; the run directories go to
# $TMP/runs (DA_OUTPUT_DIR), the job output to $TMP/out.
submit() {  # submit SBATCH_OPTIONS... -- SCRIPT CONFIG DA_ARGS...: sets JOB
  local -a opts=()
  while [[ "$1" != "--" ]]; do
    opts+=("$1")
    shift
  done
  shift
  JOB=$(cd "$SRC" && DA_DIST=$DA_DIST_BIN DA_OUTPUT_DIR=$TMP/runs \
    sbatch --parsable --output="$TMP/out/job-%j.out" "${GEOMETRY[@]}" "${opts[@]}" "$@" 2> "$TMP/sbatch.err")
  local rc=$?
  JOB=${JOB%%;*}
  if ((rc != 0)) || [[ ! "$JOB" =~ ^[0-9]+$ ]]; then
    cat "$TMP/sbatch.err" >&2
    die "sbatch $* failed (exit status $rc)"
  fi
}

# The checks of a completed run: state, exit code, 2 ranks, metrics, checkpoint.
check_completed_run() {  # check_completed_run JOBID EXPECTED_RESTARTS EPOCHS [LAUNCHER]
  local job=$1 before=$FAILURES launcher=${4:-srun --mpi=pmix}
  local run=$TMP/runs/$job
  [[ "$(job_field "$job" JobState)" == COMPLETED ]] || fail "job $job state $(job_field "$job" JobState), not COMPLETED"
  [[ "$(job_field "$job" ExitCode)" == 0:0 ]] || fail "job $job ExitCode $(job_field "$job" ExitCode), not 0:0"
  [[ "$(job_field "$job" Restarts)" == "$2" ]] || fail "job $job Restarts=$(job_field "$job" Restarts), expected $2"
  grep -q "da_dist $TASKS ranks, run directory $run\$" "$TMP/out/job-$job.out" ||
    fail "job output lacks 'da_dist $TASKS ranks, run directory $run'"
  grep -q "^\\[da_slurm .*running: $launcher " "$TMP/out/job-$job.out" ||
    fail "the script did not launch with $launcher"
  local r
  for ((r = 0; r < TASKS; r++)); do
    [[ -s "$run/logs/rank-$r.log" ]] || fail "no logs/rank-$r.log in $run"
    # On two nodes rank r runs on node r+1 (one task a node, in order).
    if ((NODES > 1)) && ! grep -q "rank $r of $TASKS on host da${DA_SLURM_HOSTS_ID}h$((r + 1)) " "$run/logs/rank-$r.log"; then
      fail "logs/rank-$r.log does not say rank $r runs on node da${DA_SLURM_HOSTS_ID}h$((r + 1))"
    fi
  done
  local last_epoch=$(($3 - 1))
  grep -qE "^\\{\"kind\": \"epoch\", \"epoch\": $last_epoch," "$run/metrics.jsonl" 2> /dev/null ||
    fail "$run/metrics.jsonl has no line for epoch $last_epoch"
  grep -q "job $job restart $2 exit: 0\$" "$run/slurm-attempts.log" 2> /dev/null ||
    fail "slurm-attempts.log lacks 'job $job restart $2 exit: 0'"
  if [[ ! -s "$run/checkpoints/last.pt" ]]; then
    fail "no $run/checkpoints/last.pt"
  elif ! "$python" "$HERE/compare_checkpoints.py" "$run/checkpoints/last.pt" "$run/checkpoints/last.pt" \
    > "$TMP/read.log" 2>&1; then
    cat "$TMP/read.log" >&2
    fail "cannot read $run/checkpoints/last.pt with $python"
  fi
  ((FAILURES == before)) || dump_job "$job"
}

# sbatch --wait SCRIPT conf/demo.yaml DA_ARGS from the checkout; sets JOB.
submit_wait() {  # submit_wait SBATCH_OPTIONS... -- SCRIPT
  local -a opts=()
  while [[ "$1" != "--" ]]; do
    opts+=("$1")
    shift
  done
  local script=$2 rc=0 limit
  limit=$(($(wait_until "$JOB_TIMEOUT") - SECONDS))
  JOB=""
  (cd "$SRC" && DA_DIST=$DA_DIST_BIN DA_OUTPUT_DIR=$TMP/runs timeout "$limit" \
    sbatch --wait --output="$TMP/out/job-%j.out" "${GEOMETRY[@]}" "${opts[@]}" \
    "$script" conf/demo.yaml "${DA_ARGS[@]}") > "$TMP/sbatch.out" 2>&1 || rc=$?
  JOB=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$TMP/sbatch.out")
  [[ -n "$JOB" ]] || { cat "$TMP/sbatch.out" >&2; die "sbatch $script did not submit (exit status $rc)"; }
  ((rc != 124)) || die "sbatch --wait: job $JOB not finished after $limit s" "$JOB"
  ((rc == 0)) || fail "sbatch --wait $script: exit status $rc (the job's), expected 0"
  wait_job_end "$JOB" 30
  say "job $JOB: $JOB_STATE"
}

test_run() {
  start_cluster
  make_data 16 32
  set_da_args 1
  say "sbatch --wait slurm/single_node.sbatch conf/demo.yaml (1 epoch, $TASKS ranks, srun)"
  submit_wait -- slurm/single_node.sbatch
  check_completed_run "$JOB" 0 1
  # The mpirun variant on one node: Open MPI reads the allocation from
  # Slurm. (Open MPI's mpirun refuses root unless told otherwise.)
  say "sbatch --wait -N 1 slurm/multi_node_mpirun.sbatch conf/demo.yaml (1 epoch, $TASKS ranks, mpirun)"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 submit_wait -N 1 -- slurm/multi_node_mpirun.sbatch
  check_completed_run "$JOB" 0 1 "mpirun -np $TASKS --map-by ppr:$TASKS:node"
}

test_run_two_nodes() {
  start_cluster
  make_data 16 32
  set_da_args 1
  say "sbatch --wait -N 2 --ntasks-per-node=1 slurm/multi_node.sbatch conf/demo.yaml (1 epoch, srun)"
  submit_wait "${NODE_OPTS[@]}" -- slurm/multi_node.sbatch
  check_completed_run "$JOB" 0 1
  say "sbatch --wait -N 2 --ntasks-per-node=1 slurm/multi_node_mpirun.sbatch conf/demo.yaml (1 epoch, mpirun)"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 submit_wait "${NODE_OPTS[@]}" -- slurm/multi_node_mpirun.sbatch
  check_completed_run "$JOB" 0 1 "mpirun -np $TASKS --map-by ppr:1:node"
}

test_preempt() {
  start_cluster
  # 2 ranks of batch 4: 24 steps (one node) or 12 (two nodes, slower
  # steps) leave several seconds between the first step and the end of the
  # run (a signal that comes too late is reported as such).
  local epochs=${PREEMPT_RUN[0]} tiles=${PREEMPT_RUN[1]}
  make_data "$tiles" "${PREEMPT_RUN[2]}"
  set_da_args "$epochs"
  local total_steps=$((epochs * tiles / (4 * TASKS)))

  # The preempted run first (a job of the machine's 2 CPUs runs at a time).
  say "preempted run: $PREEMPT_SCRIPT ${NODE_OPTS[*]}, $epochs epochs ($total_steps steps)"
  submit "${NODE_OPTS[@]}" -- "$PREEMPT_SCRIPT" conf/demo.yaml "${DA_ARGS[@]}"
  local job=$JOB run=$TMP/runs/$JOB
  wait_for_line "$run/metrics.jsonl" '"kind": "step"' 90 "$job" "first training step"
  say "job $job trained a step; scancel --signal=USR1 --batch $job"
  scancel --signal=USR1 --batch "$job" || die "scancel --signal=USR1 --batch $job failed" "$job"
  wait_for_line "$run/slurm-attempts.log" "job $job restart 0 exit: " 60 "$job" "end of the first attempt"
  grep -q "job $job restart 0 exit: 75 (after SIGUSR1)\$" "$run/slurm-attempts.log" ||
    die "first attempt did not stop with 75 after SIGUSR1: $(grep 'restart 0 exit' "$run/slurm-attempts.log")" "$job"
  say "job $job exited 75; waiting for its requeued attempt"
  wait_job_end "$job" "$JOB_TIMEOUT"
  say "job $job: $JOB_STATE after $(job_field "$job" Restarts) restart(s)"
  local out=$TMP/out/job-$job.out stop_step
  stop_step=$(sed -n 's/.*\[rank 0\] .*preemption requested: stopping at global step \([0-9]*\).*/\1/p' "$out" | head -n 1)
  if [[ -z "$stop_step" ]]; then
    fail "rank 0 did not log 'preemption requested: stopping at global step N'"
  elif ((stop_step >= total_steps)); then
    fail "the signal came after the last step ($stop_step of $total_steps): nothing was resumed"
  else
    say "stopped at global step $stop_step of $total_steps"
  fi
  grep -q "requeueing job $job (restart 1)" "$out" || fail "the script did not requeue job $job"
  grep -qE "\\[rank 0\\] .*resumed from $run/checkpoints/last.pt: .*global step ${stop_step:-X}\$" "$out" ||
    fail "the second attempt did not log 'resumed from $run/checkpoints/last.pt: ... global step ${stop_step:-?}'"
  check_completed_run "$job" 1 "$epochs"

  say "uninterrupted run of the same configuration"
  submit "${NODE_OPTS[@]}" -- "$PREEMPT_SCRIPT" conf/demo.yaml "${DA_ARGS[@]}"
  local ref=$JOB
  wait_job_end "$ref" "$JOB_TIMEOUT"
  check_completed_run "$ref" 0 "$epochs"

  say "comparing checkpoints/last.pt of job $job (preempted) and job $ref (uninterrupted)"
  if "$python" "$HERE/compare_checkpoints.py" --tol 1e-6 "$run/checkpoints/last.pt" \
    "$TMP/runs/$ref/checkpoints/last.pt" > "$TMP/compare.log" 2>&1; then
    say "$(head -n 1 "$TMP/compare.log")"
  else
    head -n 30 "$TMP/compare.log" >&2
    echo "($(grep -c '^DIFF' "$TMP/compare.log") differing values in all)" >&2
    fail "the resumed run's final checkpoint differs from the uninterrupted run's"
  fi
}

# `sbatch --test-only` of each script: its directives are parsed and the
# job validated by slurmctld. The node has no GPUs and nproc CPUs, so the
# 8-GPU geometry is overridden. Without -N the multi-node scripts ask for
# their 2 nodes and are refused (their #SBATCH --nodes is in effect); with
# -N 1 all three are accepted.
test_test_only() {
  start_cluster
  local f
  for f in single_node.sbatch multi_node.sbatch multi_node_mpirun.sbatch; do
    if (cd "$SRC" && sbatch --test-only -N 1 "${GEOMETRY[@]}" "slurm/$f" conf/demo.yaml) > "$TMP/test_only.log" 2>&1 &&
      grep -q "to start at" "$TMP/test_only.log"; then
      say "slurm/$f -N 1: $(grep 'to start at' "$TMP/test_only.log")"
    else
      cat "$TMP/test_only.log" >&2
      fail "sbatch --test-only -N 1 slurm/$f"
    fi
    [[ "$f" == multi_node* ]] || continue
    if (cd "$SRC" && sbatch --test-only "${GEOMETRY[@]}" "slurm/$f" conf/demo.yaml) > "$TMP/test_only.log" 2>&1; then
      fail "sbatch --test-only slurm/$f was accepted on a one-node cluster: its #SBATCH --nodes=2 is not in effect"
    elif grep -q "node configuration is not available" "$TMP/test_only.log"; then
      say "slurm/$f (2 nodes): refused on one node, as it should be"
    else
      cat "$TMP/test_only.log" >&2
      fail "sbatch --test-only slurm/$f: refused for another reason than its 2 nodes"
    fi
  done
}

[[ -x "$DA_DIST_BIN" ]] || { echo "da_dist not found at $DA_DIST_BIN" >&2; exit 1; }
[[ -x "$DA_TILES_BIN" ]] || { echo "da_tiles not found at $DA_TILES_BIN" >&2; exit 1; }
case "$TEST" in
  run) test_run ;;
  preempt | preempt_two_nodes) test_preempt ;;
  test_only) test_test_only ;;
  run_two_nodes) test_run_two_nodes ;;
  *)
    echo "unknown test '$TEST'" >&2
    exit 2
    ;;
esac

if ((FAILURES > 0)); then
  echo "$TEST: $FAILURES check(s) failed" >&2
  exit 1
fi
say "$TEST: all checks passed"
