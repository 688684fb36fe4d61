#!/bin/bash
# Weak scaling of a DANN training step (issue #6): images/s of da_dist with
# np=1 (1 and 2 intra-op threads) and np=2 (1 thread per rank), the share of
# the epoch spent waiting for the gradient all-reduces, and the same runs of a
# PyTorch DDP peer (tools/bench_train/ddp_dann_peer.py) on the same archives.
#
#   bash tools/bench_train/weak_scaling.sh [BUILD_DIR]
#
# BUILD_DIR defaults to build/ (needs src/da_dist and tools/da_tiles/da_tiles;
# this script builds nothing). Environment knobs (defaults in brackets):
#   REPEAT [3]   rounds; each round runs every configuration once, in turn
#   TILES [128]  training tiles per domain (`da_tiles synth --tiles`)
#   SIZE [64]    tile size; EPOCHS [2]: the last epoch is measured, the first is warm-up
#   BATCH [8]    per-rank batch (each domain); PEER [1]: 0 skips the PyTorch peer
#   RESULTS      also copy the raw results (TSV) there; `weak_scaling.sh --summarize FILE`
#                prints the table of such a file again
#   DA_DIST_ARGS  extra da_dist arguments (e.g. --set data.workers=2)
#   PYTHON [the project venv, .venv/bin/python] with torch, torchvision, h5py; WORK: keep runs there
#                (default: a temporary directory, removed at exit)
# Exit status 1 when a da_dist or peer run exits non-zero or its metrics are
# missing (no time/images_per_s, time/comm_wait_share in the last epoch line of
# metrics.jsonl, or fewer epoch lines than EPOCHS), 2 on missing binaries.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}
summarize() {  # results.tsv batch: print the table
"$PYTHON" - "$1" "$2" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    impl, np_, th, rep, ips, share, step, cpu = line.rstrip("\n").split("\t")
    rows[(impl, int(np_), int(th))].append((float(ips), float(share), float(step), float(cpu)))
batch = sys.argv[2]
med = {k: statistics.median(v[0] for v in vals) for k, vals in rows.items()}
best = {k: max(v[0] for v in vals) for k, vals in rows.items()}
def fmt_share(vals):
    s = [v[1] for v in vals if v[1] == v[1]]  # drop nan
    return f"{statistics.median(s):.3f}" if s else "-"
print()
print("| implementation | ranks | threads/rank | per-rank batch | images/s best | images/s median "
      "| step s (median) | scaling efficiency best / median | comm wait share (median) | CPU/wall (median) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for key in sorted(rows, key=lambda k: (k[0] != "da_dist", k[1], k[2])):
    impl, np_, th = key
    vals = rows[key]
    base = med.get((impl, 1, th))
    bbase = best.get((impl, 1, th))
    eff = f"{best[key] / (np_ * bbase):.2f} / {med[key] / (np_ * base):.2f}" if np_ > 1 and base else "-"
    share = fmt_share(vals) if np_ > 1 else "-"
    print(f"| {impl} | {np_} | {th} | {batch} | {max(v[0] for v in vals):.2f} | {med[key]:.2f} "
          f"| {statistics.median(v[2] for v in vals):.3f} | {eff} | {share} "
          f"| {statistics.median(v[3] for v in vals):.2f} |")
print()
for impl in ("da_dist", "pytorch"):
    a, b = med.get((impl, 2, 1)), med.get((impl, 1, 2))
    if a and b:
        print(f"{impl}: np=2 x 1 thread / np=1 x 2 threads (same 2 cores) = "
              f"{best[(impl, 2, 1)] / best[(impl, 1, 2)]:.2f} best, {a / b:.2f} median")
a, b = med.get(("da_dist", 1, 1)), med.get(("pytorch", 1, 1))
if a and b:
    print(f"da_dist / pytorch at np=1 x 1 thread = {a / b:.2f}")
print("(images/s: source images of all ranks per second of the last epoch, loading included; "
      "efficiency and ratios from best and median runs; comm wait share: da_dist time/comm_wait_share, "
      "pytorch (t_step - t_step_no_sync) / t_step)")
PY
}

if [[ ${1:-} == --summarize ]]; then summarize "$2" "${3:-${BATCH:-8}}"; exit; fi
build=$(cd "${1:-$root/build}" && pwd)
dadist=$build/src/da_dist
tiles_bin=$build/tools/da_tiles/da_tiles
peer=$root/tools/bench_train/ddp_dann_peer.py
PYTHON=${PYTHON:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}
REPEAT=${REPEAT:-3} TILES=${TILES:-128} SIZE=${SIZE:-64} EPOCHS=${EPOCHS:-2} BATCH=${BATCH:-8} PEER=${PEER:-1}
for b in "$dadist" "$tiles_bin"; do
  if [[ ! -x "$b" ]]; then
    echo "weak_scaling: $b not found; build it with cmake --build $build --target da_dist da_tiles" >&2
    exit 2
  fi
done
if [[ $PEER == 1 ]] && ! "$PYTHON" -c 'import torch, torchvision, h5py' 2>/dev/null; then
  echo "weak_scaling: $PYTHON lacks torch/torchvision/h5py (set PYTHON, or PEER=0)" >&2
  exit 2
fi

if [[ -n ${WORK:-} ]]; then
  mkdir -p "$WORK"; work=$(cd "$WORK" && pwd)
else
  work=$(mktemp -d /tmp/bench_train.XXXXXX)
  trap 'rc=$?; if ((rc == 0)); then rm -rf "$work"; else echo "weak_scaling: kept $work" >&2; fi' EXIT
fi
# Run copies of the binaries and libraries (snapshot.sh says why).
source "$root/tools/bench_train/snapshot.sh"
source "$root/tools/bench_train/bench_config.sh"
snapshot_binaries weak_scaling "$build" "$work" "$dadist" "$tiles_bin"
dadist=$work/bin/da_dist tiles_bin=$work/bin/da_tiles
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# --bind-to none: Open MPI binds each rank to one core by default for np <= 2,
# which would leave a 2-thread rank one core.
mpirun=(mpirun --oversubscribe --bind-to none)

cd "$work"
"$tiles_bin" synth --out data --tiles "$TILES" --val-tiles 8 --size "$SIZE" --seed 0 >/dev/null
write_bench_config bench.yaml bench "$EPOCHS" "$BATCH" 1 resnet18 true 1000

results=$work/results.tsv   # impl np threads rep images_per_s comm_share step_s cpu_per_wall
# CPU time of all the run's processes over its wall time (whole run, start-up
# and warm-up included): how many cores the run actually got.
timed() { /usr/bin/time -o "$work/time.txt" -f '%e %U %S' "$@"; }
cpu_per_wall() { awk '{ printf "%.2f", ($2 + $3) / ($1 > 0 ? $1 : 1) }' "$work/time.txt"; }
: >"$results"
fail() { echo "weak_scaling: $*" >&2; exit 1; }

run_dadist() {  # np threads rep
  local np=$1 th=$2 rep=$3 name="dd_np$1_t$2_r$3"
  local log=$work/$name.log
  if ! timed "${mpirun[@]}" -np "$np" -x OMP_NUM_THREADS="$th" -x LD_LIBRARY_PATH "$dadist" --config bench.yaml \
      --set run.name="$name" --set run.threads="$th" ${DA_DIST_ARGS:-} >"$log" 2>&1; then
    tail -20 "$log" >&2
    fail "da_dist np=$np threads=$th exited non-zero (log: $log)"
  fi
  local m=runs/$name/metrics.jsonl
  [[ -s $m ]] || fail "da_dist np=$np threads=$th wrote no $m"
  "$PYTHON" - "$m" "$EPOCHS" "$np" "$th" "$rep" "$(cpu_per_wall)" >>"$results" <<'PY' || fail "da_dist np=$np threads=$th: metrics missing in $m"
import json, sys
path, epochs, np_, th, rep, cpu = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
lines = [json.loads(l) for l in open(path) if l.strip()]
ep = [l for l in lines if l.get("kind") == "epoch"]
if len(ep) < epochs:
    sys.exit(f"{path}: {len(ep)} epoch lines, expected {epochs}")
last = ep[-1]
flat = dict(last)
for v in last.values():          # accept the metrics at top level or under a nested object
    if isinstance(v, dict):
        flat.update(v)
try:
    ips, share, step = (float(flat[k]) for k in ("time/images_per_s", "time/comm_wait_share", "time/step_s"))
except KeyError as e:
    sys.exit(f"{path}: last epoch line lacks {e}: {json.dumps(last)[:300]}")
if not ips > 0:
    sys.exit(f"{path}: time/images_per_s = {ips}")
print(f"da_dist\t{np_}\t{th}\t{rep}\t{ips:.4f}\t{share:.4f}\t{step:.4f}\t{cpu}")
PY
  echo "  da_dist np=$np threads=$th: $(tail -1 "$results" | cut -f5) images/s, comm wait share $(tail -1 "$results" | cut -f6), CPU/wall $(cpu_per_wall)"
}

run_peer() {  # np threads rep
  local np=$1 th=$2 rep=$3 name="py_np$1_t$2_r$3"
  local log=$work/$name.log port=$((29500 + RANDOM % 2000))
  if ! timed "${mpirun[@]}" -np "$np" -x OMP_NUM_THREADS="$th" -x MASTER_ADDR=127.0.0.1 -x MASTER_PORT=$port \
      "$PYTHON" "$peer" --source data/source_train.h5 --target data/target_train.h5 \
      --batch "$BATCH" --epochs "$EPOCHS" --threads "$th" >"$log" 2>&1; then
    tail -20 "$log" >&2
    fail "PyTorch peer np=$np threads=$th exited non-zero (log: $log)"
  fi
  local r
  r=$(grep '^RESULT ' "$log" | tail -1) || fail "PyTorch peer np=$np threads=$th printed no RESULT (log: $log)"
  local ips share step
  ips=$(sed -n 's/.*images_per_s=\([^ ]*\).*/\1/p' <<<"$r")
  share=$(sed -n 's/.*comm_share=\([^ ]*\).*/\1/p' <<<"$r")
  step=$(sed -n 's/.*step_s=\([^ ]*\).*/\1/p' <<<"$r")
  [[ -n $ips && $ips != nan ]] || fail "PyTorch peer np=$np threads=$th: no images/s (log: $log)"
  printf 'pytorch\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$np" "$th" "$rep" "$ips" "$share" "$step" "$(cpu_per_wall)" >>"$results"
  echo "  pytorch np=$np threads=$th: $ips images/s, comm share $share, CPU/wall $(cpu_per_wall)"
}

configs=("1 1" "1 2" "2 1")
echo "# $(hostname): $(getconf _NPROCESSORS_ONLN) cores, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $TILES tiles of ${SIZE}x$SIZE per domain, batch $BATCH per rank, $EPOCHS epochs (last measured), $REPEAT rounds, work dir $work"
for ((rep = 1; rep <= REPEAT; rep++)); do
  echo "round $rep/$REPEAT ($(date -u +%T), load $(cut -d' ' -f1 /proc/loadavg))"
  for c in "${configs[@]}"; do
    run_dadist $c "$rep"
    if [[ $PEER == 1 ]]; then run_peer $c "$rep"; fi
  done
done
echo "# done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"

summarize "$results" "$BATCH"
if [[ -n ${RESULTS:-} ]]; then cp "$results" "$RESULTS"; fi
