#!/usr/bin/env bash
# Builds one real-imagery benchmark set into data/real/SET/: the imagery
# (fetch_imagery.sh), the rasters (make_rasters.py, deterministic), then the
# four tile archives {source,target}_{train,val}.h5 cut by `da_tiles make`
# and checked by `da_tiles inspect --verify`.
#   bash tools/real_sets/build_set.sh materials_instances|materials_sensor|earth_seasons
# Needs the build (BUILD_DIR [build]) and the project's venv (tools/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
set_name=${1:?usage: build_set.sh SET}
out=data/real/$set_name
bash tools/real_sets/fetch_imagery.sh data/real/imagery
classes=$(.venv/bin/python tools/real_sets/make_rasters.py "$set_name" --imagery data/real/imagery --out "$out")
for domain in source target; do
  for split in train val; do
    "$BUILD_DIR"/tools/da_tiles/da_tiles make --image "$out/${domain}_${split}_image.tif" \
      --labels "$out/${domain}_${split}_labels.tif" --tile-size 64 --classes "$classes" \
      --domain "$domain" --bands red,green,blue --out "$out/${domain}_${split}.h5"
  done
done
"$BUILD_DIR"/tools/da_tiles/da_tiles inspect --verify "$out"/*.h5 > "$out/inspect.txt"
echo "build_set: $out/{source,target}_{train,val}.h5 ($classes)"
