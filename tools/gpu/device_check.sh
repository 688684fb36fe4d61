#!/usr/bin/env bash
# The GPU check: one command, on a borrowed GPU machine (one H100 or H200,
# Python 3.12 with torch 2.11.0+cu130, CMake, nvcc; nothing of ours, no
# network), shows whether da_dist trains correctly and fast there.
#
#   bash tools/gpu/make_payload.sh            # here: build and pack gpu_payload.tar.gz
#   bash tools/gpu/device_check.sh --dry-run  # here: the whole check on the CPU
#   bash tools/gpu/device_check.sh            # there, from the checkout's root,
#                                             # with gpu_payload.tar.gz beside it
#
# Steps (each logged; the command goes on after a failing step and exits 1):
#   1. environment: GPU, driver, torch/CUDA/cuDNN/NCCL versions, glibc, the
#      payload's MANIFEST;
#   2. the payload against this machine: every library of every program
#      resolves inside the payload, the machine's torch or its base system;
#   3. the cuda tests (tests/cuda: test_cuda, gtest XML kept);
#   4. the demo (conf/demo.yaml, DEMO_EPOCHS [6]) at np=1 on NCCL in fp32,
#      and in bf16 with channels-last;
#   5. the benchmark: da_dist against the PyTorch peer
#      (tools/bench_train/dataloader_peer.py: DataLoader + DDP over NCCL, one
#      rank) on the same U-Net ResNet-34 + DANN, BENCH_TILES [256] tiles of
#      512x512 a domain, batch BENCH_BATCH [16], bf16, channels-last,
#      BENCH_WORKERS [8] loader workers, BENCH_EPOCHS [3] (the last one is
#      measured), then each one's compute-only step (one batch held on the
#      GPU, BENCH_STEPS [40] steps after 5 warm-up steps, then as many again
#      waiting for the GPU at each phase's end for the step split);
#   6. results.md: the table for the README.
# Each step is bounded by STEP_TIMEOUT [150] s (the cuda tests 300 s) and all
# of them by CHECK_SECONDS [470; 1800 for --dry-run] from the start: the
# command ends within 8 minutes even when a step hangs.
# Writes everything to $OUT (the device tool's) or gpu_check/. With
# --dry-run it first makes the payload, then runs steps 1-6 on this machine's
# CPU against the pinned torch of .venv, with everything small: steps 4 and 5
# in fp32 on the CPU, plus two ranks over the payload's own Open MPI; the
# cuda tests must all skip. GPU-only settings are left out there, nothing else.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2
dry=0
[[ ${1:-} == --dry-run ]] && dry=1
out=${OUT:-$root/gpu_check}
mkdir -p "$out"
: >"$out/summary.txt"
failures=0
say() { echo "[device_check $(date -u +%H:%M:%S)] $*" | tee -a "$out/summary.txt"; }
fail() { say "FAILED: $*"; failures=$((failures + 1)); }

if ((dry)); then
  PY=${PYTHON:-$root/.venv/bin/python}
  bash "$root/tools/gpu/make_payload.sh" >"$out/make_payload.log" 2>&1 || { tail -20 "$out/make_payload.log"; say "make_payload failed"; exit 1; }
  say "$(tail -1 "$out/make_payload.log")"
  dev=cpu backend=auto precisions=(fp32) demo_epochs=1
  bench=(16 64 2 2 1 3)  # tiles size batch epochs workers steps
else
  PY=${PYTHON:-python3}
  dev=cuda backend=nccl precisions=(fp32 bf16) demo_epochs=${DEMO_EPOCHS:-6}
  bench=("${BENCH_TILES:-256}" 512 "${BENCH_BATCH:-16}" "${BENCH_EPOCHS:-3}" "${BENCH_WORKERS:-8}" "${BENCH_STEPS:-40}")
fi
[[ -f $root/gpu_payload.tar.gz ]] || { say "gpu_payload.tar.gz not found: make it with tools/gpu/make_payload.sh"; exit 2; }
work=$(mktemp -d /tmp/da_gpu_check.XXXXXX)
tar -C "$work" -xzf "$root/gpu_payload.tar.gz"
# shellcheck source=/dev/null
DA_PAYLOAD_PYTHON=$PY source "$work/gpu_payload/env.sh"
check_seconds=${CHECK_SECONDS:-470}
((dry)) && check_seconds=${CHECK_SECONDS:-1800}  # this machine's 2 cores are no GPU
deadline=$((SECONDS + check_seconds))
left() {  # left [CAP]: seconds a step may take
  local l=$((deadline - SECONDS)) cap=${1:-${STEP_TIMEOUT:-150}}
  ((l < 1)) && l=1
  echo $((l < cap ? l : cap))
}
run() { env "${DA_PAYLOAD_ENV[@]}" timeout "$(left)" "$@"; }
bin=$DA_PAYLOAD/build
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

# --- 1. environment -----------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "kernel: $(uname -r); glibc $(ldd --version | head -1 | awk '{print $NF}'); $(nproc) CPUs"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$PY" - <<'PY'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"NCCL {'.'.join(map(str, torch.cuda.nccl.version())) if torch.cuda.is_available() else '-'}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU 0: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, capability {p.major}.{p.minor}")
else:
    print("no CUDA device visible to torch")
PY
  sed -n '1,4p' "$DA_PAYLOAD/MANIFEST.txt"
} >"$out/environment.txt" 2>&1
cat "$out/environment.txt"
((dry)) || "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || fail "torch sees no GPU"

# --- 2. the payload resolves here ---------------------------------------------
torch_lib=$("$PY" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
for program in "$bin"/src/da_dist "$bin"/tools/da_tiles/da_tiles "$bin"/tools/bench_train/da_bench_step \
  "$bin"/tests/cuda/test_cuda "$DA_PAYLOAD"/deps/usr/bin/orterun "$DA_PAYLOAD"/deps/usr/bin/orted; do
  run ldd "$program" >"$out/ldd.txt" 2>&1
  # Each library from the payload, the machine's torch (site-packages) or its base system.
  outside=$(awk -v p="$DA_PAYLOAD" -v t="$torch_lib" '/=>/ && $3 != "" && index($3, p) != 1 && index($3, t) != 1 {print $1}' "$out/ldd.txt" |
    grep -vE '^(libc|libm|libdl|librt|libpthread|libutil|libresolv|libanl|libmvec)\.so|^libstdc\+\+\.so|^libgcc_s\.so|^ld-linux|^libcuda\.so|^linux-vdso')
  grep -q "not found" "$out/ldd.txt" && fail "$(basename "$program"): $(grep "not found" "$out/ldd.txt" | tr -s ' \t' ' ' | tr '\n' ';')"
  [[ -z $outside ]] || fail "$(basename "$program") takes from this machine, not the payload: $(echo "$outside" | tr '\n' ' ')"
done
if ((dry)); then
  "$PY" "$root/tools/gpu/payload_closure.py" "$DA_PAYLOAD" --python "$PY" >>"$out/summary.txt" 2>&1 || fail "payload closure"
  # Built without GDAL: what needs it says so instead of failing obscurely.
  run "$bin/tools/da_tiles/da_tiles" make --image x.tif --out x.h5 --tile-size 8 >"$out/no_gdal.log" 2>&1
  status=$?
  if ((status != 2)) || ! grep -q "built without it (DA_WITH_GDAL=OFF)" "$out/no_gdal.log"; then
    fail "da_tiles make without GDAL: exit $status, $(head -1 "$out/no_gdal.log")"
  fi
fi
say "payload: $(du -sh "$DA_PAYLOAD" | cut -f1) unpacked; libraries resolved"

# --- 3. the cuda tests --------------------------------------------------------
DA_TEST_SOURCE_DIR=$root DA_TEST_PYTHON=$PY timeout "$(left 300)" env "${DA_PAYLOAD_ENV[@]}" \
  "$bin/tests/cuda/test_cuda" --gtest_color=no --gtest_output="xml:$out/cuda_tests.xml" >"$out/cuda_tests.log" 2>&1
status=$?
# gtest's totals ("[  PASSED  ] 9 tests.") and the names of failed tests
tests_line=$(grep -E '^\[  (PASSED|SKIPPED|FAILED) +\] [0-9]+ test|^\[  FAILED  \] [A-Za-z]' "$out/cuda_tests.log" |
  sort -u | tr '\n' ' ')
if ((status != 0)); then
  fail "cuda tests (exit $status): $tests_line"
elif ((dry)) && ! grep -q '^\[  PASSED  \] 0 tests' "$out/cuda_tests.log"; then
  fail "cuda tests did not all skip on the CPU: $tests_line"
else
  say "cuda tests: $tests_line"
fi

# --- 4. the demo --------------------------------------------------------------
cd "$work" || exit 2
run "$bin/tools/da_tiles/da_tiles" synth --out data/demo --seed 0 >"$out/demo_data.log" 2>&1 || fail "da_tiles synth (demo)"
metric() {  # metric RUN_DIR KEY: the last epoch's value (- where none has it)
  "$PY" -c 'import json, sys
v = "-"
for line in open(sys.argv[1] + "/metrics.jsonl"):
    r = json.loads(line)
    if r.get("kind") == "epoch" and sys.argv[2] in r: v = r[sys.argv[2]]
print(v if isinstance(v, str) else f"{v:.4g}")' "$1" "$2" 2>/dev/null || echo -
}
for precision in "${precisions[@]}"; do
  name=demo_$precision
  sets=(--set "run.device=$dev" --set "dist.backend=$backend" --set "run.precision=$precision"
        --set "run.max_epochs=$demo_epochs" --set run.output_dir=runs --set "run.name=$name" --set logging.progress=false)
  [[ $precision == bf16 ]] && sets+=(--set run.memory_format=channels_last)
  if run "$bin/src/da_dist" --config "$root/conf/demo.yaml" "${sets[@]}" >"$out/$name.log" 2>&1; then
    r=runs/$name
    say "demo $precision: target mIoU $(metric "$r" iou/target_val), source $(metric "$r" iou/source_val)," \
      "$(metric "$r" time/images_per_s) images/s, GPU peak $(metric "$r" time/gpu_peak_mb) MiB"
  else
    fail "demo $precision ($(tail -1 "$out/$name.log"))"
  fi
done
if ((dry)); then  # two ranks through the payload's Open MPI (relocated), on the CPU
  if run mpirun -np 2 --oversubscribe "$bin/src/da_dist" --config "$root/conf/demo.yaml" --set run.device=cpu \
    --set run.max_epochs=1 --set run.output_dir=runs --set run.name=demo_np2 --set logging.progress=false \
    >"$out/demo_np2.log" 2>&1; then
    say "demo at np=2 over the payload's Open MPI: target mIoU $(metric runs/demo_np2 iou/target_val)"
  else
    fail "demo at np=2 over the payload's Open MPI ($(tail -1 "$out/demo_np2.log"))"
  fi
fi

# --- 5. the benchmark ---------------------------------------------------------
read -r tiles size batch epochs workers steps <<<"${bench[*]}"
bench_precision=bf16
((dry)) && bench_precision=fp32
run "$bin/tools/da_tiles/da_tiles" synth --out data --tiles "$tiles" --val-tiles 2 --size "$size" --seed 1 \
  >"$out/bench_data.log" 2>&1 || fail "da_tiles synth (benchmark)"
# shellcheck source=tools/bench_train/bench_config.sh
source "$root/tools/bench_train/bench_config.sh"
write_bench_config bench.yaml bench "$epochs" "$batch" "$workers" resnet34 false 10
gpu_sets=(--set "run.device=$dev" --set "dist.backend=$backend" --set "run.precision=$bench_precision"
          --set run.memory_format=channels_last --set "run.threads=$OMP_NUM_THREADS")
peer=("$PY" "$root/tools/bench_train/dataloader_peer.py" --source data/source_train.h5 --target data/target_train.h5
      --batch "$batch" --workers "$workers" --threads "$OMP_NUM_THREADS" --encoder resnet34 --device "$dev"
      --channels-last --precision "$bench_precision")
((dry)) || peer+=(--backend nccl --ddp)
result() { grep '^RESULT' "$1" | tail -1; }
run "$bin/src/da_dist" --config bench.yaml "${gpu_sets[@]}" >"$out/bench_da_dist.log" 2>&1 || fail "benchmark: da_dist"
run "$bin/tools/bench_train/da_bench_step" --config bench.yaml "${gpu_sets[@]}" --steps "$steps" --warmup 5 \
  >"$out/bench_da_dist_compute.log" 2>&1 || fail "benchmark: da_bench_step"
timeout "$(left)" "${peer[@]}" --epochs "$epochs" >"$out/bench_peer.log" 2>&1 || fail "benchmark: the PyTorch peer"
timeout "$(left)" "${peer[@]}" --epochs "$epochs" --compute-only --steps "$steps" --warmup 5 >"$out/bench_peer_compute.log" 2>&1 ||
  fail "benchmark: the PyTorch peer (compute-only)"

# --- 6. the table ---------------------------------------------------------------
"$PY" - "$out" runs/bench "$dev" "$bench_precision" "$tiles" "$size" "$batch" "$workers" "$OMP_NUM_THREADS" \
  >"$out/results.md" 2>>"$out/summary.txt" <<'PY' || fail "results table"
import json, math, sys
out, run_dir, dev, precision, tiles, size, batch, workers, threads = sys.argv[1:]
def result(name):
    for line in reversed(open(f"{out}/{name}.log").read().splitlines()):
        if line.startswith("RESULT"):
            return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    return {}
epoch = {}
for line in open(f"{run_dir}/metrics.jsonl"):
    r = json.loads(line)
    if r.get("kind") == "epoch":
        epoch = r
ours = {"images_per_s": epoch.get("time/images_per_s", math.nan), "step_s": epoch.get("time/step_s", math.nan),
        "gpu_peak_mb": epoch.get("time/gpu_peak_mb", math.nan)}
rows = [("da_dist", ours, result("bench_da_dist_compute")), ("PyTorch peer", result("bench_peer"), result("bench_peer_compute"))]
env = open(f"{out}/environment.txt").read().splitlines()
print(f"U-Net ResNet-34 + DANN, {tiles} tiles of {size}x{size} a domain, batch {batch}, {precision}, channels-last, "
      f"{workers} loader workers, {threads} intra-op threads, one rank on {dev}; {env[0]}")
print()
def cell(v, spec):
    return "-" if math.isnan(v) or (v == 0 and dev == "cpu") else format(v, spec)
print("| | images/s | step (ms) | loader and feed share | compute-only images/s | compute-only step (ms) "
      "| forward+backward (ms) | optimizer (ms) | GPU peak (MiB) | compute-only GPU peak (MiB) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, e2e, comp in rows:
    step, cstep = e2e.get("step_s", math.nan), comp.get("step_s", math.nan)
    share = (step - cstep) / step if step > 0 else math.nan
    ms = lambda r, k: 1000 * r.get(k, math.nan)
    print(f"| {name} | {cell(e2e.get('images_per_s', math.nan), '.1f')} | {cell(1000 * step, '.1f')} "
          f"| {cell(share, '.2f')} | {cell(comp.get('images_per_s', math.nan), '.1f')} | {cell(1000 * cstep, '.1f')} "
          f"| {cell(ms(comp, 'forward_backward_s'), '.1f')} | {cell(ms(comp, 'optimizer_s'), '.1f')} "
          f"| {cell(e2e.get('gpu_peak_mb', math.nan), '.0f')} | {cell(comp.get('gpu_peak_mb', math.nan), '.0f')} |")
print()
print("Compute-only: --steps on one batch kept on the device (no loader); its forward+backward and optimizer split "
      "comes from a second pass that waits for the GPU at each phase's end.")
PY
cat "$out/results.md"
cd "$root" || exit 2
rm -rf "$work"
if ((failures)); then
  say "$failures step(s) failed; logs in $out"
  exit 1
fi
say "all steps passed; logs and results.md in $out"
