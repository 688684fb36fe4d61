#!/bin/bash
# da_dist across "hosts" made of network namespaces on this machine
# (tests/hosts/hosts.sh): ranks in different namespaces reach each other only
# over TCP (Open MPI's tcp transport; no shared memory: btl tcp,self), mpirun
# starts its daemons in them through hosts.sh's launch agent.
#
#   test_hosts.sh SOURCE_DIR DA_DIST DA_TILES equal|kill|cut|stop|checkpoint_kill
#
#   equal            2 hosts x 2 ranks train exactly the model of 1 host x 4
#                    ranks (shared memory): final checkpoints bit for bit.
#   kill             SIGKILL of a rank on host 2 mid-epoch: mpirun exits
#                    non-zero within 30 s naming the rank and the host; the
#                    last checkpoint resumes and ends where an uninterrupted
#                    run ends.
#   cut              host 2's link goes down mid-training: mpirun (keepalive
#                    as in slurm/common.sh) names the lost node and the job
#                    ends within 35 s.
#   stop             SIGSTOP of rank 2 (dist.timeout_s=10): the other ranks
#                    time out, name rank 2 and its host as silent, and the
#                    job ends within 30 s.
#   checkpoint_kill  SIGKILL of rank 0 while it writes a checkpoint (its
#                    temporary file seen): the previous checkpoint loads and
#                    the run resumes from it to the end.
#
# Exit status 0 when every check passed, 1 with messages, 77 (ctest's skip
# code) where namespaces cannot be made (not root, no iproute2, a container
# without CAP_NET_ADMIN).
set -uo pipefail

SRC=$(cd "${1:?usage: test_hosts.sh SOURCE_DIR DA_DIST DA_TILES TEST}" && pwd)
DA_DIST_BIN=$(realpath -e "${2:?DA_DIST}") || exit 1
DA_TILES_BIN=$(realpath -e "${3:?DA_TILES}") || exit 1
TEST=${4:?TEST}
HOSTS=$SRC/tests/hosts/hosts.sh
python=${PYTHON:-$SRC/.venv/bin/python}
COMPARE=$SRC/tests/slurm/compare_checkpoints.py
# One namespace set per test, so the four can run at the same time.
case "$TEST" in
  equal) ID=11 ;; kill) ID=12 ;; cut) ID=13 ;; stop) ID=14 ;; checkpoint_kill) ID=15 ;;
  *) echo "unknown test '$TEST'" >&2; exit 2 ;;
esac
NET=10.$((100 + ID)).0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/da_hosts_test.XXXXXX")
FAILURES=0

cleanup() {
  bash "$HOSTS" down "$ID" 2
  [[ -n "${DA_HOSTS_KEEP:-}" ]] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=$SECONDS
say() { echo "[$((SECONDS - t_start))s] $*"; }
fail() {
  echo "FAIL [$TEST]: $*" >&2
  FAILURES=$((FAILURES + 1))
}
die() {
  fail "$1"
  exit 1
}

if [[ $(id -u) != 0 ]] || ! command -v ip > /dev/null; then
  echo "test_hosts.sh: needs root and iproute2 for network namespaces; skipped" >&2
  exit 77
fi
rc=0
bash "$HOSTS" up "$ID" 2 || rc=$?
((rc == 77)) && { echo "test_hosts.sh: cannot make network namespaces here; skipped" >&2; exit 77; }
((rc == 0)) || die "hosts.sh up failed ($rc)"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# 2 hosts x 2 ranks over TCP: the daemons started in the namespaces by the
# agent; mpirun's own (out-of-band) traffic and MPI's both on the bridge;
# the keepalive of slurm/common.sh (a lost daemon noticed within 25 s).
ACROSS_HOSTS=(mpirun -np 4 --host "$NET.1:2,$NET.2:2" --mca plm_rsh_agent "$HOSTS agent"
  --mca oob_tcp_if_include "$NET.0/24" --mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 5
  --mca oob_tcp_keepalive_probes 3 --mca btl tcp,self --mca btl_tcp_if_include "$NET.0/24" --mca pml ob1
  -x OMP_NUM_THREADS=1)
ONE_HOST=(mpirun -np 4 --oversubscribe -x OMP_NUM_THREADS=1)

"$DA_TILES_BIN" synth --out "$TMP/data" --tiles 32 --val-tiles 8 --size 32 --seed 0 > "$TMP/synth.log" 2>&1 ||
  { cat "$TMP/synth.log" >&2; die "da_tiles synth failed"; }
# conf/demo.yaml on the tiny data: the tiny encoder, batch 2 per rank (4
# steps an epoch on 4 ranks), no loader threads, a log line per step.
da_args() {  # da_args EPOCHS RUN_DIR [MORE --set VALUES...]
  local d=$TMP/data epochs=$1 out=$2
  shift 2
  printf '%s\n' --config "$SRC/conf/demo.yaml" --set "run.max_epochs=$epochs" --set model.encoder=tiny \
    --set data.batch_size=2 --set data.workers=0 --set run.log_every_n_steps=1 --set logging.progress=false \
    --set "data.source.train=[$d/source_train.h5]" --set "data.source.val=[$d/source_val.h5]" \
    --set "data.target.train=[$d/target_train.h5]" --set "data.target.val=[$d/target_val.h5]" \
    --set "run.output_dir=$out"
  local s
  for s in "$@"; do printf '%s\n' --set "$s"; done
}
# train LOG LAUNCHER... -- DA_ARGS...: runs in the foreground, output to LOG.
train() {
  local log=$1
  shift
  "$@" > "$log" 2>&1
}
same_checkpoints() {  # same_checkpoints A B TOL WHAT
  if "$python" "$COMPARE" --tol "$3" "$1" "$2" > "$TMP/compare.log" 2>&1; then
    say "$4: $(grep "tensors and numbers" "$TMP/compare.log")"
  else
    head -n 20 "$TMP/compare.log" >&2
    fail "$4: the checkpoints differ"
  fi
}
# Waits until FILE has a line matching REGEX (while PID runs).
wait_for_line() {  # wait_for_line FILE REGEX TIMEOUT PID WHAT
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    grep -qE -- "$2" "$1" 2> /dev/null && return 0
    kill -0 "$4" 2> /dev/null || { tail -n 30 "$1" >&2; die "the job ended before $5"; }
    sleep 0.1
  done
  tail -n 30 "$1" >&2
  die "no $5 within $3 s"
}
# The da_dist processes in host I's namespace.
pids_on_host() { ip netns pids "da${ID}h$1" | while read -r p; do [[ "$(cat "/proc/$p/comm" 2> /dev/null)" == da_dist ]] && echo "$p"; done; }

test_equal() {
  say "1 host x 4 ranks (shared memory), 2 epochs"
  mapfile -t args < <(da_args 2 "$TMP/one")
  train "$TMP/one.log" "${ONE_HOST[@]}" "$DA_DIST_BIN" "${args[@]}" ||
    { tail -n 30 "$TMP/one.log" >&2; die "the one-host run failed"; }
  say "2 hosts x 2 ranks (TCP between namespaces), 2 epochs"
  mapfile -t args < <(da_args 2 "$TMP/two")
  train "$TMP/two.log" "${ACROSS_HOSTS[@]}" "$DA_DIST_BIN" "${args[@]}" ||
    { tail -n 30 "$TMP/two.log" >&2; die "the two-host run failed"; }
  local r host
  for r in 0 1 2 3; do
    host=$(sed -n "s/.*rank $r of 4 on host \([^ ]*\) .*/\1/p" "$TMP/two/demo/logs/rank-$r.log" | head -n 1)
    [[ "$host" == "da${ID}h$((r / 2 + 1))" ]] || fail "rank $r ran on host '$host', not da${ID}h$((r / 2 + 1))"
  done
  same_checkpoints "$TMP/one/demo/checkpoints/last.pt" "$TMP/two/demo/checkpoints/last.pt" 0 \
    "2 hosts x 2 ranks against 1 host x 4"
}

# start_job LOG ARGS...: the two-host job in the background (JOB_PID).
start_job() {
  local log=$1
  shift
  "${ACROSS_HOSTS[@]}" "$DA_DIST_BIN" "$@" > "$log" 2>&1 &
  JOB_PID=$!
}
# wait_job LIMIT: waits at most LIMIT s for the job; JOB_RC its status, JOB_S how long it took.
wait_job() {
  local start=$SECONDS
  while kill -0 "$JOB_PID" 2> /dev/null && ((SECONDS - start < $1)); do sleep 0.1; done
  if kill -0 "$JOB_PID" 2> /dev/null; then
    pkill -9 -P "$JOB_PID"
    kill -9 "$JOB_PID"
    wait "$JOB_PID"
    JOB_RC=hung
  else
    wait "$JOB_PID"
    JOB_RC=$?
  fi
  JOB_S=$((SECONDS - start))
}
SECOND_EPOCH='"kind": ?"step", ?"epoch": ?1,'
# expect_failed_within LIMIT WHY: waits for the job (60 s at most); it must
# have ended non-zero within LIMIT seconds (WHY: what the limit is made of).
expect_failed_within() {
  wait_job 60
  say "the job ended after $JOB_S s with status $JOB_RC"
  [[ "$JOB_RC" != hung && "$JOB_RC" != 0 ]] || fail "the job's status is $JOB_RC, expected it to end non-zero"
  ((JOB_S <= $1)) || fail "the job took $JOB_S s to end, more than $1 ($2)"
}

test_kill() {
  say "uninterrupted reference: 2 hosts x 2 ranks, 4 epochs"
  mapfile -t args < <(da_args 4 "$TMP/reference")
  train "$TMP/reference.log" "${ACROSS_HOSTS[@]}" "$DA_DIST_BIN" "${args[@]}" ||
    { tail -n 30 "$TMP/reference.log" >&2; die "the reference run failed"; }
  mapfile -t args < <(da_args 4 "$TMP/killed" dist.timeout_s=60)
  start_job "$TMP/killed.log" "${args[@]}"
  wait_for_line "$TMP/killed/demo/metrics.jsonl" "$SECOND_EPOCH" 120 "$JOB_PID" "a step of the second epoch"
  local victim
  victim=$(pids_on_host 2 | head -n 1)
  [[ -n "$victim" ]] || die "no da_dist process in host 2's namespace"
  say "SIGKILL of da_dist pid $victim on host da${ID}h2"
  kill -9 "$victim"
  expect_failed_within 30 "the issue's bound for a lost rank"
  local named
  named=$(grep -E "rank [23]\b.*(da${ID}h2|$NET\.2)" "$TMP/killed.log" | head -n 1)
  [[ -n "$named" ]] || { tail -n 20 "$TMP/killed.log" >&2; fail "the output names neither the rank nor the host that went"; }
  say "named: $named"
  say "resuming from the last checkpoint (--resume auto)"
  mapfile -t args < <(da_args 4 "$TMP/killed")
  train "$TMP/resumed.log" "${ACROSS_HOSTS[@]}" "$DA_DIST_BIN" "${args[@]}" --resume auto ||
    { tail -n 30 "$TMP/resumed.log" >&2; die "the resumed run failed"; }
  grep -q "resumed from $TMP/killed/demo/checkpoints/last.pt" "$TMP/resumed.log" || fail "the run did not resume from last.pt"
  same_checkpoints "$TMP/reference/demo/checkpoints/last.pt" "$TMP/killed/demo/checkpoints/last.pt" 0 \
    "resumed after the kill against uninterrupted"
}

test_cut() {
  # dist.timeout_s is longer than mpirun's keepalive (at most 25 s, as in
  # slurm/common.sh), as it must be: mpirun notices the lost daemon, names its
  # node and ends the job. (A rank that times out first would abort the job
  # through mpirun, whose kill order to the lost daemon then waits on TCP
  # retransmissions for many minutes.)
  mapfile -t args < <(da_args 40 "$TMP/cut" dist.timeout_s=60)
  start_job "$TMP/cut.log" "${args[@]}"
  wait_for_line "$TMP/cut/demo/metrics.jsonl" "$SECOND_EPOCH" 120 "$JOB_PID" "a step of the second epoch"
  say "cutting host da${ID}h2's link"
  bash "$HOSTS" cut "$ID" 2
  expect_failed_within 35 "mpirun's keepalive, 25 s, + 10"
  local named
  named=$(grep -E "Remote daemon: .* on node $NET\.2\b" "$TMP/cut.log" | head -n 1)
  [[ -n "$named" ]] || { tail -n 30 "$TMP/cut.log" >&2; fail "mpirun did not name the lost node $NET.2"; }
  say "named: ${named## }"
}

test_stop() {
  # A rank that stops answering while its host stays up (SIGSTOP: as one
  # hung in a driver): no launcher notices; the others time out, probe, and
  # name it; their abort ends the job (the host's daemon kills the rank).
  mapfile -t args < <(da_args 40 "$TMP/stop" dist.timeout_s=10)
  start_job "$TMP/stop.log" "${args[@]}"
  wait_for_line "$TMP/stop/demo/metrics.jsonl" "$SECOND_EPOCH" 120 "$JOB_PID" "a step of the second epoch"
  local rank2
  rank2=$(sed -n 's/.*rank 2 of 4 on host .* (pid \([0-9]*\)).*/\1/p' "$TMP/stop/demo/logs/rank-2.log" | head -n 1)
  [[ -n "$rank2" ]] || rank2=$(pids_on_host 2 | head -n 1)
  say "SIGSTOP of rank 2 (pid $rank2)"
  kill -STOP "$rank2"
  expect_failed_within 30 "dist.timeout_s 10 + the probe 5 + 15"
  local named
  named=$(grep -E "timed out after 10 s on rank [013] .*; no answer within 5 s from rank 2 on host da${ID}h2" \
    "$TMP/stop.log" | sed 's/.*da_dist: /da_dist: /' | head -n 1)
  [[ -n "$named" ]] || { tail -n 30 "$TMP/stop.log" >&2; fail "no rank named rank 2 on host da${ID}h2 as silent"; }
  say "named: $named"
}

test_checkpoint_kill() {
  # ResNet-18: a checkpoint of about 130 MB (weights and momentum) takes long
  # enough to write that the write is seen. The kill can still land just
  # after the rename (the watcher saw the temporary file a moment before):
  # then the run resumes and the next write is tried, up to 3 times.
  local attempt resume=() caught=""
  for attempt in 1 2 3; do
    mapfile -t args < <(da_args 6 "$TMP/ckpt" model.encoder=resnet18)
    rm -f "$TMP/ckpt/demo/logs/rank-0.log"
    start_job "$TMP/ckpt-$attempt.log" "${args[@]}" "${resume[@]}"
    wait_for_line "$TMP/ckpt/demo/logs/rank-0.log" "rank 0 of 4 on host" 120 "$JOB_PID" "rank 0's start"
    local rank0
    rank0=$(sed -n 's/.*rank 0 of 4 on host .* (pid \([0-9]*\)).*/\1/p' "$TMP/ckpt/demo/logs/rank-0.log" | head -n 1)
    "$python" "$SRC/tests/hosts/kill_during_write.py" "$TMP/ckpt/demo/checkpoints" "$rank0" 240 > "$TMP/watch.log" 2>&1 ||
      { cat "$TMP/watch.log" >&2; wait_job 5; die "rank 0 was not caught writing a checkpoint"; }
    say "$(cat "$TMP/watch.log")"
    expect_failed_within 60 "a rank killed"
    if ls "$TMP/ckpt/demo/checkpoints" | grep -q '\.tmp\.'; then
      caught=yes
      break
    fi
    say "no unfinished temporary file: the kill came just after the write; again"
    resume=(--resume auto)
  done
  [[ -n "$caught" ]] || die "rank 0 was never killed in the middle of a checkpoint write in 3 attempts"
  local f
  for f in "$TMP"/ckpt/demo/checkpoints/*.pt; do
    "$python" "$COMPARE" "$f" "$f" > /dev/null 2>&1 || fail "$(basename "$f") does not load after the kill"
  done
  say "every finished checkpoint loads: $(cd "$TMP/ckpt/demo/checkpoints" && echo *.pt)"
  mapfile -t args < <(da_args 6 "$TMP/ckpt" model.encoder=resnet18)
  train "$TMP/resumed.log" "${ACROSS_HOSTS[@]}" "$DA_DIST_BIN" "${args[@]}" --resume auto ||
    { tail -n 30 "$TMP/resumed.log" >&2; die "the run did not resume from the previous checkpoint"; }
  grep -q "resumed from $TMP/ckpt/demo/checkpoints/last.pt" "$TMP/resumed.log" || fail "the run did not resume from last.pt"
  grep -qE '"kind": ?"epoch", ?"epoch": ?5,' "$TMP/ckpt/demo/metrics.jsonl" || fail "the resumed run did not reach epoch 5"
}

case "$TEST" in
  equal) test_equal ;;
  kill) test_kill ;;
  cut) test_cut ;;
  stop) test_stop ;;
  checkpoint_kill) test_checkpoint_kill ;;
esac
if ((FAILURES > 0)); then
  echo "$TEST: $FAILURES check(s) failed" >&2
  exit 1
fi
say "$TEST: all checks passed"
