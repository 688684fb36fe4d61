#!/usr/bin/env bash
# Builds the project with sanitizers in a build directory of its own and runs
# tests under them (issue #25):
#
#   bash tools/sanitize.sh address [TARGET...] [-- CTEST_ARGS...]   # ASan + UBSan in build-asan/
#   bash tools/sanitize.sh thread  [TARGET...] [-- CTEST_ARGS...]   # TSan in build-tsan/
#
# TARGETs: what to build (default: everything); CTEST_ARGS: which tests
# (default: -L unit). Set-up is tools/setup.sh's (the same venv and
# dependencies), RelWithDebInfo for line numbers. A report fails its test:
# ASan and UBSan stop at the first error, LeakSanitizer reports leaks at exit
# (suppressions: tools/sanitize/lsan.supp), TSan exits 66 on a race
# (tools/sanitize/tsan.supp). Each suppression names a library we do not
# build and why its report is not ours.
set -euo pipefail

kind=${1:-}
case "$kind" in
  address) build=build-asan ;;
  thread) build=build-tsan ;;
  *) echo "usage: tools/sanitize.sh address|thread [TARGET...] [-- CTEST_ARGS...]" >&2; exit 2 ;;
esac
shift
targets=()
while [[ $# -gt 0 && "$1" != "--" ]]; do targets+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
ctest_args=("$@")
((${#ctest_args[@]})) || ctest_args=(-L unit)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
supp="$root/tools/sanitize"
if ((${#targets[@]})); then
  # Configure only (setup.sh's dependencies and venv), then build the targets asked for.
  BUILD_DIR=$build CMAKE_ARGS="-DDA_SANITIZE=$kind -DCMAKE_BUILD_TYPE=RelWithDebInfo" SETUP_NO_BUILD=1 bash tools/setup.sh
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
else
  BUILD_DIR=$build CMAKE_ARGS="-DDA_SANITIZE=$kind -DCMAKE_BUILD_TYPE=RelWithDebInfo" bash tools/setup.sh
fi

# fast_unwind_on_malloc=0: LeakSanitizer's stacks through libraries built
# without frame pointers (Open MPI's components) reach the frames that
# lsan.supp names; slower, so the suite takes longer under ASan.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:check_initialization_order=1:strict_string_checks=1:fast_unwind_on_malloc=0:malloc_context_size=30"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="suppressions=$supp/tsan.supp:halt_on_error=0:second_deadlock_stack=1"
# Torch's intra-op pool is OpenMP (libgomp, uninstrumented): TSan cannot see
# its barriers and reports every parallel Torch kernel. One OpenMP thread
# keeps the threads TSan checks ours (loader workers, communication thread).
[[ "$kind" == thread ]] && export OMP_NUM_THREADS=1
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "${ctest_args[@]}"
