#!/usr/bin/env bash
# Set-up (tools/setup.sh), then the main job on the demo configuration:
# generates the synthetic two-domain demo data (data/demo/, once), checks it
# with `da_tiles inspect --verify`, and shows the resolved configuration.
# Training on it arrives with the trainer (see the README's status section).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f data/demo/target_val.h5 ]; then
  "$BUILD_DIR"/tools/da_tiles/da_tiles synth --out data/demo --seed 0
fi
"$BUILD_DIR"/tools/da_tiles/da_tiles inspect --verify data/demo/*.h5
"$BUILD_DIR"/src/da_dist --config conf/demo.yaml --print-config "$@"
