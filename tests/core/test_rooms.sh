#!/usr/bin/env bash
# The repository keeps its rooms' dependencies (check_rooms.py exits 0), and
# the check does see a break: a copy of the sources where inference includes
# the training loop is refused with the file, line and rooms.
set -euo pipefail
root=$1
py=${PYTHON:-python3}
"$py" "$root/tests/core/check_rooms.py" "$root"

copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
cp -r "$root/io" "$root/dist" "$root/methods" "$root/src" "$copy/"
printf '#include "trainer/trainer.h"\n' >> "$copy/src/inference/predict.cpp"
line=$(wc -l < "$copy/src/inference/predict.cpp")
set +e
out=$("$py" "$root/tests/core/check_rooms.py" "$copy")
status=$?
set -e
[ "$status" -eq 1 ] || { echo "expected exit 1 for inference -> trainer, got $status: $out"; exit 1; }
[ "$out" = "src/inference/predict.cpp:$line: inference/ includes trainer/" ] || { echo "unexpected report: $out"; exit 1; }

mkdir "$copy/src/newroom" && touch "$copy/src/newroom/a.h"
set +e
out=$("$py" "$root/tests/core/check_rooms.py" "$copy")
status=$?
set -e
[ "$status" -eq 2 ] && [ "$out" = "rooms missing from the table: newroom" ] || { echo "new folder: $status $out"; exit 1; }
echo "rooms: dependencies point one way"
