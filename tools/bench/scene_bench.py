"""Helpers of tools/bench/scene_bench.sh (osgeo.gdal from Debian's python3-gdal).

  scene_bench.py generate OUT.tif SIZE      a SIZE x SIZE 3-band uint8 GeoTIFF (tiled 512, deflate,
                                            UTM 32N geotransform, 0.5 m pixels) with field-like structure
  scene_bench.py agree A.tif B.tif          percentage of equal pixels of two single-band rasters
"""
import sys

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()


def generate(path, size):
    driver = gdal.GetDriverByName("GTiff")
    out = driver.Create(path, size, size, 3, gdal.GDT_Byte,
                        options=["TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512", "COMPRESS=DEFLATE",
                                 "INTERLEAVE=PIXEL", "BIGTIFF=IF_SAFER"])
    out.SetGeoTransform([500000.0, 0.5, 0.0, 5700000.0, 0.0, -0.5])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32632)
    out.SetProjection(srs.ExportToWkt())
    rng = np.random.default_rng(0)
    x = np.arange(size, dtype=np.float32)
    strip = 512
    for y0 in range(0, size, strip):
        y = np.arange(y0, min(y0 + strip, size), dtype=np.float32)[:, None]
        # Fields of different brightness, a road-like diagonal band, noise.
        fields = ((np.floor(y / 700) * 37 + np.floor(x / 900) * 53) % 5)[None] * 30.0
        road = (np.abs((x - y) % 2900 - 1450) < 40)[None] * 90.0
        base = 40.0 + fields + road + np.array([0.0, 15.0, -10.0], dtype=np.float32)[:, None, None]
        pixels = base + rng.normal(0.0, 12.0, size=(3, len(y), size))
        out.WriteRaster(0, y0, size, len(y), np.clip(pixels, 0, 255).astype(np.uint8).tobytes(),
                        buf_type=gdal.GDT_Byte)
    out.FlushCache()


def agree(a_path, b_path):
    a, b = gdal.Open(a_path), gdal.Open(b_path)
    if (a.RasterXSize, a.RasterYSize) != (b.RasterXSize, b.RasterYSize):
        sys.exit("scene_bench.py: %s and %s differ in size" % (a_path, b_path))
    width, height = a.RasterXSize, a.RasterYSize
    equal = 0
    for y0 in range(0, height, 1024):
        n = min(1024, height - y0)
        equal += int(np.count_nonzero(a.GetRasterBand(1).ReadAsArray(0, y0, width, n) ==
                                      b.GetRasterBand(1).ReadAsArray(0, y0, width, n)))
    print("%.4f" % (100.0 * equal / (width * height)))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "generate":
        generate(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "agree":
        agree(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
