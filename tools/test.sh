#!/usr/bin/env bash
# Set-up (tools/setup.sh) then the whole test suite through ctest.
#   bash tools/test.sh              # everything
#   bash tools/test.sh -L unit      # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j "${JOBS:-$(nproc)}" "$@"
