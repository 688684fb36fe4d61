#!/usr/bin/env bash
# cmake --install into a temporary prefix, then build and run a consumer
# project that finds da_dist with find_package.
#   check_install.sh <build-dir> <consumer-source-dir> [dependency prefixes]
# (the dependency prefixes: where the build found Torch, as a user passes it)
set -euo pipefail
build=$1
consumer=$2
dependencies=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -x "$work/prefix/bin/da_dist"
test -f "$work/prefix/include/da_dist/config/loader.h"
test -f "$work/prefix/include/da_dist/dist/bootstrap.h"
"$work/prefix/bin/da_dist" --version | grep -q '^da_dist '
cmake -S "$consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix${dependencies:+;$dependencies}" -DCMAKE_BUILD_TYPE=Release \
  > "$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/consumer" -j 2 > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/consumer/consumer" | tee "$work/run.log"
grep -qx 'lr=0.5 name=consumer' "$work/run.log"

# The installed da_dist trains with the consumer's plug-in method, unchanged.
"$build/tools/da_tiles/da_tiles" synth --out "$work/data" --tiles 8 --val-tiles 4 --size 32 > /dev/null
cat > "$work/run.yaml" <<YAML
run: {output_dir: $work/runs, name: plugin, max_epochs: 1, log_every_n_steps: 1}
data:
  source: {train: [$work/data/source_train.h5], val: [$work/data/source_val.h5]}
  target: {train: [$work/data/target_train.h5], val: [$work/data/target_val.h5]}
  batch_size: 4
  workers: 0
model: {encoder: tiny}
domain_adaptation:
  method: {name: consumer_logit_mean, scale: 2.0}
logging: {tensorboard: false}
plugins: [$work/consumer/libconsumer_method.so]
YAML
OMP_NUM_THREADS=1 "$work/prefix/bin/da_dist" --config "$work/run.yaml" > "$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
grep -q '"train/da/consumer_logit_mean/penalty": ' "$work/runs/plugin/metrics.jsonl" || {
  echo "the plug-in method's log is missing from metrics.jsonl"; cat "$work/runs/plugin/metrics.jsonl"; exit 1; }
echo "plug-in method trained: $(grep -c '"kind": "step"' "$work/runs/plugin/metrics.jsonl") logged steps"
