#!/bin/bash
# Loss agreement of da_dist and the PyTorch peer (tools/bench_train/dataloader_peer.py)
# on identical inputs: the same initial weights (da_bench_step --dump-state
# writes the weights da_dist starts from; the peer loads them), the same tiles
# (one batch per epoch holding every tile, so the loader's shuffling cannot
# change a batch; no augmentation; normalisation by the archives'
# band_mean/band_std), the same AdamW, poly learning-rate and DANN lambda
# schedules. Compares loss/seg, loss/da and loss/total of the first STEPS steps.
#
#   bash tools/bench_train/loss_check.sh [BUILD_DIR]
#
# BUILD_DIR (default build/) needs src/da_dist, tools/da_tiles/da_tiles and
# tools/bench_train/da_bench_step (this script builds nothing). Environment:
#   STEPS [3]  steps (epochs of one batch); TILES [4] tiles per domain (the batch);
#   SIZE [64]  tile size; ENCODER [resnet18]; CHANNELS_LAST [0]: 1 trains
#   both in channels-last layout (the GPU benchmark's); OPTIMIZER [adamw] or
#   sgd (momentum 0.9: with channels-last, whose convolutions sum in another
#   order, AdamW's first steps turn that rounding into 1e-3 differences even
#   between two da_dist runs; SGD shows a wrong gradient without amplifying
#   rounding); TOL [2e-4] largest relative
#   difference allowed. Why 2e-4: step 0 agrees to float32 rounding (1e-7:
#   the same ATen kernels, summed in another order since da_dist shuffles the
#   batch); AdamW's first updates move weights with near-zero gradients by
#   about lr whatever the sign of their rounding noise, so the difference grows
#   to 3e-5 by step 2 (measured 2026-11-23), and 2e-4 leaves a 7x margin; a
#   peer with a 10% larger learning rate differs by 7e-3 at step 1, 35x it;
#   PYTHON [the project venv, .venv/bin/python]; WORK: keep the files there (default: temporary).
# Prints the losses side by side and the largest relative difference; exit
# status 0 when it is <= TOL, 1 when larger or a run fails, 2 on missing
# binaries, 77 (ctest's skip) when PYTHON lacks torch, torchvision or h5py.
# ctest runs it as bench_train_loss_agreement (tests/trainer/CMakeLists.txt).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
PYTHON=${PYTHON:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}
STEPS=${STEPS:-3} TILES=${TILES:-4} SIZE=${SIZE:-64} ENCODER=${ENCODER:-resnet18} TOL=${TOL:-2e-4}
OPTIMIZER=${OPTIMIZER:-adamw}
ours_layout=(--set "optimizer.name=$OPTIMIZER") peer_layout=(--optimizer "$OPTIMIZER")
if [[ ${CHANNELS_LAST:-0} == 1 ]]; then
  ours_layout+=(--set run.memory_format=channels_last) peer_layout+=(--channels-last)
fi
dadist=$build/src/da_dist tiles_bin=$build/tools/da_tiles/da_tiles step_bin=$build/tools/bench_train/da_bench_step
for b in "$dadist" "$tiles_bin" "$step_bin"; do
  if [[ ! -x $b ]]; then
    echo "loss_check: $b not found; build it with cmake --build $build --target da_dist da_tiles da_bench_step" >&2
    exit 2
  fi
done
if ! "$PYTHON" -c 'import torch, torchvision, h5py' 2>/dev/null; then
  echo "loss_check: $PYTHON lacks torch/torchvision/h5py (set PYTHON); skipped" >&2
  exit 77
fi
if [[ -n ${WORK:-} ]]; then
  mkdir -p "$WORK"; work=$(cd "$WORK" && pwd)
else
  work=$(mktemp -d /tmp/loss_check.XXXXXX)
  trap 'rc=$?; if ((rc == 0)); then rm -rf "$work"; else echo "loss_check: kept $work" >&2; fi' EXIT
fi
cd "$work"
export OMP_NUM_THREADS=1
"$tiles_bin" synth --out data --tiles "$TILES" --val-tiles 4 --size "$SIZE" --seed 0 >/dev/null
source "$root/tools/bench_train/bench_config.sh"
write_bench_config check.yaml check "$STEPS" "$TILES" 0 "$ENCODER" false 1
"$step_bin" --config check.yaml "${ours_layout[@]}" --dump-state init.pt >dump.log 2>&1 || { cat dump.log >&2; echo "loss_check: da_bench_step failed" >&2; exit 1; }
"$dadist" --config check.yaml "${ours_layout[@]}" >da_dist.log 2>&1 || { tail -20 da_dist.log >&2; echo "loss_check: da_dist failed" >&2; exit 1; }
"$PYTHON" "$root/tools/bench_train/dataloader_peer.py" --source data/source_train.h5 --target data/target_train.h5 \
  --batch "$TILES" --epochs "$STEPS" --workers 0 --threads 1 --encoder "$ENCODER" --check-state init.pt "${peer_layout[@]}" \
  >peer.log 2>&1 || { tail -20 peer.log >&2; echo "loss_check: the PyTorch peer failed" >&2; exit 1; }

"$PYTHON" - runs/check/metrics.jsonl peer.log "$STEPS" "$TOL" <<'PY'
import json, sys
metrics, peer_log, steps, tol = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ours = {}
for line in open(metrics):
    if line.strip():
        rec = json.loads(line)
        if rec.get("kind") == "step":
            ours[int(rec["step"]) - 1] = [float(rec[k]) for k in ("loss/seg", "loss/da", "loss/total")]
peer = {}
for line in open(peer_log):
    if line.startswith("LOSS "):
        _, step, *vals = line.split()
        peer[int(step)] = [float(v) for v in vals]
worst = 0.0
print(f"{'step':>4} {'da_dist seg':>12} {'peer seg':>12} {'da_dist da':>12} {'peer da':>12} "
      f"{'da_dist total':>13} {'peer total':>12} {'max rel diff':>12}")
for s in range(steps):
    if s not in ours or s not in peer:
        sys.exit(f"loss_check: step {s} missing ({'da_dist' if s not in ours else 'peer'})")
    a, b = ours[s], peer[s]
    rel = max(abs(x - y) / max(abs(x), abs(y), 1e-12) for x, y in zip(a, b))
    worst = max(worst, rel)
    print(f"{s:>4} {a[0]:12.7f} {b[0]:12.7f} {a[1]:12.7f} {b[1]:12.7f} {a[2]:13.7f} {b[2]:12.7f} {rel:12.3e}")
print(f"max relative difference over {steps} steps: {worst:.3e} (tolerance {tol:g})")
sys.exit(0 if worst <= tol else 1)
PY
