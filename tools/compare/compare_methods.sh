#!/usr/bin/env bash
# Every adaptation method on the same data, several seeds: target and source
# validation mIoU after the last epoch, the target gain over source-only and
# over the strongest baseline, mean and spread over the seeds, as a Markdown
# table; then how far the checkpoint each label-free signal picks falls from
# the one target labels pick (tools/compare/selection_gap.py over all the
# runs).
#
# Baselines: source_only (each domain normalised by its own archives'
# statistics when the config says normalize: archive), source_stats (every
# domain normalised by the source training archives' statistics) and adabn;
# oracle (trained on the target's labels) is the upper bound. The strongest
# baseline is the one with the best mean target mIoU; a gain counts as clear
# when its mean exceeds twice its spread over the seeds (paired by seed).
#
#   bash tools/compare/compare_methods.sh [--config conf/demo.yaml] [--seeds "0 1 2"]
#        [--out runs/compare] [--methods "source_only dann ..."] [-- da_dist arguments...]
#
# The config names the archives (the demo's by default; pass your own config
# or `-- --set data.source.train=[...] ...`). Each method runs with the
# config's model and schedule; the method settings are in METHOD_YAML below.
# Runs that exist (metrics.jsonl with every epoch) are reused, so an
# interrupted comparison continues where it stopped. A finished run keeps its
# metrics, logs and TensorBoard events; its checkpoints (two full training
# states, 166 MB each for the demo model) are removed unless
# KEEP_CHECKPOINTS=1, so that a 60-run comparison does not fill the disk.
# BUILD_DIR [build].
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
config=conf/demo.yaml
seeds="0 1 2"
out=runs/compare
methods="source_only source_stats adabn oracle dann dann_2layers cdan cdan_e advent entropy advent_adversarial mcc dann_bsp mmd coral fda pseudo_label mstn adabn dann_adabn"
extra=()
while (($#)); do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "compare_methods: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

# The method settings compared (flow-style YAML for domain_adaptation.method).
method_yaml() {
  case "$1" in
    source_only | source_stats | oracle) echo "{name: source_only}" ;;
    dann) echo "{name: dann, hidden_size: 256}" ;;
    dann_2layers) echo "{name: dann, layers: [encoder.layer3, encoder.layer4], hidden_size: 256}" ;;
    cdan) echo "{name: cdan, hidden_size: 256}" ;;
    cdan_e) echo "{name: cdan, hidden_size: 256, entropy_conditioning: true}" ;;
    advent) echo "[{name: dann, hidden_size: 256}, {name: entropy, loss_weight: 0.01}]" ;;
    entropy) echo "{name: entropy, loss_weight: 0.01}" ;;
    advent_adversarial) echo "{name: advent_adversarial}" ;;
    mcc) echo "{name: mcc}" ;;
    dann_bsp) echo "[{name: dann, hidden_size: 256}, {name: bsp, loss_weight: 0.0001}]" ;;
    mmd) echo "{name: mmd}" ;;
    coral) echo "{name: coral}" ;;
    fda) echo "{name: fda, beta: 0.01}" ;;
    pseudo_label) echo "{name: pseudo_label, threshold: 0.9}" ;;
    mstn) echo "{name: mstn, hidden_size: 256}" ;;
    adabn) echo "{name: adabn}" ;;
    dann_adabn) echo "[{name: dann, hidden_size: 256}, {name: adabn}]" ;;
    entropy_adabn) echo "[{name: entropy, loss_weight: 0.01}, {name: adabn}]" ;;
    mcc_adabn) echo "[{name: mcc}, {name: adabn}]" ;;
    mmd_adabn) echo "[{name: mmd}, {name: adabn}]" ;;
    *) echo "compare_methods: no settings for method '$1' (add it to method_yaml)" >&2; exit 2 ;;
  esac
}

# Source-only is the plain source-trained model: with domain-specific
# BatchNorm (model.bn_mode dsbn) its target branch would never see a batch
# and keep its initial statistics, so it always trains with joint BatchNorm.
# One argument a line.
baseline_args() {
  case "$1" in
    source_only) printf '%s\n' --set model.bn_mode=joint ;;
    source_stats | oracle)
      printf '%s\n' --set model.bn_mode=joint
      sed 's/^/--set\n/' "$out/$1.overrides" ;;
  esac
}

[ -x "$BUILD_DIR/src/da_dist" ] || { echo "compare_methods: $BUILD_DIR/src/da_dist missing (bash tools/setup.sh)" >&2; exit 2; }
if [ "$config" = conf/demo.yaml ] && [ ! -f data/demo/target_val.h5 ]; then
  "$BUILD_DIR"/tools/da_tiles/da_tiles synth --out data/demo --seed 0
fi
mkdir -p "$out"  # its runs and, beside it, the log of the run in progress
"$BUILD_DIR"/src/da_dist --config "$config" "${extra[@]}" --print-config > "$out/resolved_config.yaml"
for b in source_stats oracle; do
  if [[ " $methods " == *" $b "* ]]; then
    .venv/bin/python tools/compare/baseline_overrides.py "$out/resolved_config.yaml" "$b" > "$out/$b.overrides"
  fi
done
max_epochs=$(/usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["run"]["max_epochs"])' \
  "$out/resolved_config.yaml")
for m in $methods; do
  for s in $seeds; do
    run="$out/$m-seed$s"
    # A finished run (every epoch line) is reused.
    if [ -f "$run/metrics.jsonl" ] && [ "$(grep -c '"kind": "epoch"' "$run/metrics.jsonl")" -ge "$max_epochs" ]; then
      continue
    fi
    echo "compare_methods: $m seed $s" >&2
    mapfile -t method_args < <(baseline_args "$m")
    "$BUILD_DIR"/src/da_dist --config "$config" --set run.output_dir="$out" --set run.name="$m-seed$s" \
      --set run.seed="$s" --set "domain_adaptation.method=$(method_yaml "$m")" \
      --set callbacks.checkpoint.every_n_epochs=0 "${extra[@]}" \
      "${method_args[@]}" > "$out.log.tmp" 2>&1 ||
      { echo "compare_methods: $m seed $s failed:" >&2; tail -5 "$out.log.tmp" >&2; rm -rf "$run"; exit 1; }
    [ "${KEEP_CHECKPOINTS:-0}" = 1 ] || rm -rf "$run/checkpoints"
  done
done
rm -f "$out.log.tmp"

/usr/bin/python3 tools/compare/method_table.py "$out" "$methods" "$seeds"

echo
/usr/bin/python3 tools/compare/selection_gap.py $(for m in $methods; do for s in $seeds; do echo "$out/$m-seed$s"; done; done)
