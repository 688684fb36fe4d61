#!/usr/bin/env bash
# What compressed gradient all-reduces (dist.gradient_compression) cost in
# training quality and buy in time: the demo's DANN run on NP ranks (1
# intra-op thread each, oversubscribed beyond the cores) with float32, fp16
# and bf16 all-reduces, same seeds; a Markdown table of the last epoch's
# training loss, source and target validation mIoU, and the mean step time
# and communication wait. The float32 run is the peer.
#
#   bash tools/bench_train/compression_effect.sh [BUILD_DIR]
#   NP [2]  SEEDS ["0"]  EPOCHS [the demo's 6]  OUT [runs/compression]
# Data: the demo's (made by tools/demo.sh when missing). Binaries are copied
# first, so a rebuild during the runs cannot swap them.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=$(realpath "${1:-build}")
NP=${NP:-2}
SEEDS=${SEEDS:-0}
EPOCHS=${EPOCHS:-6}
OUT=${OUT:-runs/compression}
source tools/bench_train/snapshot.sh

[ -x "$build/src/da_dist" ] || { echo "compression_effect: $build/src/da_dist missing (bash tools/setup.sh)" >&2; exit 2; }
[ -f data/demo/target_val.h5 ] || "$build"/tools/da_tiles/da_tiles synth --out data/demo --seed 0 >/dev/null
mkdir -p "$OUT"
snapshot_binaries compression_effect "$build" "$OUT/.snapshot" "$build/src/da_dist"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

echo "# $(hostname): $(getconf _NPROCESSORS_ONLN) cores, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# conf/demo.yaml, $NP ranks x 1 thread, batch 8 per rank, $EPOCHS epochs, seeds $SEEDS"
for compression in none fp16 bf16; do
  for seed in $SEEDS; do
    name=$compression-np$NP-seed$seed
    [ -f "$OUT/$name/metrics.jsonl" ] && continue
    mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$NP" -x OMP_NUM_THREADS -x LD_LIBRARY_PATH \
      "$OUT/.snapshot/bin/da_dist" --config conf/demo.yaml --set run.output_dir="$OUT" --set run.name="$name" \
      --set run.seed="$seed" --set run.max_epochs="$EPOCHS" --set run.threads=1 \
      --set dist.gradient_compression="$compression" --set callbacks.checkpoint.every_n_epochs=0 \
      >"$OUT/$name.log" 2>&1 || { tail -20 "$OUT/$name.log" >&2; echo "compression_effect: $name failed" >&2; exit 1; }
    rm -rf "$OUT/$name/checkpoints"
  done
done

/usr/bin/python3 - "$OUT" "$NP" "$SEEDS" <<'PY'
import json, statistics, sys
out, np_, seeds = sys.argv[1], sys.argv[2], sys.argv[3].split()
def last_epoch(path):
    epochs = [json.loads(l) for l in open(path) if l.strip() and json.loads(l).get("kind") == "epoch"]
    return epochs[-1]
def cell(values, digits):
    if len(values) == 1: return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
cols = [("train loss", "train/loss/total", 4), ("source mIoU", "iou/source_val", 3), ("target mIoU", "iou/target_val", 3),
        ("s/step", "time/step_s", 3), ("comm wait s/step", "time/comm_wait_s", 4), ("comm wait share", "time/comm_wait_share", 3)]
print("| gradients | " + " | ".join(c[0] for c in cols) + " |")
print("| --- |" + " --- |" * len(cols))
for compression in ("none", "fp16", "bf16"):
    rows = [last_epoch(f"{out}/{compression}-np{np_}-seed{s}/metrics.jsonl") for s in seeds]
    cells = []
    for _, key, digits in cols:
        values = [r[key] for r in rows if key in r]
        cells.append(cell(values, digits) if values else "n/a")
    print(f"| {'float32' if compression == 'none' else compression} | " + " | ".join(cells) + " |")
PY
