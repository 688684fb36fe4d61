#!/usr/bin/env bash
# Every method and baseline on one real-imagery set (built first when
# missing), 3 seeds, into runs/real/SET; prints compare_methods.sh's tables.
#   bash tools/real_sets/compare_real.sh SET [compare_methods.sh arguments, e.g. --methods "..."]
set -euo pipefail
cd "$(dirname "$0")/../.."
set_name=${1:?usage: compare_real.sh SET [compare_methods.sh arguments]}
shift
[ -f "data/real/$set_name/target_val.h5" ] || bash tools/real_sets/build_set.sh "$set_name"
d=data/real/$set_name
args=(--config conf/real_sets.yaml --out "runs/real/$set_name" "$@")
[[ " $* " == *" -- "* ]] || args+=(--)
exec bash tools/compare/compare_methods.sh "${args[@]}" \
  --set "data.source.train=[$d/source_train.h5]" --set "data.source.val=[$d/source_val.h5]" \
  --set "data.target.train=[$d/target_train.h5]" --set "data.target.val=[$d/target_val.h5]"
