#!/usr/bin/env bash
# Many shards (issue #23): writes DIR/shard_*.h5 with h5py (make_shards.py:
# --shards files of --tiles tiles each), then reads them at np=1 and np=2
# (mpirun, each rank its DistributedSampler share, --workers loader threads
# or processes per rank, batches of 8) with our loader, bounded to
# --max-open open files per loader thread and with every shard open, and
# with the PyTorch peer (shards_peer.py: DataLoader + h5py, shards opened
# lazily by each worker and kept open). Per run and rank: seconds to build
# the loader (every shard opened once for its tile count), to the first
# batch, tiles/s over an epoch (best of --repeat, page cache warm; np=2: the
# ranks' sum), memory (PSS of the rank's processes after the epochs, MiB;
# for our loader also its peak RSS) and open file descriptors. Exits 1 when
# a run's band-0 checksum (over both ranks) differs from the generator's.
# Builds nothing:
#
#   cmake --build build --target da_bench_loader
#   bash tools/bench/shards_bench.sh [BUILD_DIR=build] --dir DIR [--shards 2000] [--tiles 4]
#        [--size 32] [--bands 3] [--dtype uint8] [--deflate 0] [--workers 2] [--max-open 64] [--repeat 2]
set -euo pipefail

build=build
dir=""
shards=2000
tiles=4
size=32
bands=3
dtype=uint8
deflate=0
workers=2
max_open=64
repeat=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --shards) shards="$2"; shift 2 ;;
    --tiles) tiles="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --bands) bands="$2"; shift 2 ;;
    --dtype) dtype="$2"; shift 2 ;;
    --deflate) deflate="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --max-open) max_open="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "shards_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1"; shift ;;
  esac
done
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$build/tools/bench/da_bench_loader"
python=${PYTHON:-$here/../../.venv/bin/python}
[[ -x "$bin" ]] || { echo "shards_bench.sh: $bin not found; build it: cmake --build $build --target da_bench_loader" >&2; exit 2; }
[[ -n "$dir" ]] || { echo "shards_bench.sh: --dir DIR is required (the shards stay there for the next run)" >&2; exit 2; }

value() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$2"; }
mpi=(mpirun --bind-to none)
[[ $(id -u) != 0 ]] || mpi+=(--allow-run-as-root --oversubscribe)

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB;" \
  "disk: $(df -h "$dir" 2>/dev/null | awk 'NR == 2 {print $1}' || echo "?")"
gen="$("$python" "$here/make_shards.py" "$dir" --shards "$shards" --tiles "$tiles" --size "$size" --bands "$bands" \
  --dtype "$dtype" --deflate "$deflate" | grep '^RESULT')"
expected="$(value checksum "$gen")"
echo "$gen"
echo "$(du -sh "$dir" | cut -f1) in $shards shards of $tiles tiles (${bands}x${size}x${size} $dtype, deflate $deflate)"

# Per rank: one RESULT line each; summed over the ranks: tiles/s and checksum.
ours() {  # NP MAX_OPEN
  "${mpi[@]}" -np "$1" bash -c '"$0" loader "$1" --workers "$2" --batch 8 --repeat "$3" --max-open "$4" \
    --world "$OMPI_COMM_WORLD_SIZE" --rank "$OMPI_COMM_WORLD_RANK"' \
    "$bin" "$dir/shard_*.h5" "$workers" "$repeat" "$2" | grep '^RESULT'
}
peer() {  # NP
  "${mpi[@]}" -np "$1" "$python" "$here/shards_peer.py" "$dir/shard_*.h5" --workers "$workers" --batch 8 \
    --repeat "$repeat" | grep '^RESULT'
}
failed=0
row() {  # NAME NP MAX_OPEN LINES
  local summary
  summary="$(awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
      rate += v["tiles_per_s"]; sum += v["checksum"]
      if (v["open_s"] > open) open = v["open_s"]; if (v["first_batch_s"] > first) first = v["first_batch_s"]
      if (v["pss_mib"] > pss) pss = v["pss_mib"]; if (v["hwm_mib"] > hwm) hwm = v["hwm_mib"]; if (v["fds"] > fds) fds = v["fds"]}
      END {printf "%.2f | %.2f | %.1f | %.0f | %s | %d | %.0f", open, first, rate, pss, (hwm > 0 ? sprintf("%.0f", hwm) : "-"), fds, sum}' <<< "$4")"
  local checksum="${summary##* | }"
  [[ "$checksum" == "$expected" ]] || { echo "shards_bench.sh: $1 np=$2: checksum $checksum != generator's $expected" >&2; failed=1; }
  echo "| $1 | $2 | $3 | ${summary% | *} |"
}
rows=()
for np in 1 2; do
  rows+=("$(row "ours" "$np" "$max_open" "$(ours "$np" "$max_open")")")
  rows+=("$(row "ours, every shard open" "$np" "$shards" "$(ours "$np" "$shards")")")
  rows+=("$(row "PyTorch DataLoader + h5py" "$np" "all read" "$(peer "$np")")")
done
echo
echo "| reader | np | open files per loader thread | start s (slowest rank) | first batch s | tiles/s (all ranks) | memory per rank, PSS MiB | peak RSS MiB | open fds per rank |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); $workers loader workers per rank, 1 intra-op thread"
echo "checksums (band 0 over every tile, all ranks): $([[ $failed == 0 ]] && echo equal || echo DIFFER)"
exit "$failed"
