"""Readers for the real imagery the benchmark sets are cut from.

The imagery comes from Debian packages (tools/real_sets/fetch_imagery.sh
extracts them under one directory): GIMP's photographic patterns
(gimp-data) and NASA's Blue Marble Next Generation monthly mosaics as
gpredict ships them. Every reader returns uint8 [rows, cols, 3].
"""
import hashlib
import struct

import numpy as np
from osgeo import gdal

GIMP_PATTERNS = "usr/share/gimp/2.0/patterns"
BLUE_MARBLE = "usr/share/pixmaps/gpredict/maps/nasa-bmng-{month:02d}_2048.jpg"

gdal.UseExceptions()

# Every file the readers opened, for the set's manifest.
files_read = set()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_gimp_pattern(path):
    """A GIMP .pat file: a big-endian header (header size, version, width,
    height, bytes per pixel, b'GPAT', name) and then the raw pixels."""
    files_read.add(path)
    with open(path, "rb") as f:
        data = f.read()
    header_size, version, width, height, depth = struct.unpack(">5I", data[:20])
    if version != 1 or data[20:24] != b"GPAT" or depth not in (1, 2, 3, 4):
        raise ValueError(f"{path}: not a GIMP pattern (version {version}, {depth} bytes per pixel)")
    pixels = np.frombuffer(data, np.uint8, width * height * depth, header_size)
    pixels = pixels.reshape(height, width, depth)
    if depth < 3:  # grey (+ alpha)
        pixels = np.repeat(pixels[..., :1], 3, axis=2)
    return np.ascontiguousarray(pixels[..., :3])


def read_raster_rgb(path):
    """Any GDAL-readable 3-band image as [rows, cols, 3]."""
    files_read.add(path)
    bands = gdal.Open(path).ReadAsArray()
    if bands.ndim != 3 or bands.shape[0] < 3:
        raise ValueError(f"{path}: expected an RGB image, got shape {bands.shape}")
    return np.ascontiguousarray(np.moveaxis(bands[:3], 0, 2).astype(np.uint8))


def lonlat_window(image, lon0, lon1, lat0, lat1):
    """The part of an equirectangular whole-globe image inside a lon/lat box."""
    rows, cols = image.shape[:2]
    x0, x1 = round((lon0 + 180) / 360 * cols), round((lon1 + 180) / 360 * cols)
    y0, y1 = round((90 - lat1) / 180 * rows), round((90 - lat0) / 180 * rows)
    return image[y0:y1, x0:x1]
