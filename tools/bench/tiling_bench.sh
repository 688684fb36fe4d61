#!/usr/bin/env bash
# Tiling at scale (issue #23): writes a mosaic of GeoTIFFs (make_mosaic.py:
# --rasters rasters of --size x --size pixels, --bands uint16 bands, tiled,
# uncompressed) and cuts it into shards of --shard-tiles windows of
# --tile-size pixels (deflate --deflate, windows over 10 % nodata skipped):
#   da_tiles make --shard-tiles with 1 and 2 threads, and 2 ranks of 1
#     thread under mpirun; then a run killed (SIGKILL) halfway and resumed;
#   the peer tiling_peer.py (GDAL Python bindings + h5py + multiprocessing,
#     the same shards, skip rule and layout) with 1 and 2 processes;
#   gdal_retile.py (GDAL's own retiler: one deflate GeoTIFF per tile, no
#     nodata skipping, NUM_THREADS=2 for its compression);
#   cat of the rasters to /dev/null: the disk's sequential read limit.
# Before each run the page cache is dropped (as root; otherwise the table
# says "cache warm"). Per run: wall seconds, raster MB/s (raw pixel bytes
# over wall time), tiles/s, peak memory of the process tree (sum of PSS,
# peak_memory.py) and output size. Each output is removed after its run.
# Exits 1 when da_tiles and the peer write different tile counts.
#
#   cmake --build build --target da_tiles
#   bash tools/bench/tiling_bench.sh [BUILD_DIR=build] --dir DIR [--rasters 20] [--size 10000] [--bands 4]
#        [--tile-size 512] [--shard-tiles 100] [--deflate 4] [--no-retile]
set -euo pipefail

build=build
dir=""
rasters=20
size=10000
bands=4
tile=512
shard_tiles=100
deflate=4
retile=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --rasters) rasters="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --bands) bands="$2"; shift 2 ;;
    --tile-size) tile="$2"; shift 2 ;;
    --shard-tiles) shard_tiles="$2"; shift 2 ;;
    --deflate) deflate="$2"; shift 2 ;;
    --no-retile) retile=0; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "tiling_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1"; shift ;;
  esac
done
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$build/tools/da_tiles/da_tiles"
gdal_python=/usr/bin/python3  # Debian's python3-gdal and python3-h5py
[[ -x "$bin" ]] || { echo "tiling_bench.sh: $bin not found; build it: cmake --build $build --target da_tiles" >&2; exit 2; }
[[ -n "$dir" ]] || { echo "tiling_bench.sh: --dir DIR is required (the mosaic stays there for the next run)" >&2; exit 2; }
mpi=(mpirun --bind-to none)
[[ $(id -u) != 0 ]] || mpi+=(--allow-run-as-root --oversubscribe)

mkdir -p "$dir"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB;" \
  "disk: $(df -h "$dir" 2>/dev/null | awk 'NR == 2 {print $1}' || echo "?")"
mosaic="$("$gdal_python" "$here/make_mosaic.py" "$dir/mosaic" --rasters "$rasters" --size "$size" --bands "$bands" | grep '^RESULT')"
raw_bytes="$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' <<< "$mosaic")"
images=()
for f in "$dir"/mosaic/scene_*.tif; do images+=(--image "$f"); done
echo "$(du -sh "$dir/mosaic" | cut -f1) in $rasters rasters of ${size}x${size}, $bands uint16 bands"

cache="dropped"
drop_cache() {
  sync
  if ! { echo 3 > /proc/sys/vm/drop_caches; } 2> /dev/null; then cache="warm (cannot drop: not root)"; fi
}
out="$dir/out"
# measure NAME SETUP TILES_FROM COMMAND...: one table row; TILES_FROM is a sed
# expression that finds the tile count in the command's output.
rows=()
measure() {
  local name="$1" setup="$2" tiles_from="$3"
  shift 3
  rm -rf "$out"
  mkdir -p "$out"
  drop_cache
  local log
  log="$("$gdal_python" "$here/peak_memory.py" "$@" 2>&1)" || { echo "$log" >&2; echo "tiling_bench.sh: $name failed" >&2; exit 1; }
  local wall peak tiles bytes
  wall="$(sed -n 's/^MEASURED wall_s=\([0-9.]*\).*/\1/p' <<< "$log")"
  peak="$(sed -n 's/^MEASURED.* peak_pss_mib=\([0-9]*\).*/\1/p' <<< "$log")"
  tiles="$(sed -n "$tiles_from" <<< "$log" | awk '{s += $1} END {print s + 0}')"
  [[ "$tiles" != 0 ]] || tiles="$(find "$out" -name '*.tif' | wc -l)"
  bytes="$(du -sb "$out" | cut -f1)"
  last_tiles="$tiles"
  rows+=("$(awk -v n="$name" -v s="$setup" -v w="$wall" -v r="$raw_bytes" -v t="$tiles" -v p="$peak" -v b="$bytes" \
    'BEGIN {printf "| %s | %s | %.1f | %.0f | %.0f | %d | %s | %.2f |", n, s, w, r / w / 1e6, t / w, p, t, b / 1e9}')")
  echo "${rows[-1]}"
}

ours_tiles='s/.*: wrote \([0-9]*\) tiles.*/\1/p'
make=("$bin" make "${images[@]}" --out "$out/train.h5" --tile-size "$tile" --shard-tiles "$shard_tiles"
      --deflate "$deflate" --max-nodata 0.1)
measure "raw read (cat > /dev/null)" "1 process" 's/^$//p' bash -c 'cat "$@" > /dev/null' _ "$dir"/mosaic/scene_*.tif
measure "da_tiles make" "1 x 1 thread" "$ours_tiles" "${make[@]}" --threads 1
ours=$last_tiles
measure "da_tiles make" "1 x 2 threads" "$ours_tiles" "${make[@]}" --threads 2
measure "da_tiles make, mpirun" "2 ranks x 1 thread" "$ours_tiles" "${mpi[@]}" -np 2 "${make[@]}" --threads 1
peer=("$gdal_python" "$here/tiling_peer.py" "$out" "$dir"/mosaic/scene_*.tif --tile-size "$tile"
      --shard-tiles "$shard_tiles" --deflate "$deflate" --max-nodata 0.1)
measure "GDAL Python + h5py (tiling_peer.py)" "1 process" 's/^RESULT kind=peer tiles=\([0-9]*\).*/\1/p' \
  "${peer[@]}" --workers 1
peer_tiles=$last_tiles
measure "GDAL Python + h5py (tiling_peer.py)" "2 processes" 's/^RESULT kind=peer tiles=\([0-9]*\).*/\1/p' \
  "${peer[@]}" --workers 2
if [[ $retile == 1 ]]; then
  measure "gdal_retile.py (GeoTIFF tiles, no skipping)" "1 x NUM_THREADS=2" 's/^$//p' \
    "$gdal_python" -m osgeo_utils.gdal_retile -q -ps "$tile" "$tile" -co COMPRESS=DEFLATE -co ZLEVEL="$deflate" \
    -co NUM_THREADS=2 -targetDir "$out" "$dir"/mosaic/scene_*.tif
fi

# Resume: a 2-thread run killed halfway through its expected time, then rerun.
rm -rf "$out"
mkdir -p "$out"
two_threads_s="$(sed -n 's/^| da_tiles make | 1 x 2 threads | \([0-9.]*\) .*/\1/p' <<< "${rows[2]}")"
half="$(awk -v s="$two_threads_s" 'BEGIN {printf "%.0f", s / 2}')"
drop_cache
timeout -s KILL "$half" "${make[@]}" --threads 2 > /dev/null 2>&1 || true
complete="$(find "$out" -name 'train-*.h5' | wc -l)"
leftover="$(find "$out" -name 'train-*.h5.tmp.*' | wc -l)"
rm -rf "$out.keep"
cp -a "$out" "$out.keep"  # measure() starts from an empty directory: restore the killed run's files
measure_resume() { rm -rf "$out"; mv "$out.keep" "$out"; "${make[@]}" --threads 2; }
resume_log="$(drop_cache; "$gdal_python" "$here/peak_memory.py" bash -c "$(declare -p make out); $(declare -f measure_resume); measure_resume" 2>&1)"
resume_wall="$(sed -n 's/^MEASURED wall_s=\([0-9.]*\).*/\1/p' <<< "$resume_log")"
kept="$(sed -n 's/.*kept \([0-9]*\) complete shards (\([0-9]*\) tiles).*/\1 shards, \2 tiles/p' <<< "$resume_log")"
resumed_written="$(sed -n "$ours_tiles" <<< "$resume_log")"
kept_tiles="$(sed -n 's/.*kept [0-9]* complete shards (\([0-9]*\) tiles).*/\1/p' <<< "$resume_log")"
rm -rf "$out"

echo
echo "| run | processes x threads | wall s | raster MB/s | tiles/s | peak memory, PSS MiB | tiles | output GB |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
echo
echo "killed after ${half} s (SIGKILL): $complete complete shards, $leftover unfinished temporary files;" \
  "rerun: ${resume_wall} s, kept $kept, wrote $resumed_written more; total $((kept_tiles + resumed_written)) tiles (full run: $ours)"
echo "page cache before each run: $cache; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
failed=0
[[ "$ours" == "$peer_tiles" ]] || { echo "tiling_bench.sh: da_tiles wrote $ours tiles, the peer $peer_tiles" >&2; failed=1; }
[[ $((kept_tiles + resumed_written)) == "$ours" ]] || { echo "tiling_bench.sh: resumed run has $((kept_tiles + resumed_written)) tiles, not $ours" >&2; failed=1; }
exit "$failed"
