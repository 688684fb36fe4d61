#!/usr/bin/env python3
"""tools/real_sets on made-up imagery (no download): the GIMP pattern
reader, the resampling and lon/lat windows against hand-computed values,
layouts whose regions each show one image of their class, labels that
depend on the layout alone, and byte-identical sets from the same seed.

    PYTHON test_real_sets.py PROJECT_ROOT
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from osgeo import gdal

root = sys.argv[1]
sys.path.insert(0, f"{root}/tools/real_sets")
import imagery  # noqa: E402
import layout  # noqa: E402
import sets  # noqa: E402

gdal.UseExceptions()
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


def write_pattern(path, pixels):
    height, width, depth = pixels.shape
    name = b"test\0"
    header = struct.pack(">5I", 24 + len(name), 1, width, height, depth) + b"GPAT" + name
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(header + pixels.tobytes())


def write_jpeg(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mem = gdal.GetDriverByName("MEM").Create("", pixels.shape[1], pixels.shape[0], 3, gdal.GDT_Byte)
    for b in range(3):
        mem.GetRasterBand(b + 1).WriteArray(pixels[..., b])
    gdal.GetDriverByName("JPEG").CreateCopy(path, mem)


with tempfile.TemporaryDirectory() as tmp:
    # The pattern reader: RGB as stored, grey repeated to three bands, and a
    # file that is not a pattern refused by name.
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    write_pattern(f"{tmp}/rgb.pat", rgb)
    check(np.array_equal(imagery.read_gimp_pattern(f"{tmp}/rgb.pat"), rgb), "RGB pattern read back")
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    write_pattern(f"{tmp}/grey.pat", grey)
    check(np.array_equal(imagery.read_gimp_pattern(f"{tmp}/grey.pat"), np.repeat(grey, 3, 2)), "grey pattern")
    with open(f"{tmp}/bad.pat", "wb") as f:
        f.write(struct.pack(">5I", 24, 1, 1, 1, 3) + b"XPAT" + b"\0\0\0")
    try:
        imagery.read_gimp_pattern(f"{tmp}/bad.pat")
        check(False, "a file without GPAT was accepted")
    except ValueError as e:
        check("bad.pat: not a GIMP pattern" in str(e), f"bad pattern message: {e}")

# Half resolution: 2 x 2 means, an odd last row and column dropped.
block = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
halved = sets.halve_resolution(block)
check(halved.shape == (2, 2, 3), f"halve_resolution shape {halved.shape}")
check(halved[1, 0, 2] == np.rint(block[2:4, 0:2, 2].mean()), "halve_resolution mean of a block")
# The other sensor mixes the bands: a pure red pixel reads (0.55, 0.25, 0.10) x 200 plus noise.
red = np.zeros((64, 64, 3), np.uint8)
red[..., 0] = 200
seen = sets.other_sensor(np.random.default_rng(0), red).reshape(-1, 3).mean(0)
check(np.allclose(seen, [110, 50, 20], atol=1.5), f"other_sensor band mixing {seen}")

# lon/lat windows of a 180 x 360 globe (one pixel a degree).
globe = np.zeros((180, 360, 3), np.uint8)
window = imagery.lonlat_window(globe, -180, -170, 80, 90)
check(window.shape == (10, 10, 3), f"window at the north-west corner: {window.shape}")
globe[100:110, 190:200] = 7  # lon 10..20, lat -20..-10
check(np.all(imagery.lonlat_window(globe, 10, 20, -20, -10) == 7), "window of lon 10..20, lat -20..-10")

# Layouts: each region one class; with one constant image per class, every
# region shows exactly its class's value.
rng = np.random.default_rng(3)
labels, regions = layout.voronoi_layout(rng, 48, 4)
for r in np.unique(regions):
    check(len(np.unique(labels[regions == r])) == 1, f"region {r} has one class")
check(labels.max() < 4, "labels within the classes")
pools = [[np.full((9, 11, 3), 10 * c, np.uint8)] for c in range(4)]
image = layout.fill(np.random.default_rng(4), labels, regions, pools)
check(np.array_equal(image[..., 0], 10 * labels.astype(np.uint8)), "fill shows each region's class")
# Mirroring: a window far past the image's edge still reads inside it.
check(np.array_equal(layout._mirror(np.arange(8), 3), [0, 1, 2, 2, 1, 0, 0, 1]), "mirror indices")

# Whole sets on made-up imagery: the labels of materials_instances and
# materials_sensor are the same (layout only), the same seed gives the
# same bytes, and the manifest names the files read.
with tempfile.TemporaryDirectory() as tmp:
    fake = np.random.default_rng(5)
    for pair in sets.MATERIALS.values():
        for name in pair[0] + pair[1]:
            shape = (int(fake.integers(20, 40)), int(fake.integers(20, 40)), 3)
            write_pattern(f"{tmp}/imagery/{imagery.GIMP_PATTERNS}/{name}.pat", fake.integers(0, 256, shape, np.uint8))
    for month in (1, 7):
        write_jpeg(f"{tmp}/imagery/{imagery.BLUE_MARBLE.format(month=month)}", fake.integers(0, 256, (180, 360, 3), np.uint8))

    def make(set_name, out):
        command = [sys.executable, f"{root}/tools/real_sets/make_rasters.py", set_name, "--imagery", f"{tmp}/imagery",
                   "--out", out, "--train-tiles", "32", "--val-tiles", "16", "--size", "32"]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()

    def read(path):
        return gdal.Open(path).ReadAsArray()

    check(make("materials_instances", f"{tmp}/a") == "stone,marble,wood,water,paper,hide", "materials classes")
    make("materials_sensor", f"{tmp}/b")
    make("materials_instances", f"{tmp}/c")
    check(make("earth_seasons", f"{tmp}/e") == "water,ice,desert,tropical_forest,boreal_forest,grassland",
          "earth classes")
    for stem in ("source_train", "source_val", "target_train", "target_val"):
        a = read(f"{tmp}/a/{stem}_labels.tif")
        rows = 64 if stem.endswith("train") else 32  # 32 or 16 tiles of 32 px, 16 a row
        check(a.shape == (rows, 512), f"{stem} labels mosaic shape {a.shape}")
        check(np.array_equal(a, read(f"{tmp}/b/{stem}_labels.tif")), f"{stem}: labels independent of imagery")
        check(np.array_equal(a, read(f"{tmp}/e/{stem}_labels.tif")), f"{stem}: earth labels, same layout")
        check(np.array_equal(read(f"{tmp}/a/{stem}_image.tif"), read(f"{tmp}/c/{stem}_image.tif")),
              f"{stem}: same seed, same image")
        check(not np.array_equal(read(f"{tmp}/a/{stem}_image.tif"), read(f"{tmp}/b/{stem}_image.tif")),
              f"{stem}: the two material sets differ in imagery")
    check(not np.array_equal(read(f"{tmp}/a/source_train_labels.tif"), read(f"{tmp}/a/target_train_labels.tif")),
          "source and target layouts differ")
    # Tile counts that do not fill whole mosaic rows: a usage error (status 2) naming the rule.
    bad = subprocess.run([sys.executable, f"{root}/tools/real_sets/make_rasters.py", "materials_instances",
                          "--imagery", f"{tmp}/imagery", "--out", f"{tmp}/bad", "--train-tiles", "30"],
                         capture_output=True, text=True)
    check(bad.returncode == 2, f"--train-tiles 30: exit status {bad.returncode}")
    check("must be multiples of 16 (whole mosaic rows)" in bad.stderr, f"--train-tiles 30: {bad.stderr}")
    manifest = json.load(open(f"{tmp}/a/manifest.json"))
    read_names = sorted(os.path.basename(p) for p in manifest["files"])
    wanted = sorted(f"{n.split('/')[1]}.pat" for pair in sets.MATERIALS.values() for n in pair[0] + pair[1])
    check(read_names == wanted, f"manifest files {read_names}")

if failures:
    print("\n".join("FAILED: " + f for f in failures))
    sys.exit(1)
print("ok")
