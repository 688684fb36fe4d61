#!/usr/bin/env bash
# Scene prediction benchmark (issue #10): megapixels/s of `da_dist predict
# --scene` on a generated SIZE x SIZE 3-band uint8 GeoTIFF (default 8192,
# tiled, deflate, georeferenced) against the same sliding window in PyTorch
# (tools/bench/scene_peer.py: GDAL strip reads, torch.jit.load of the model
# `da_dist export` wrote), one Markdown table. Needs no GPU; builds nothing:
#
#   cmake --build build --target da_dist da_tiles
#   bash tools/bench/scene_bench.sh [BUILD_DIR=build] [--dir DIR] [--threads 2] [--ranks "1 2"]
#   SIZE=4096 bash tools/bench/scene_bench.sh ...      # a smaller scene
#
# The model is the demo's architecture (U-Net ResNet-18, 3 bands, the demo's
# classes, bn_mode dsbn) from one epoch on a small `da_tiles synth` set, or
# CHECKPOINT=FILE. Window 512, overlap 64, 4 windows per forward (WINDOW,
# OVERLAP, BATCH override), target branch. Every run gets the same thread
# budget: --threads T intra-op threads for one process; with N ranks each rank
# gets T/N (at least 1). Seconds are wall time of the whole command (model
# loading, reading, writing included); peak RSS is the largest resident set of
# one process (GNU time's maximum, for mpirun its largest child); agreement is
# the % of pixels whose class equals da_dist's np=1 map. --dir keeps the files.
# PEER_RETAIN=1 (default) also runs the peer under GLIBC_TUNABLES equal to
# da_dist's default host allocator setting (retain; tools/bench/glibc_retain.sh).
set -euo pipefail

build=build
dir=""
threads=2
ranks="1 2"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --ranks) ranks="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "scene_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1"; shift ;;
  esac
done
size=${SIZE:-8192}
window=${WINDOW:-512}
overlap=${OVERLAP:-64}
batch=${BATCH:-4}
PEER_RETAIN=${PEER_RETAIN:-1}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python=${PYTHON:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}  # the venv: pip torch, Debian's GDAL
source "$here/glibc_retain.sh"
build="$(cd "$build" && pwd)"
da_dist="$build/src/da_dist"
da_tiles="$build/tools/da_tiles/da_tiles"
for bin in "$da_dist" "$da_tiles"; do
  if [[ ! -x "$bin" ]]; then
    echo "scene_bench.sh: $bin not found; build it: cmake --build $build --target da_dist da_tiles" >&2
    exit 2
  fi
done
if ! "$python" -c 'import torch; from osgeo import gdal' 2>/dev/null; then
  echo "scene_bench.sh: $python cannot import torch and osgeo.gdal (bash tools/setup.sh)" >&2
  exit 2
fi
if [[ -z "$dir" ]]; then
  dir="$(mktemp -d "${TMPDIR:-/tmp}/da_scene_bench.XXXXXX")"
  trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

scene="$dir/scene_$size.tif"
if [[ ! -f "$scene" ]]; then
  echo "# generating $scene" >&2
  "$python" "$here/scene_bench.py" generate "$scene.tmp" "$size"
  mv "$scene.tmp" "$scene"
fi
checkpoint=${CHECKPOINT:-$dir/runs/scene_bench/checkpoints/last.pt}
if [[ ! -f "$checkpoint" ]]; then
  echo "# training the checkpoint (1 epoch on da_tiles synth data)" >&2
  "$da_tiles" synth --out "$dir/data/demo" --tiles 32 --val-tiles 16 --size 64 --seed 0 >&2
  (cd "$dir" && OMP_NUM_THREADS="$threads" "$da_dist" --config "$here/../../conf/demo.yaml" \
    --set run.output_dir=runs --set run.name=scene_bench --set run.max_epochs=1 --set data.workers=1 \
    --log-level warn >&2)
fi
# Export and predict where the model was trained: the checkpoint names its
# training archives (whose band statistics normalise the scene) relative to
# that (for CHECKPOINT=FILE, the directory this script was started in).
checkpoint="$(realpath -m "$checkpoint")"
[[ -n "${CHECKPOINT:-}" ]] || cd "$dir"
"$da_dist" export --checkpoint "$checkpoint" --output "$dir/export" --domain target --log-level warn

# run NAME COMMAND...: wall seconds and peak RSS (MiB) into $dir/NAME.time
run() {
  local name="$1"
  shift
  /usr/bin/time -f "%e %M" -o "$dir/$name.time" "$@" >"$dir/$name.log" 2>&1 || {
    echo "scene_bench.sh: $name failed:" >&2
    cat "$dir/$name.log" >&2
    exit 1
  }
}
rows=()
row() {  # implementation ranks threads-per-rank name classes.tif
  local seconds rss agreement
  read -r seconds rss <"$dir/$4.time"
  agreement=$("$python" "$here/scene_bench.py" agree "$dir/da_np1/scene_${size}_classes.tif" "$5")
  rows+=("$(awk -v impl="$1" -v r="$2" -v t="$3" -v w="$window" -v o="$overlap" -v s="$seconds" -v m="$rss" \
    -v a="$agreement" -v px="$size" 'BEGIN {
      printf "| %s | %d | %d | %d | %d | %.1f | %.3f | %.0f MiB | %.2f%% |", impl, r, t, w, o, s,
        px * px / 1e6 / s, m / 1024, a }')")
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for n in $ranks; do
  per_rank=$(( threads / n > 0 ? threads / n : 1 ))
  args=(predict --checkpoint "$checkpoint" --scene "$scene" --output-dir "$dir/da_np$n" --window "$window"
        --overlap "$overlap" --batch-size "$batch" --domain target --log-level warn)
  if [[ "$n" -eq 1 ]]; then
    run da_np1 env OMP_NUM_THREADS="$per_rank" "$da_dist" "${args[@]}"
  else
    run "da_np$n" mpirun -np "$n" --allow-run-as-root --oversubscribe --bind-to none \
      -x OMP_NUM_THREADS="$per_rank" "$da_dist" "${args[@]}"
  fi
done
run peer env OMP_NUM_THREADS="$threads" "$python" "$here/scene_peer.py" "$dir/export/model.pt" "$scene" \
  "$dir/peer.tif" --window "$window" --overlap "$overlap" --batch "$batch" --threads "$threads"
if [[ $PEER_RETAIN == 1 ]]; then
  run peer_retain env GLIBC_TUNABLES="$retain_tunables" OMP_NUM_THREADS="$threads" "$python" "$here/scene_peer.py" \
    "$dir/export/model.pt" "$scene" "$dir/peer_retain.tif" --window "$window" --overlap "$overlap" --batch "$batch" \
    --threads "$threads"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

for n in $ranks; do
  row "da_dist predict --scene" "$n" $(( threads / n > 0 ? threads / n : 1 )) "da_np$n" \
    "$dir/da_np$n/scene_${size}_classes.tif"
done
row "PyTorch + GDAL (scene_peer.py)" 1 "$threads" peer "$dir/peer.tif"
if [[ $PEER_RETAIN == 1 ]]; then
  row "PyTorch + GDAL, GLIBC_TUNABLES as retain" 1 "$threads" peer_retain "$dir/peer_retain.tif"
fi

echo "# scene ${size}x${size} px, 3-band uint8 GeoTIFF; U-Net ResNet-18 (demo architecture), window $window, overlap $overlap, batch $batch"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $load_before before, $load_after after"
echo
echo "| implementation | ranks | threads/rank | window | overlap | seconds | megapixels/s | peak RSS/process | agreement |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
