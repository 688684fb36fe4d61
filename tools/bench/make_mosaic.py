#!/usr/bin/python3
"""Writes a mosaic of GeoTIFFs for tiling_bench.sh: --rasters rasters of
--size x --size pixels, --bands bands of uint16 (a 12-bit sensor's range),
placed side by side on a grid of 5 columns (EPSG:32632, 0.2 m pixels), tiled
256 x 256, uncompressed. Pixels are smooth gradients plus noise (deflate
saves a part, as on imagery); a triangle in each raster's top-left corner is
nodata (0), so tiling skips some windows.

Usage: make_mosaic.py OUT_DIR [--rasters 20] [--size 10000] [--bands 4]

Prints 'RESULT kind=mosaic rasters=R bytes=B' (B: raw pixel bytes). Rasters
already there with the same parameters are kept (the .done marker)."""
import argparse
import os

import numpy as np
from osgeo import gdal, osr


def write_raster(path, index, size, bands):
    driver = gdal.GetDriverByName("GTiff")
    ds = driver.Create(path + ".tmp", size, size, bands, gdal.GDT_UInt16,
                       ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "BIGTIFF=YES"])
    x0, y0 = 500000.0 + (index % 5) * size * 0.2, 5300000.0 - (index // 5) * size * 0.2
    ds.SetGeoTransform((x0, 0.2, 0.0, y0, 0.0, -0.2))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32632)
    ds.SetProjection(srs.ExportToWkt())
    rng = np.random.default_rng(index)
    cols = np.arange(size)
    rows_per_block = 1024
    for b in range(bands):
        band = ds.GetRasterBand(b + 1)
        band.SetNoDataValue(0)
        column_wave = 600 * np.sin(cols / (700.0 + 90 * b) + index)
        for top in range(0, size, rows_per_block):
            rows = np.arange(top, min(size, top + rows_per_block))
            row_wave = 500 * np.cos(rows / (900.0 + 60 * b) - index)
            block = 2000 + 300 * b + row_wave[:, None] + column_wave[None, :]
            block += rng.integers(-40, 41, size=block.shape)
            block = block.astype(np.uint16)
            block[rows[:, None] + cols[None, :] < size // 8] = 0  # nodata triangle
            band.WriteArray(block, 0, int(top))
    ds = None
    os.rename(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--rasters", type=int, default=20)
    p.add_argument("--size", type=int, default=10000)
    p.add_argument("--bands", type=int, default=4)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    signature = f"rasters={a.rasters} size={a.size} bands={a.bands}"
    marker = os.path.join(a.out, ".done")
    if not (os.path.exists(marker) and open(marker).read().strip() == signature):
        for i in range(a.rasters):
            write_raster(os.path.join(a.out, f"scene_{i:02d}.tif"), i, a.size, a.bands)
        with open(marker, "w") as f:
            f.write(signature + "\n")
    print(f"RESULT kind=mosaic rasters={a.rasters} bytes={a.rasters * a.size * a.size * a.bands * 2}")


if __name__ == "__main__":
    main()
