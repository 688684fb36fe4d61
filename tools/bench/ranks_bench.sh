#!/usr/bin/env bash
# The loader at np=1 and np=2 (issue #23): on the archives loader_bench.sh
# generated in DIR, io::TileLoader with one worker per rank, each rank
# reading its DistributedSampler share of the tiles (batches of 8, so that
# both shares divide evenly and no tile is read twice), one process alone
# and two under mpirun. np=2 tiles/s is the sum over the ranks of their own
# tiles over their best epoch time (the ranks run their epochs side by side,
# unsynchronised). Prints a Markdown table with each compressed archive
# against the same archive uncompressed; exits 1 when the band-0 checksums
# of the two ranks do not add up to the generator's. Builds nothing:
#
#   cmake --build build --target da_bench_loader
#   bash tools/bench/loader_bench.sh build --dir DIR     # makes the archives
#   bash tools/bench/ranks_bench.sh [BUILD_DIR=build] --dir DIR [--repeat 3]
set -euo pipefail

build=build
dir=""
repeat=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "ranks_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1"; shift ;;
  esac
done
bin="$build/tools/bench/da_bench_loader"
[[ -x "$bin" ]] || { echo "ranks_bench.sh: $bin not found; build it: cmake --build $build --target da_bench_loader" >&2; exit 2; }
[[ -n "$dir" ]] && compgen -G "$dir/*.gen" > /dev/null ||
  { echo "ranks_bench.sh: no archives in '$dir'; make them with loader_bench.sh --dir DIR" >&2; exit 2; }

value() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$2"; }
mpi=(mpirun -np 2 --bind-to none)
[[ $(id -u) != 0 ]] || mpi+=(--allow-run-as-root)

# np1 FILE / np2 FILE: the RESULT lines of one rank alone / of two ranks.
np1() { "$bin" loader "$1" --workers 1 --batch 8 --repeat "$repeat" | grep '^RESULT'; }
np2() {
  "${mpi[@]}" bash -c '"$0" loader "$1" --workers 1 --batch 8 --repeat "$2" --world 2 --rank "$OMPI_COMM_WORLD_RANK"' \
    "$bin" "$1" "$repeat" | grep '^RESULT'
}
# The summed tiles/s and checksum of RESULT lines.
total() { awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]} t += v["tiles"] / v["best_s"]; c += v["checksum"]}
               END {printf "%.1f %.0f\n", t, c}' <<< "$1"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; best of $repeat epochs per rank; 1 worker and 1 intra-op thread per rank"
declare -A rate
failed=0
rows=()
for gen_file in "$dir"/*.gen; do
  name="$(basename "$gen_file" .gen)"
  file="$dir/$name.h5"
  expected="$(value checksum "$(cat "$gen_file")")"
  read -r one one_sum <<< "$(total "$(np1 "$file")")"
  read -r two two_sum <<< "$(total "$(np2 "$file")")"
  for sum in "$one_sum" "$two_sum"; do
    [[ "$sum" == "$expected" ]] || { echo "ranks_bench.sh: $name: checksum $sum != generator's $expected" >&2; failed=1; }
  done
  rate[$name]="$one $two"
done
for name in "${!rate[@]}"; do
  [[ $name == *_z0_* ]] && continue
  plain="$(sed 's/_z[0-9]*_/_z0_/' <<< "$name")"
  read -r one two <<< "${rate[$name]}"
  read -r plain_one plain_two <<< "${rate[$plain]:-0 0}"
  rows+=("$(awk -v n="$name" -v a="$one" -v b="$two" -v pa="$plain_one" -v pb="$plain_two" 'BEGIN {
    printf "| %s | %.1f | %.1f | %.2f | %.1f | %.1f | %.0f %% / %.0f %% |", n, a, b, b / a, pa, pb, 100 * a / pa, 100 * b / pb}')")
done
echo
echo "| compressed archive | np=1 tiles/s | np=2 tiles/s | np=2 / np=1 | uncompressed np=1 | uncompressed np=2 | compressed / uncompressed np=1 / np=2 |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}" | sort
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "checksums (np=1, and both ranks of np=2 together, against the generator): $([[ $failed == 0 ]] && echo equal || echo DIFFER)"
exit "$failed"
