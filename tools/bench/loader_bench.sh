#!/usr/bin/env bash
# Loader benchmark (issue #4): generates archives of 512x512 tiles (3 and 4
# bands, uint8 and uint16, deflate off and on) and prints, per archive, the
# raw read speed of the file, h5py reading every tile, and io::TileLoader with
# 1 and 2 workers, then H5Dread against direct chunk reads with our own
# inflate for the deflate archives, and where one loader thread's time goes
# (HDF5 read vs conversion/normalisation). Builds nothing:
#
#   cmake --build build --target da_bench_loader
#   bash tools/bench/loader_bench.sh [BUILD_DIR=build] [--dir DIR] [--repeat 3] [--mb 256] [--size 512] [--log FILE]
#
# --dir keeps the archives there (and reuses them on the next run); without it
# they go to a temporary directory that is removed at the end. --mb is the
# decoded size of each archive (tiles = MiB / tile size, a multiple of 16).
# Every timing is the best of --repeat runs after a warm-up pass (page cache
# warm); the RESULT lines with best and median go to --log (default
# DIR/results.txt with --dir, none without). MB are MiB of decoded tile
# bytes, except the raw column (file bytes). "loader/raw %" is the raw read
# time over the fastest loader epoch time for the same archive; "stored"
# columns are the loader delivering the stored pixels (LoaderOptions::normalize
# false: the trainer normalises on the device), "stored/raw %" likewise. CPU/wall is
# the process's CPU seconds per wall second during the timed runs (how many
# cores it kept busy). Exits 1 when the loader's or h5py's band-0 checksum
# differs from the generator's.
set -euo pipefail

build=build
dir=""
repeat=3
mb=256
size=512
log=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --mb) mb="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --log) log="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "loader_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1"; shift ;;
  esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$build/tools/bench/da_bench_loader"
python=${PYTHON:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}  # the venv (Debian's h5py)
if [[ ! -x "$bin" ]]; then
  echo "loader_bench.sh: $bin not found; build it: cmake --build $build --target da_bench_loader" >&2
  exit 2
fi
if ! "$python" -c 'import h5py' 2>/dev/null; then
  echo "loader_bench.sh: $python cannot import h5py (bash tools/setup.sh)" >&2
  exit 2
fi
if [[ -z "$dir" ]]; then
  dir="$(mktemp -d "${TMPDIR:-/tmp}/da_loader_bench.XXXXXX")"
  trap 'rm -rf "$dir"' EXIT
  log="${log:-/dev/null}"
fi
mkdir -p "$dir"
log="${log:-$dir/results.txt}"
: > "$log"

# value KEY LINE: the value of key=value in a RESULT line.
value() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$2"; }
result() { grep '^RESULT' | tee -a "$log"; }

threads=1  # ATen intra-op threads per process; the loader's workers are the parallelism
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
echo "machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/Mem:/ {print $2}') GiB;" \
  "HDF5 $("$python" -c 'import h5py; print(h5py.version.hdf5_version)') (thread-safe build: one global lock);" \
  "tiles ${size}x${size}; best of $repeat runs, page cache warm; ATen intra-op threads: $threads" | tee -a "$log"

rows=()
chunk_rows=()
breakdown_rows=()
failed=0
for bands in 3 4; do
  for dtype in uint8 uint16; do
    for deflate in 0 4; do
      pixel=$([[ $dtype == uint8 ]] && echo 1 || echo 2)
      tile_bytes=$((bands * size * size * pixel))
      tiles=$((mb * 1024 * 1024 / tile_bytes / 16 * 16))
      [[ $tiles -ge 16 ]] || tiles=16
      compression=$([[ $deflate == 0 ]] && echo "none" || echo "deflate $deflate$([[ $dtype == uint16 ]] && echo ' +shuffle')")
      name="b${bands}_${dtype}_z${deflate}_s${size}_n${tiles}"
      file="$dir/$name.h5"
      if [[ ! -f "$file" || ! -f "$dir/$name.gen" ]]; then
        "$bin" generate --out "$file" --bands "$bands" --dtype "$dtype" --size "$size" --tiles "$tiles" \
          --deflate "$deflate" --seed 7 | grep '^RESULT' > "$dir/$name.gen"
      fi
      gen="$(cat "$dir/$name.gen")"
      echo "$gen" >> "$log"
      raw="$("$bin" raw "$file" --repeat "$repeat" | result)"
      h5py="$("$python" "$here/h5py_read.py" "$file" --repeat "$repeat" | result)"
      w1="$("$bin" loader "$file" --workers 1 --threads "$threads" --repeat "$repeat" | result)"
      w2="$("$bin" loader "$file" --workers 2 --threads "$threads" --repeat "$repeat" | result)"
      s1="$("$bin" loader "$file" --workers 1 --threads "$threads" --repeat "$repeat" --output stored | result)"
      s2="$("$bin" loader "$file" --workers 2 --threads "$threads" --repeat "$repeat" --output stored | result)"
      expected="$(value checksum "$gen")"
      for line in "$h5py" "$w1" "$w2" "$s1" "$s2"; do
        got="$(value checksum "$line")"
        if [[ "$got" != "$expected" ]]; then
          echo "loader_bench.sh: $name: checksum $got ($(value kind "$line") $(value workers "$line")) != generator's $expected" >&2
          failed=1
        fi
      done
      for line in "$w1" "$w2" "$s1" "$s2"; do
        if [[ "$(value checked_tiles "$line")" != "$tiles" ]]; then
          echo "loader_bench.sh: $name: loader checked $(value checked_tiles "$line") tiles, expected $tiles" >&2
          failed=1
        fi
      done
      disk_mb=$(awk -v b="$(stat -c %s "$file")" 'BEGIN {printf "%.0f", b / 1048576}')
      raw_s="$(value best_s "$raw")"
      best_loader_s=$(awk -v a="$(value best_s "$w1")" -v b="$(value best_s "$w2")" 'BEGIN {print (a < b ? a : b)}')
      percent=$(awk -v r="$raw_s" -v l="$best_loader_s" 'BEGIN {printf "%.0f", 100 * r / l}')
      best_stored_s=$(awk -v a="$(value best_s "$s1")" -v b="$(value best_s "$s2")" 'BEGIN {print (a < b ? a : b)}')
      stored_percent=$(awk -v r="$raw_s" -v l="$best_stored_s" 'BEGIN {printf "%.0f", 100 * r / l}')
      rows+=("| $bands, $dtype, $compression | $tiles | $disk_mb | $(value mb_per_s "$raw") | $(value tiles_per_s "$h5py") | $(value tiles_per_s "$w1") | $(value mb_per_s "$w1") | $(value tiles_per_s "$w2") | $(value mb_per_s "$w2") | $percent | $(value cpu_per_wall "$w1") / $(value cpu_per_wall "$w2") | $(value tiles_per_s "$s1") / $(value tiles_per_s "$s2") | $stored_percent |")
      breakdown="$("$bin" breakdown "$file" --threads "$threads" --repeat "$repeat" | result)"
      step() { value tiles_per_s "$(grep "step=$1 " <<< "$breakdown" || true)"; }
      breakdown_rows+=("| $bands, $dtype, $compression | $(step read_h5dread) | $(step read) | $(step convert) | $(step fused) | $(step batch_reader) |")
      if [[ $deflate != 0 ]]; then
        chunks="$("$bin" chunks "$file" --threads 2 --repeat "$repeat" | result)"
        for t in 1 2; do
          cell() {
            local line
            line="$(grep "mode=$1 threads=$t " <<< "$chunks" || true)"
            [[ -z "$line" ]] || echo "$(value tiles_per_s "$line") ($(value cpu_per_wall "$line"))"
          }
          chunk_rows+=("| $bands, $dtype, $compression | $t | $(cell h5dread) | $(cell direct_zlib) | $(cell direct_libdeflate) | $(cell tile_archive) |")
        done
      fi
    done
  done
done

echo
echo "| archive (bands, dtype, compression) | tiles | MB on disk | raw MB/s | h5py tiles/s | loader 1w tiles/s | 1w MB/s | loader 2w tiles/s | 2w MB/s | loader/raw % | loader CPU/wall 1w / 2w | stored-pixel loader 1w / 2w tiles/s | stored/raw % |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
echo
echo "| deflate archive | threads | H5Dread tiles/s (CPU/wall) | H5Dread_chunk + zlib | H5Dread_chunk + libdeflate | TileArchive::read_image |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${chunk_rows[@]}"
echo
echo "| archive (one thread) | read, H5Dread tiles/s | TileArchive::read_image tiles/s | old conversion (per-tile tensors + stack) tiles/s | fused into a fresh batch tiles/s | BatchReader::read (read + conversion) tiles/s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${breakdown_rows[@]}"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "checksums (band 0 raw-value sums: generator = h5py = loader 1w = loader 2w = stored 1w = stored 2w): $([[ $failed == 0 ]] && echo equal || echo DIFFER)"
[[ "$log" == /dev/null ]] || echo "RESULT lines (best and median): $log"
exit "$failed"
