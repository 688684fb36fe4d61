#!/usr/bin/env bash
# Set-up (tools/setup.sh) then the whole test suite through ctest, then the
# sanitizer subset that fits beside it in CI's time.
#   bash tools/test.sh              # everything
#   bash tools/test.sh -L unit      # extra arguments go to ctest (no sanitizer subset)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash tools/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
(cd "$BUILD_DIR" && ctest --output-on-failure -j "${JOBS:-$(nproc)}" "$@")
if (($# == 0)); then
  # What parses files from anywhere, under ASan + UBSan in build-asan/ (95
  # tests, 11 minutes on a fresh clone here, its build included): the
  # archive format, the loaders, da_tiles and the checkpoint pickle check. tools/sanitize.sh runs the rest (README,
  # "Sanitizers and fuzzing").
  cd "$root"
  bash tools/sanitize.sh address da_tiles test_io test_tools -- \
    -R "DirectChunk|H5py|ArchiveSet|Loader|DaTiles|ShardedMake|ByteShuffle|TileArchive|Archive|Paired|Sampler|PickleScan"
fi
