#!/usr/bin/env bash
# Set-up (tools/setup.sh), then the main job: DANN adaptation of a U-Net on
# the synthetic two-domain demo data (generated into data/demo/ once and
# checked with `da_tiles inspect --verify`). The run writes to runs/demo/
# (logs, metrics.jsonl, TensorBoard events, checkpoints).
#   bash tools/demo.sh                                   # DANN
#   bash tools/demo.sh --set domain_adaptation.method.name=source_only --set run.name=demo_source_only
# Extra arguments go to da_dist. RANKS=2 runs it under mpirun with 2 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f data/demo/target_val.h5 ]; then
  "$BUILD_DIR"/tools/da_tiles/da_tiles synth --out data/demo --seed 0
fi
"$BUILD_DIR"/tools/da_tiles/da_tiles inspect --verify data/demo/*.h5
RANKS=${RANKS:-1}
if [ "$RANKS" -gt 1 ]; then
  exec mpirun -np "$RANKS" --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1 \
    "$BUILD_DIR"/src/da_dist --config conf/demo.yaml "$@"
fi
exec "$BUILD_DIR"/src/da_dist --config conf/demo.yaml "$@"
