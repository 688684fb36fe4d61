#!/usr/bin/env bash
# tools/compare/selection_gap.py on two hand-made runs whose picks are known:
# the table's gaps and hits, the first best on a tie, and a run without
# target labels refused by name.
set -euo pipefail
root=$1
python=${PYTHON:-$root/.venv/bin/python}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/a" "$dir/b" "$dir/unlabelled"
# a: labels pick epoch 1 (0.40); source IoU and entropy pick epoch 2 (0.35).
cat > "$dir/a/metrics.jsonl" <<'JSON'
{"kind": "step", "epoch": 0, "step": 2, "train/loss/seg": 1.0}
{"kind": "epoch", "epoch": 0, "iou/target_val": 0.30, "iou/source_val": 0.50, "unsup/snd": 1.0, "unsup/target_entropy": 0.6, "unsup/class_prior_gap": 0.30}
{"kind": "epoch", "epoch": 1, "iou/target_val": 0.40, "iou/source_val": 0.60, "unsup/snd": 1.5, "unsup/target_entropy": 0.5, "unsup/class_prior_gap": 0.20}
{"kind": "epoch", "epoch": 2, "iou/target_val": 0.35, "iou/source_val": 0.70, "unsup/snd": 1.2, "unsup/target_entropy": 0.4, "unsup/class_prior_gap": 0.25}
JSON
# b: labels pick epoch 0 (0.20); entropy ties, and the first (epoch 0) counts.
cat > "$dir/b/metrics.jsonl" <<'JSON'
{"kind": "epoch", "epoch": 0, "iou/target_val": 0.20, "iou/source_val": 0.40, "unsup/snd": 2.0, "unsup/target_entropy": 0.3, "unsup/class_prior_gap": 0.10}
{"kind": "epoch", "epoch": 1, "iou/target_val": 0.10, "iou/source_val": 0.50, "unsup/snd": 1.0, "unsup/target_entropy": 0.3, "unsup/class_prior_gap": 0.40}
JSON
out=$("$python" "$root/tools/compare/selection_gap.py" "$dir/a" "$dir/b")
expected='| signal (mode) | mean target-mIoU gap | largest gap | label-chosen epoch picked | runs |
| --- | ---: | ---: | ---: | ---: |
| iou/source_val (max) | 0.0750 | 0.1000 | 0 | 2 |
| unsup/snd (max) | 0.0000 | 0.0000 | 2 | 2 |
| unsup/target_entropy (min) | 0.0250 | 0.0500 | 1 | 2 |
| unsup/class_prior_gap (min) | 0.0000 | 0.0000 | 2 | 2 |
| last epoch | 0.0750 | 0.1000 | 0 | 2 |'
[ "$out" = "$expected" ] || { printf 'got:\n%s\nexpected:\n%s\n' "$out" "$expected"; exit 1; }
echo '{"kind": "epoch", "epoch": 0, "unsup/snd": 1.0}' > "$dir/unlabelled/metrics.jsonl"
if msg=$("$python" "$root/tools/compare/selection_gap.py" "$dir/unlabelled" 2>&1); then
  echo "a run without target labels was accepted"; exit 1
fi
[[ "$msg" == *"unlabelled/metrics.jsonl: no epoch line with iou/target_val"* ]] || { echo "unexpected message: $msg"; exit 1; }
echo ok
