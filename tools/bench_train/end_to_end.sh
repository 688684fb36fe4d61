#!/bin/bash
# End-to-end training against PyTorch (issue #8): da_dist and the PyTorch peer
# (tools/bench_train/dataloader_peer.py: Dataset over h5py + DataLoader +
# DDP/gloo) on the same generated archives, np=1 and np=2, 1 thread per rank,
# REPEAT rounds; plus the compute-only limit of each (da_bench_step and the
# peer's --compute-only: the same step on one in-memory batch, no loader, no
# communication). Prints one Markdown table.
#
#   bash tools/bench_train/end_to_end.sh [BUILD_DIR]
#
# BUILD_DIR (default build/) needs src/da_dist, tools/da_tiles/da_tiles and
# tools/bench_train/da_bench_step; this script builds nothing. Environment
# knobs (defaults in brackets):
#   REPEAT [3]      rounds; each runs every configuration once, in turn
#   TILES [32]      training tiles per domain (`da_tiles synth --tiles`, 3 bands)
#   SIZE [256]      tile size; EPOCHS [2]: the last epoch is measured
#   BATCH [4]       per-rank batch (each domain); WORKERS [1]: loader workers
#                   (da_dist data.workers; the peer's DataLoader num_workers per domain)
#   ENCODER [resnet18]  or resnet34; STEPS [5]: compute-only timed steps (after 1 warm-up)
#   CHECK [1]       first run loss_check.sh (loss agreement, 4 tiles of 64x64); 0 skips it
#   RESULTS         also copy the raw results (TSV) there; `end_to_end.sh --summarize FILE`
#                   prints the table of such a file again
#   NPS ["1 2"]     rank counts (1 thread a rank; more ranks than cores are oversubscribed)
#   CALLER [0]      1: also run da_dist with dist.mpi_progress=caller ("da_dist-caller": gradient
#                   all-reduces progressed only by the main thread's MPI calls, the behaviour
#                   before the communication thread) at every rank count above 1
#   PEERS [1]       0: no PyTorch peer runs (da_dist rows only)
#   PEER_RETAIN [1] also run the peer as "pytorch-retain": the same script under
#                   GLIBC_TUNABLES equal to da_dist's run.host_allocator: retain
#                   (freed memory kept for reuse, see src/setup/host_allocator.h),
#                   which a PyTorch user can set too; 0 skips it
#   PYTHON [the project venv, .venv/bin/python]; WORK: keep the runs there (default: temporary)
# Exit status 1 when a run fails or its metrics are missing, 2 on missing binaries.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}

# results.tsv columns: impl mode np rep images_per_s step_s data_wait fwd_bwd comm_wait optimizer rss workers_rss
# (mode: e2e or compute; "nan" where a value does not apply).
summarize() {
"$PYTHON" - "$1" <<'PY'
import math, statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rows[(f[0], f[1], int(f[2]))].append([float(v) for v in f[4:]])
def med(key, i):
    vals = [r[i] for r in rows.get(key, []) if not math.isnan(r[i])]
    return statistics.median(vals) if vals else float("nan")
def fmt(v, spec=".3f"):
    return "-" if math.isnan(v) else format(v, spec)
impls = ("da_dist", "da_dist-caller", "pytorch", "pytorch-retain")
compute = {impl: med((impl, "compute", 1), 1) for impl in impls}
compute["da_dist-caller"] = compute["da_dist"]  # the same step; only the all-reduces' progress differs
def ratio(key, peer_impl):
    impl, mode, np_ = key
    peer = rows.get((peer_impl, mode, np_))
    if impl != "da_dist" or not peer:
        return "-"
    return f"{statistics.median(r[0] for r in rows[key]) / statistics.median(r[0] for r in peer):.2f}"
print()
print("| implementation | ranks | threads/rank | images/s median (min-max) | step s | data wait s | fwd+bwd s "
      "| comm wait s | optimizer s | peak RSS/rank MiB | end-to-end efficiency | da_dist/pytorch images/s "
      "| da_dist/pytorch-retain images/s |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
order = sorted(rows, key=lambda k: (k[1] != "e2e", impls.index(k[0]), k[2]))
for key in order:
    impl, mode, np_ = key
    ips = [r[0] for r in rows[key]]
    name = impl if mode == "e2e" else f"{impl} compute-only"
    step = med(key, 1)
    eff = fmt(compute[impl] / step, ".2f") if mode == "e2e" and not math.isnan(compute[impl]) else "-"
    comm = fmt(med(key, 4)) + (" (est., in fwd+bwd)" if impl.startswith("pytorch") and np_ > 1 else "")
    rss = fmt(med(key, 6), ".0f")
    if not math.isnan(med(key, 7)) and med(key, 7) > 0:
        rss += f" + {med(key, 7):.0f} workers"
    print(f"| {name} | {np_} | 1 | {statistics.median(ips):.2f} ({min(ips):.2f}-{max(ips):.2f}) | {fmt(step)} "
          f"| {fmt(med(key, 2))} | {fmt(med(key, 3))} | {comm} | {fmt(med(key, 5))} | {rss} | {eff} "
          f"| {ratio(key, 'pytorch')} | {ratio(key, 'pytorch-retain')} |")
print()
print("(images/s: source images of all ranks per second of the last epoch, loading included; times are per-step "
      "medians over the rounds; end-to-end efficiency = compute-only step s / end-to-end step s (same per-rank "
      "batch); the peer's fwd+bwd includes the all-reduces DDP waits for in backward, its comm wait is estimated "
      "from steps with and without no_sync(); pytorch-retain: the peer under GLIBC_TUNABLES equal to da_dist's "
      "run.host_allocator: retain)")
PY
}

if [[ ${1:-} == --summarize ]]; then summarize "$2"; exit; fi
build=$(cd "${1:-$root/build}" && pwd)
dadist=$build/src/da_dist tiles_bin=$build/tools/da_tiles/da_tiles step_bin=$build/tools/bench_train/da_bench_step
peer=$root/tools/bench_train/dataloader_peer.py
REPEAT=${REPEAT:-3} TILES=${TILES:-32} SIZE=${SIZE:-256} EPOCHS=${EPOCHS:-2} BATCH=${BATCH:-4}
WORKERS=${WORKERS:-1} ENCODER=${ENCODER:-resnet18} STEPS=${STEPS:-5} CHECK=${CHECK:-1} PEER_RETAIN=${PEER_RETAIN:-1}
source "$root/tools/bench/glibc_retain.sh"
NPS=${NPS:-1 2} CALLER=${CALLER:-0} PEERS=${PEERS:-1}
peers=()
if [[ $PEERS == 1 ]]; then peers+=(pytorch); fi
if [[ $PEERS == 1 && $PEER_RETAIN == 1 ]]; then peers+=(pytorch-retain); fi
for b in "$dadist" "$tiles_bin" "$step_bin"; do
  if [[ ! -x $b ]]; then
    echo "end_to_end: $b not found; build it with cmake --build $build --target da_dist da_tiles da_bench_step" >&2
    exit 2
  fi
done
if ! "$PYTHON" -c 'import torch, torchvision, h5py' 2>/dev/null; then
  echo "end_to_end: $PYTHON lacks torch/torchvision/h5py (set PYTHON)" >&2
  exit 2
fi
if [[ -n ${WORK:-} ]]; then
  mkdir -p "$WORK"; work=$(cd "$WORK" && pwd)
else
  work=$(mktemp -d /tmp/end_to_end.XXXXXX)
  trap 'rc=$?; if ((rc == 0)); then rm -rf "$work"; else echo "end_to_end: kept $work" >&2; fi' EXIT
fi
source "$root/tools/bench_train/snapshot.sh"
source "$root/tools/bench_train/bench_config.sh"
snapshot_binaries end_to_end "$build" "$work" "$dadist" "$tiles_bin" "$step_bin"
dadist=$work/bin/da_dist tiles_bin=$work/bin/da_tiles step_bin=$work/bin/da_bench_step
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
load() { cut -d' ' -f1-3 /proc/loadavg; }
fail() { echo "end_to_end: $*" >&2; exit 1; }

echo "# $(hostname): $(getconf _NPROCESSORS_ONLN) cores, $(date -u +%FT%TZ), load $(load)"
echo "# $TILES tiles of ${SIZE}x$SIZE (3 bands) per domain, $ENCODER, batch $BATCH per rank, $WORKERS loader" \
     "worker(s), $EPOCHS epochs (last measured), $REPEAT rounds, 1 thread per rank, work dir $work"
if [[ $CHECK == 1 ]]; then
  echo "## loss agreement (loss_check.sh: $ENCODER, 4 tiles of 64x64, 3 steps)"
  WORK=$work/loss_check ENCODER=$ENCODER TILES=4 SIZE=64 STEPS=3 bash "$root/tools/bench_train/loss_check.sh" "$build" \
    || fail "loss agreement check failed (files in $work/loss_check)"
fi

cd "$work"
"$tiles_bin" synth --out data --tiles "$TILES" --val-tiles 8 --size "$SIZE" --seed 0 >/dev/null
# conf/demo.yaml's job without augmentation (the peer has none).
write_bench_config bench.yaml bench "$EPOCHS" "$BATCH" "$WORKERS" "$ENCODER" false 1000

results=$work/results.tsv
: >"$results"
# key=value of a RESULT line ("nan" when absent).
field() { local v; v=$(sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"); echo "${v:-nan}"; }

run_dadist() {  # np rep [progress]: progress "caller" runs it as da_dist-caller
  local np=$1 rep=$2 progress=${3:-auto} impl=da_dist name="dd_np$1_r$2"
  if [[ $progress == caller ]]; then impl=da_dist-caller name="ddc_np$1_r$2"; fi
  "${mpirun[@]}" -np "$np" -x OMP_NUM_THREADS -x LD_LIBRARY_PATH "$dadist" --config bench.yaml \
    --set run.name="$name" --set dist.mpi_progress="$progress" >"$name.log" 2>&1 \
    || { tail -20 "$name.log" >&2; fail "$impl np=$np failed (log: $work/$name.log)"; }
  "$PYTHON" - "runs/$name/metrics.jsonl" "$EPOCHS" "$np" "$rep" "$impl" >>"$results" <<'PY' || fail "$impl np=$np: metrics missing"
import json, sys
path, epochs, np_, rep, impl = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ep = [json.loads(l) for l in open(path) if l.strip() and json.loads(l).get("kind") == "epoch"]
if len(ep) < epochs:
    sys.exit(f"{path}: {len(ep)} epoch lines, expected {epochs}")
m = {}
for k, v in ep[-1].items():
    m.update(v if isinstance(v, dict) else {k: v})
keys = ("time/images_per_s", "time/step_s", "time/data_wait_s", "time/forward_backward_s", "time/comm_wait_s",
        "time/optimizer_s", "time/peak_rss_mb")
missing = [k for k in keys if k not in m]
if missing:
    sys.exit(f"{path}: last epoch line lacks {missing}")
print("\t".join([impl, "e2e", np_, rep] + [f"{float(m[k]):.6f}" for k in keys] + ["nan"]))
PY
  echo "  $impl np=$np: $(tail -1 "$results" | cut -f5) images/s (load $(load))"
}

# GLIBC_TUNABLES for a peer: none for pytorch, da_dist's settings for pytorch-retain.
tunables_of() { if [[ $1 == pytorch-retain ]]; then echo "$retain_tunables"; fi; }

run_peer() {  # impl np rep
  local impl=$1 np=$2 rep=$3 name="${1}_np$2_r$3" r
  GLIBC_TUNABLES=$(tunables_of "$impl") "${mpirun[@]}" -np "$np" -x OMP_NUM_THREADS -x GLIBC_TUNABLES \
    -x MASTER_ADDR=127.0.0.1 -x MASTER_PORT=$((29500 + RANDOM % 2000)) \
    "$PYTHON" "$peer" --source data/source_train.h5 --target data/target_train.h5 --batch "$BATCH" \
    --epochs "$EPOCHS" --workers "$WORKERS" --threads 1 --encoder "$ENCODER" >"$name.log" 2>&1 \
    || { tail -20 "$name.log" >&2; fail "$impl peer np=$np failed (log: $work/$name.log)"; }
  r=$(grep '^RESULT ' "$name.log" | tail -1) || fail "$impl peer np=$np printed no RESULT (log: $work/$name.log)"
  printf '%s\te2e\t%s\t%s' "$impl" "$np" "$rep" >>"$results"
  for k in images_per_s step_s data_wait_s forward_backward_s comm_wait_s optimizer_s peak_rss_mb workers_rss_mb; do
    printf '\t%s' "$(field "$r" "$k")" >>"$results"
  done
  printf '\n' >>"$results"
  echo "  $impl np=$np: $(field "$r" images_per_s) images/s (load $(load))"
}

run_compute() {  # rep
  local r
  "$step_bin" --config bench.yaml --steps "$STEPS" --warmup 1 >"co_dd_r$1.log" 2>&1 \
    || { tail -20 "co_dd_r$1.log" >&2; fail "da_bench_step failed"; }
  r=$(grep '^RESULT ' "co_dd_r$1.log")
  printf 'da_dist\tcompute\t1\t%s\t%s\t%s\tnan\t%s\tnan\t%s\t%s\tnan\n' "$1" "$(field "$r" images_per_s)" \
    "$(field "$r" step_s)" "$(field "$r" forward_backward_s)" "$(field "$r" optimizer_s)" "$(field "$r" peak_rss_mb)" >>"$results"
  local impl log
  for impl in "${peers[@]}"; do
    log=co_${impl}_r$1.log
    GLIBC_TUNABLES=$(tunables_of "$impl") "$PYTHON" "$peer" --source data/source_train.h5 \
      --target data/target_train.h5 --batch "$BATCH" --epochs "$EPOCHS" --workers 0 --threads 1 \
      --encoder "$ENCODER" --compute-only --steps "$STEPS" --warmup 1 >"$log" 2>&1 \
      || { tail -20 "$log" >&2; fail "the $impl peer's --compute-only failed"; }
    r=$(grep '^RESULT ' "$log")
    printf '%s\tcompute\t1\t%s\t%s\t%s\tnan\t%s\tnan\t%s\t%s\tnan\n' "$impl" "$1" "$(field "$r" images_per_s)" \
      "$(field "$r" step_s)" "$(field "$r" forward_backward_s)" "$(field "$r" optimizer_s)" \
      "$(field "$r" peak_rss_mb)" >>"$results"
    echo "  compute-only: $impl $(field "$r" step_s) s/step (load $(load))"
  done
  echo "  compute-only: da_dist $(grep '^da_dist.compute' "$results" | tail -1 | cut -f6) s/step"
}

for ((rep = 1; rep <= REPEAT; rep++)); do
  echo "round $rep/$REPEAT ($(date -u +%T), load $(load))"
  for np in $NPS; do
    run_dadist "$np" "$rep"
    if [[ $CALLER == 1 && $np -gt 1 ]]; then run_dadist "$np" "$rep" caller; fi
    for impl in "${peers[@]}"; do run_peer "$impl" "$np" "$rep"; done
  done
  run_compute "$rep"
done
echo "# done $(date -u +%FT%TZ), load $(load)"
summarize "$results"
if [[ -n ${RESULTS:-} ]]; then cp "$results" "$RESULTS"; fi
