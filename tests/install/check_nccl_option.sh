#!/usr/bin/env bash
# -DDA_WITH_NCCL=ON on a machine whose Torch has no CUDA must stop the
# configure step with a message that says what is missing.
#   check_nccl_option.sh <source-dir>
set -uo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$(cmake -S "$1" -B "$work" -DDA_WITH_NCCL=ON -DDA_BUILD_TESTS=OFF 2>&1)
status=$?
if [ $status -eq 0 ]; then
  echo "configure with DA_WITH_NCCL=ON succeeded; expected an error"; exit 1
fi
echo "$out" | grep -q "DA_WITH_NCCL=ON but these are missing: a CUDA build of Torch" || { echo "$out"; exit 1; }
out=$(cmake -S "$1" -B "$work/bad" -DDA_WITH_NCCL=MAYBE -DDA_BUILD_TESTS=OFF 2>&1)
echo "$out" | grep -q "DA_WITH_NCCL must be AUTO, ON or OFF (got 'MAYBE')" || { echo "$out"; exit 1; }
echo "ok"
