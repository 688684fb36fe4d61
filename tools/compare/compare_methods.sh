#!/usr/bin/env bash
# Every adaptation method on the same data, several seeds: target and source
# validation mIoU after the last epoch and the target gain over source-only,
# mean and spread over the seeds, as a Markdown table; then how far the
# checkpoint each label-free signal picks falls from the one target labels
# pick (tools/compare/selection_gap.py over all the runs).
#
#   bash tools/compare/compare_methods.sh [--config conf/demo.yaml] [--seeds "0 1 2"]
#        [--out runs/compare] [--methods "source_only dann ..."] [-- da_dist arguments...]
#
# The config names the archives (the demo's by default; pass your own config
# or `-- --set data.source.train=[...] ...`). Each method runs with the
# config's model and schedule; the method settings are in METHOD_YAML below.
# Runs that exist (metrics.jsonl with the last epoch) are reused, so an
# interrupted comparison continues where it stopped. BUILD_DIR [build].
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
config=conf/demo.yaml
seeds="0 1 2"
out=runs/compare
methods="source_only dann dann_2layers cdan cdan_e advent entropy advent_adversarial mcc dann_bsp mmd coral fda pseudo_label mstn adabn dann_adabn"
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
    source_only) echo "{name: source_only}" ;;
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
    *) echo "compare_methods: no settings for method '$1' (add it to method_yaml)" >&2; exit 2 ;;
  esac
}

# Source-only is the plain source-trained model: with domain-specific
# BatchNorm (model.bn_mode dsbn) its target branch would never see a batch
# and keep its initial statistics, so it always trains with joint BatchNorm.
baseline_args() {
  [ "$1" = source_only ] && echo "--set model.bn_mode=joint"
  return 0
}

[ -x "$BUILD_DIR/src/da_dist" ] || { echo "compare_methods: $BUILD_DIR/src/da_dist missing (bash tools/setup.sh)" >&2; exit 2; }
if [ "$config" = conf/demo.yaml ] && [ ! -f data/demo/target_val.h5 ]; then
  "$BUILD_DIR"/tools/da_tiles/da_tiles synth --out data/demo --seed 0
fi
mkdir -p "$out"  # its runs and, beside it, the log of the run in progress
for m in $methods; do
  for s in $seeds; do
    run="$out/$m-seed$s"
    if [ -f "$run/metrics.jsonl" ] && grep -q '"iou/target_val"' "$run/metrics.jsonl"; then continue; fi
    echo "compare_methods: $m seed $s" >&2
    "$BUILD_DIR"/src/da_dist --config "$config" --set run.output_dir="$out" --set run.name="$m-seed$s" \
      --set run.seed="$s" --set "domain_adaptation.method=$(method_yaml "$m")" "${extra[@]}" \
      $(baseline_args "$m") > "$out.log.tmp" 2>&1 ||
      { echo "compare_methods: $m seed $s failed:" >&2; tail -5 "$out.log.tmp" >&2; exit 1; }
  done
done
rm -f "$out.log.tmp"

/usr/bin/python3 - "$out" "$methods" "$seeds" <<'PY'
import json, statistics, sys
out, methods, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def last_epoch(m, s):
    rows = [json.loads(l) for l in open(f"{out}/{m}-seed{s}/metrics.jsonl") if '"kind": "epoch"' in l]
    return rows[-1]
res = {m: [last_epoch(m, s) for s in seeds] for m in methods}
base = {s: r["iou/target_val"] for s, r in zip(seeds, res.get("source_only", []))}
def fmt(values):
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3f} ± {spread:.3f}"
print(f"| method | target mIoU | source mIoU | target gain over source-only (same seed) | seeds |")
print("| --- | --- | --- | --- | --- |")
for m in methods:
    t = [r["iou/target_val"] for r in res[m]]
    src = [r["iou/source_val"] for r in res[m]]
    gain = fmt([r["iou/target_val"] - base[s] for s, r in zip(seeds, res[m])]) if base else "-"
    print(f"| {m} | {fmt(t)} | {fmt(src)} | {gain} | {len(seeds)} |")
PY

echo
/usr/bin/python3 tools/compare/selection_gap.py $(for m in $methods; do for s in $seeds; do echo "$out/$m-seed$s"; done; done)
