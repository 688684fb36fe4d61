#!/usr/bin/env bash
# cmake --install into a temporary prefix, then build and run a consumer
# project that finds da_dist with find_package.
#   check_install.sh <build-dir> <consumer-source-dir>
set -euo pipefail
build=$1
consumer=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -x "$work/prefix/bin/da_dist"
test -f "$work/prefix/include/da_dist/config/loader.h"
test -f "$work/prefix/include/da_dist/dist/bootstrap.h"
"$work/prefix/bin/da_dist" --version | grep -q '^da_dist '
cmake -S "$consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/consumer" -j 2 > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/consumer/consumer" | tee "$work/run.log"
grep -qx 'lr=0.5 name=consumer' "$work/run.log"
