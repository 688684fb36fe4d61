#!/usr/bin/env bash
# Set-up (tools/setup.sh) then the main job on the demo configuration.
# Until the trainer lands this shows the resolved demo configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
"$BUILD_DIR"/src/da_dist --config conf/demo.yaml --print-config "$@"
