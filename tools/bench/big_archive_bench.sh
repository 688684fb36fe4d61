#!/usr/bin/env bash
# One archive of many tiles (issue #23): generates DIR/tiles.h5 with
# da_bench_loader (--tiles of 3 x --size x --size uint8, uncompressed; kept
# for the next run), then, each after dropping the page cache (root:
# echo 3 > /proc/sys/vm/drop_caches, so that reads come from the disk even
# when the archive fits in memory), measures: our loader (--workers threads,
# batches of 16, the first --batches batches of a shuffled epoch: start,
# first batch, tiles/s, memory, descriptors), the random-read limit
# (random_read.py: preads of one tile's bytes with --workers threads) and a
# sequential O_DIRECT read of the first 4 GiB (dd). Prints a Markdown table.
# Builds nothing:
#
#   cmake --build build --target da_bench_loader
#   sudo bash tools/bench/big_archive_bench.sh [BUILD_DIR=build] --dir DIR [--tiles 2000000] [--size 64]
#        [--workers 2] [--batches 1000]
set -euo pipefail

build=build
dir=""
tiles=2000000
size=64
workers=2
batches=1000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --tiles) tiles="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "big_archive_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1"; shift ;;
  esac
done
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$build/tools/bench/da_bench_loader"
python=${PYTHON:-$here/../../.venv/bin/python}
[[ -x "$bin" ]] || { echo "big_archive_bench.sh: $bin not found; build it: cmake --build $build --target da_bench_loader" >&2; exit 2; }
[[ -n "$dir" ]] || { echo "big_archive_bench.sh: --dir DIR is required (the archive stays there)" >&2; exit 2; }
[[ -w /proc/sys/vm/drop_caches ]] || { echo "big_archive_bench.sh: cannot drop the page cache (run as root)" >&2; exit 2; }
mkdir -p "$dir"
file="$dir/tiles.h5"
value() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$2"; }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }

if [[ ! -f "$file" || "$(cat "$dir/tiles.gen" 2>/dev/null)" != "tiles=$tiles size=$size" ]]; then
  start=$(date +%s)
  "$bin" generate --out "$file" --bands 3 --dtype uint8 --size "$size" --tiles "$tiles" --seed 7 > /dev/null
  echo "tiles=$tiles size=$size" > "$dir/tiles.gen"
  echo "generated $file in $(( $(date +%s) - start )) s"
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB of memory;" \
  "archive $(du -h "$file" | cut -f1) on $(df "$dir" | awk 'NR == 2 {print $1}')"

cold
ours="$("$bin" loader "$file" --workers "$workers" --batch 16 --repeat 1 --max-batches "$batches" | grep '^RESULT')"
cold
limit="$("$python" "$here/random_read.py" "$file" --reads $((batches * 16)) --block $((3 * size * size)) \
  --threads "$workers" | grep '^RESULT')"
cold
sequential="$(dd if="$file" of=/dev/null bs=1M count=4096 iflag=direct 2>&1 | awk '/copied/ {print $(NF-1), $NF}')"

echo
echo "| what | value |"
echo "| --- | ---: |"
echo "| loader start / first batch | $(value open_s "$ours") s / $(value first_batch_s "$ours") s |"
echo "| memory (PSS) / open descriptors | $(value pss_mib "$ours") MiB / $(value fds "$ours") |"
echo "| shuffled tiles, $workers workers, cold cache (first $((batches * 16))) | $(value tiles_per_s "$ours") tiles/s, $(value mb_per_s "$ours") MiB/s |"
echo "| raw random $((3 * size * size)) B preads, $workers threads, cold cache | $(value reads_per_s "$limit") reads/s, $(value mib_per_s "$limit") MiB/s |"
echo "| raw sequential read (dd, O_DIRECT, 1 MiB blocks, up to 4 GiB) | $sequential |"
awk -v a="$(value tiles_per_s "$ours")" -v b="$(value reads_per_s "$limit")" \
  'BEGIN {printf "\nloader / random-read limit: %.2f\n", a / b}'
