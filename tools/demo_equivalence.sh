#!/usr/bin/env bash
# The demo under mpirun with 2 ranks (batch 8 each, dist.sync_bn) against one
# process with batch 16, and, as the noise floor, the same one-process run
# with another intra-op thread count (which changes only the order of
# floating-point sums). Prints the epoch metrics of the three runs and the
# largest differences.
#   bash tools/demo_equivalence.sh [--set key=value ...]
# (after tools/demo.sh has built da_dist). Extra arguments go to all runs.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-runs/equivalence}
DA_DIST="$BUILD_DIR"/src/da_dist
[ -f data/demo/target_val.h5 ] || "$BUILD_DIR"/tools/da_tiles/da_tiles synth --out data/demo --seed 0
rm -rf "$OUT"
one_rank() {  # name threads
  "$DA_DIST" --config conf/demo.yaml --set run.output_dir="$OUT" --set run.name="$1" \
    --set data.batch_size=16 --set run.threads="$2" "${@:3}" >/dev/null
}
one_rank np1_batch16 2 "$@"
one_rank np1_batch16_1thread 1 "$@"
mpirun -np 2 --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1 \
  "$DA_DIST" --config conf/demo.yaml --set run.output_dir="$OUT" --set run.name=np2_batch8 \
  --set run.threads=1 "$@" >/dev/null
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def records(name, kind):
    return [r for r in map(json.loads, open(f"{out}/{name}/metrics.jsonl")) if r["kind"] == kind]
runs = ["np1_batch16", "np1_batch16_1thread", "np2_batch8"]
keys = ["train/loss/total", "train/loss/seg", "train/da/dann/domain_loss", "iou/source_val", "iou/target_val"]
epochs = {r: records(r, "epoch") for r in runs}
print("| epoch | metric | np=1, batch 16, 2 threads | np=1, batch 16, 1 thread | np=2, batch 8 each |")
print("| --- | --- | --- | --- | --- |")
for e in range(len(epochs[runs[0]])):
    for k in keys:
        values = [epochs[r][e].get(k) for r in runs]
        if None not in values:
            print(f"| {e} | {k} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
def largest(a, b, keys):
    return max(abs(a[k] - b[k]) for k in keys if k in a and k in b)
losses = ["loss/total", "loss/seg", "loss/da"]
metrics = ["iou/source_val", "iou/target_val"]
print()
print("| largest difference from np=1, 2 threads | losses, first logged step | losses, last logged step | val mIoU, first epoch | val mIoU, any epoch |")
print("| --- | --- | --- | --- | --- |")
for r in runs[1:]:
    a, b = records(runs[0], "step"), records(r, "step")
    any_epoch = max(largest(x, y, metrics) for x, y in zip(epochs[runs[0]], epochs[r]))
    print(f"| {r} | {largest(a[0], b[0], losses):.1e} | {largest(a[-1], b[-1], losses):.1e} | "
          f"{largest(epochs[runs[0]][0], epochs[r][0], metrics):.1e} | {any_epoch:.1e} |")
PY
