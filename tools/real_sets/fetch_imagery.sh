#!/usr/bin/env bash
# Downloads the Debian packages whose real imagery the benchmark sets use
# and extracts them (nothing is installed) under DIR [data/real/imagery]:
# gimp-data (GIMP's photographic patterns) and gpredict (NASA Blue Marble
# Next Generation monthly mosaics). Does nothing when they are there.
set -euo pipefail
dir=${1:-data/real/imagery}
packages=(gimp-data gpredict)
mkdir -p "$dir/debs"
for p in "${packages[@]}"; do
  [ -f "$dir/debs/$p.extracted" ] && continue
  ( cd "$dir/debs" && apt-get download "$p" ) ||
    { echo "fetch_imagery: apt-get download $p failed (is Debian's archive reachable? apt-get update?)" >&2; exit 1; }
  dpkg-deb -x "$dir"/debs/"$p"_*.deb "$dir"
  ls "$dir"/debs/"$p"_*.deb > "$dir/debs/$p.extracted"
done
