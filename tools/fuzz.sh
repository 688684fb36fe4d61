#!/usr/bin/env bash
# Fuzzes what da_dist parses (issue #25) with libFuzzer, ASan and UBSan:
#
#   bash tools/fuzz.sh [--seconds N] [--jobs J] [TARGET...]
#
# TARGETs: tile_archive, config, checkpoint, command_line, raster (default: all),
# each for N seconds (default 1800), J at once (default: one per core).
# Each runs in libFuzzer's fork mode, so a finding is saved and the run
# goes on for its whole time.
# Builds in build-fuzz/ with clang (tools/setup.sh's dependencies), writes
# fresh seeds (our archive writer, h5py, conf/, a checkpoint, command lines,
# GeoTIFFs GDAL writes:
# tests/fuzz/fuzz_seeds.cpp) next to the inputs already in
# tests/fuzz/regressions, and keeps each target's growing corpus in
# build-fuzz/fuzz/corpus/<target>. A crash, leak, hang (> 10 s), input
# using > 4 GiB or unclear error is saved in build-fuzz/fuzz/findings/<target>/;
# fixed, it goes to tests/fuzz/regressions/<target>/ with the error it
# must give (test_fuzz_regressions). Prints a table of executions and findings.
set -euo pipefail

seconds=1800
jobs=$(nproc)
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    tile_archive|config|checkpoint|command_line|raster) targets+=("$1"); shift ;;
    *) echo "usage: tools/fuzz.sh [--seconds N] [--jobs J] [tile_archive|config|checkpoint|command_line|raster...]" >&2; exit 2 ;;
  esac
done
((${#targets[@]})) || targets=(tile_archive config checkpoint command_line raster)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build=build-fuzz
BUILD_DIR=$build SETUP_NO_BUILD=1 CMAKE_ARGS="-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DDA_FUZZ=ON -DDA_SANITIZE=address -DCMAKE_BUILD_TYPE=RelWithDebInfo" bash tools/setup.sh
cmake --build "$build" -j "$(nproc)" --target da_fuzz_seeds "${targets[@]/#/fuzz_}"

work="$root/$build/fuzz"
rm -rf "$work/seeds" "$work/logs" "$work/findings"
mkdir -p "$work/seeds" "$work/logs"
.venv/bin/python tests/fuzz/h5py_seed_archives.py "$work/seeds/h5py" > "$work/seeds/h5py.txt"
"$build/tests/fuzz/da_fuzz_seeds" "$work/seeds" $(cat "$work/seeds/h5py.txt")

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0"
export LSAN_OPTIONS="suppressions=$root/tools/sanitize/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run_target() {
  local target=$1
  mkdir -p "$work/corpus/$target" "$work/findings/$target"
  local regressions="$root/tests/fuzz/regressions/$target"
  local dirs=("$work/corpus/$target" "$work/seeds/$target")
  [[ -d "$regressions" ]] && dirs+=("$regressions")
  # -close_fd_mask=1: inspect --verify prints its report on stdout for every
  # input; 3 for raster: make's progress line goes to stderr too (libFuzzer
  # and the sanitizers report on a copy of stderr; replay a finding to see
  # the target's message).
  local close_fds=1
  [[ "$target" == raster ]] && close_fds=3
  "$build/tests/fuzz/fuzz_$target" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -close_fd_mask="$close_fds" \
    -artifact_prefix="$work/findings/$target/" "${dirs[@]}" \
    > "$work/logs/$target.log" 2>&1 || true
}
running=0
for target in "${targets[@]}"; do
  run_target "$target" &
  running=$((running + 1))
  if ((running >= jobs)); then wait -n; running=$((running - 1)); fi
done
wait

printf '%-14s %8s %14s %8s %9s\n' target seconds executions corpus findings
for target in "${targets[@]}"; do
  log="$work/logs/$target.log"
  # Fork mode's progress lines: "#RUNS: cov: ... time: SECONDS ..."; the last one counts.
  last=$(grep -a -o '^#[0-9]*: cov: .* time: [0-9]*s' "$log" | tail -1)
  runs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
  time=$(echo "$last" | sed -n 's/.* time: \([0-9]*\)s$/\1/p')
  printf '%-14s %8s %14s %8s %9s\n' "$target" "${time:-?}" "${runs:-?}" "$(ls "$work/corpus/$target" | wc -l)" \
    "$(ls "$work/findings/$target" | wc -l)"
done
echo "logs: $work/logs; findings: $work/findings"
