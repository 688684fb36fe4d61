#!/usr/bin/env python3
"""Writes one benchmark set's rasters: for each domain and split, a mosaic of
tiles (image GeoTIFF, 3 bands) and its labels (1 band), which
`da_tiles make --tile-size SIZE` cuts back into exactly those tiles.

    make_rasters.py SET --imagery DIR --out DIR [--train-tiles 320]
                    [--val-tiles 64] [--size 64] [--seed 0]

The same arguments and imagery give the same bytes. OUT/manifest.json
records the set, its classes, the arguments and the SHA-256 of every image
file read.
"""
import argparse
import json
import os
import sys

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imagery  # noqa: E402
import layout  # noqa: E402
from sets import SETS  # noqa: E402

COLUMNS = 16  # tiles per mosaic row


def write_geotiff(path, bands):
    """bands: uint8 [count, rows, cols]."""
    count, rows, cols = bands.shape
    raster = gdal.GetDriverByName("GTiff").Create(path, cols, rows, count, gdal.GDT_Byte, ["COMPRESS=DEFLATE"])
    for b in range(count):
        raster.GetRasterBand(b + 1).WriteArray(bands[b])
    raster.FlushCache()


def mosaic(tiles, size):
    rows = -(-len(tiles) // COLUMNS)
    out = np.zeros((rows * size, COLUMNS * size) + tiles[0].shape[2:], np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, COLUMNS)
        out[r * size:(r + 1) * size, c * size:(c + 1) * size] = tile
    return out


DOMAINS = {"source": 0, "target": 1}
SPLITS = {"train": 0, "val": 1}


def generate(pools, sensor, count, size, key):
    """count tiles: (images [size, size, 3], labels [size, size]). The layouts
    draw from their own random stream, so the labels depend on `key` and the
    number of classes only, never on the imagery."""
    layouts = np.random.default_rng(key + [0])
    textures = np.random.default_rng(key + [1])
    images, labels = [], []
    for _ in range(count):
        tile_labels, regions = layout.voronoi_layout(layouts, size, len(pools))
        image = layout.fill(textures, tile_labels, regions, pools)
        images.append(sensor(textures, image) if sensor else image)
        labels.append(tile_labels)
    return images, labels


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set", choices=sorted(SETS))
    parser.add_argument("--imagery", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--train-tiles", type=int, default=320)
    parser.add_argument("--val-tiles", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.train_tiles % COLUMNS or args.val_tiles % COLUMNS:
        parser.error(f"--train-tiles and --val-tiles must be multiples of {COLUMNS} (whole mosaic rows)")
    os.makedirs(args.out, exist_ok=True)
    for domain in ("source", "target"):
        classes, pools, sensor = SETS[args.set](args.imagery, domain)
        for split, count in (("train", args.train_tiles), ("val", args.val_tiles)):
            images, labels = generate(pools, sensor, count, args.size, [args.seed, DOMAINS[domain], SPLITS[split]])
            stem = f"{args.out}/{domain}_{split}"
            write_geotiff(stem + "_image.tif", np.moveaxis(mosaic(images, args.size), 2, 0))
            write_geotiff(stem + "_labels.tif", mosaic(labels, args.size)[None])
    read = sorted(imagery.files_read)
    manifest = {"set": args.set, "classes": classes, "arguments": {k: v for k, v in vars(args).items() if k not in ("imagery", "out")},
                "files": {os.path.relpath(p, args.imagery): imagery.sha256(p) for p in read}}
    with open(f"{args.out}/manifest.json", "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(",".join(classes))


if __name__ == "__main__":
    main()
