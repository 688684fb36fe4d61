#!/usr/bin/env bash
# tools/plot_run.py on a small metrics.jsonl: a PNG of the expected size
# (11x7 inches at 90 dpi), and a malformed line named by file and line.
set -euo pipefail
root=$1
python=${PYTHON:-$root/.venv/bin/python}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/metrics.jsonl" <<'JSON'
{"kind": "step", "epoch": 0, "step": 2, "loss/total": 1.2, "loss/seg": 0.5, "loss/da": 0.7, "lambda": 0.1, "lr": 0.001, "da/dann/domain_acc": 0.6}
{"kind": "step", "epoch": 0, "step": 4, "loss/total": 1.0, "loss/seg": 0.4, "loss/da": 0.6, "lambda": 0.3, "lr": 0.0009, "da/dann/domain_acc": 0.5}
{"kind": "epoch", "epoch": 0, "step": 4, "iou/source_val": 0.5, "iou/target_val": 0.3}
JSON
out=$("$python" "$root/tools/plot_run.py" "$dir" --out "$dir/plot.png")
[ "$out" = "$dir/plot.png" ] || { echo "printed '$out'"; exit 1; }
"$python" - "$dir/plot.png" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", data[16:24])
assert (width, height) == (990, 630), (width, height)
PY
echo '{"kind": "step", "step": 6, ' >> "$dir/metrics.jsonl"
if msg=$("$python" "$root/tools/plot_run.py" "$dir" 2>&1); then
  echo "a malformed line was accepted"; exit 1
fi
[[ "$msg" == *"metrics.jsonl:4: not JSON"* ]] || { echo "unexpected message: $msg"; exit 1; }
echo ok
