#!/bin/bash
# All-reduce benchmark: da::dist's communicator against raw MPI_Allreduce,
# 1 KiB .. 256 MiB of float32 in x4 steps, value-checked on every rank.
#
#   bash tools/bench_comm/allreduce_bench.sh [BUILD_DIR] [allreduce_bench options...]
#
# BUILD_DIR defaults to build/ (built by tools/setup.sh; the target is
# allreduce_bench). NP (default 2) sets the rank count; extra options, e.g.
# --max-bytes 16M or --iters 20, go to the benchmark (--help lists them).
# Exit status: the benchmark's (1 when any rank saw a wrong value).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
if (($# > 0)); then shift; fi
bench=$build/tools/bench_comm/allreduce_bench
if [[ ! -x "$bench" ]]; then
  echo "allreduce_bench: $bench not found; build it with" >&2
  echo "  cmake --build $build --target allreduce_bench" >&2
  exit 2
fi

# Open MPI refuses root without these; --oversubscribe allows more ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
echo "# $(hostname): $(getconf _NPROCESSORS_ONLN) cores, mpirun -np ${NP:-2}, $(date -u +%FT%TZ)"
exec mpirun -np "${NP:-2}" --oversubscribe "$bench" "$@"
