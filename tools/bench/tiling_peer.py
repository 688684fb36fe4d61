#!/usr/bin/python3
"""The peer of `da_tiles make --shard-tiles` in tiling_bench.sh: what a
user would write with GDAL's Python bindings, h5py and multiprocessing.
The same shards (each raster's windows row-major, runs of --shard-tiles, one
file each, one process per shard at a time), the same skip rule (a window
with more than --max-nodata of pixels where any band is nodata), the same
layout (/images one chunk per tile, gzip + shuffle, /meta/origin,
/meta/source_id, band statistics), each tile read with one ReadAsArray.

Usage: tiling_peer.py OUT_DIR RASTER... --tile-size 512 --shard-tiles N
       [--deflate 4] [--max-nodata 0.1] [--workers 2]

Prints 'RESULT kind=peer tiles=T shards=S'."""
import argparse
import os
from multiprocessing import Pool

import h5py
import numpy as np
from osgeo import gdal

args = None


def plan(rasters):
    shards = []
    for r, path in enumerate(rasters):
        ds = gdal.Open(path)
        rows, cols = ds.RasterYSize // args.tile_size, ds.RasterXSize // args.tile_size
        for first in range(0, rows * cols, args.shard_tiles):
            shards.append((r, path, cols, first, min(args.shard_tiles, rows * cols - first)))
    return shards


def write_shard(job):
    index, (raster, path, cols, first, count) = job
    ds = gdal.Open(path)
    bands = ds.RasterCount
    nodata = [ds.GetRasterBand(b + 1).GetNoDataValue() for b in range(bands)]
    size = args.tile_size
    out = os.path.join(args.out, f"peer-{index:05d}.h5")
    written, sums, squares, pixels = 0, np.zeros(bands), np.zeros(bands), 0
    with h5py.File(out + ".tmp", "w") as f:
        f.attrs.update({"format": "da-tiles", "version": 1, "domain": "peer", "bands": [f"band{b + 1}" for b in range(bands)],
                        "ignore_index": 255, "sources": [os.path.basename(path)]})
        images = f.create_dataset("images", (0, bands, size, size), maxshape=(None, bands, size, size), dtype="uint16",
                                  chunks=(1, bands, size, size), compression="gzip", compression_opts=args.deflate,
                                  shuffle=True)
        origin = f.create_dataset("meta/origin", (0, 2), maxshape=(None, 2), dtype="int64", chunks=(4096, 2))
        source = f.create_dataset("meta/source_id", (0,), maxshape=(None,), dtype="int32", chunks=(4096,))
        for w in range(first, first + count):
            row, col = (w // cols) * size, (w % cols) * size
            tile = ds.ReadAsArray(col, row, size, size)
            invalid = np.zeros((size, size), bool)
            for b in range(bands):
                if nodata[b] is not None:
                    invalid |= tile[b] == nodata[b]
            if invalid.mean() > args.max_nodata:
                continue
            for d in (images, origin, source):
                d.resize(written + 1, axis=0)
            images[written] = tile
            origin[written] = (row, col)
            source[written] = raster
            valid = tile[:, ~invalid].astype(np.float64)
            sums += valid.sum(axis=1)
            squares += (valid * valid).sum(axis=1)
            pixels += valid.shape[1]
            written += 1
        if written:
            mean = sums / pixels
            f.attrs["band_mean"] = mean
            f.attrs["band_std"] = np.sqrt(np.maximum(squares / pixels - mean * mean, 0))
    if written:
        os.rename(out + ".tmp", out)
    else:
        os.remove(out + ".tmp")
    return written


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("rasters", nargs="+")
    p.add_argument("--tile-size", type=int, required=True)
    p.add_argument("--shard-tiles", type=int, required=True)
    p.add_argument("--deflate", type=int, default=4)
    p.add_argument("--max-nodata", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    shards = plan(args.rasters)
    with Pool(args.workers) as pool:
        tiles = sum(pool.imap_unordered(write_shard, enumerate(shards)))
    print(f"RESULT kind=peer tiles={tiles} shards={len(shards)}")


if __name__ == "__main__":
    main()
