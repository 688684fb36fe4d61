"""Writes tile archives the way an outside tool with h5py does (spec/
tile-archive.md), for the tile-archive fuzz target's seeds: h5py's own
choices (variable-length string attributes, contiguous datasets, gzip at
h5py's default level, 64-bit integer attributes) differ from our writer's.

    python h5py_seed_archives.py OUT_DIR   # prints the files written
"""
import os
import sys

import h5py
import numpy as np


def write(path, dtype, masks, chunked, compression):
    rng = np.random.default_rng(0)
    n, c, h, w = 3, 4, 6, 5
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "da-tiles"
        f.attrs["version"] = 1
        f.attrs["domain"] = "h5py"
        f.attrs["bands"] = ["red", "green", "blue", "nir"]
        if np.issubdtype(dtype, np.floating):
            images = rng.normal(size=(n, c, h, w)).astype(dtype)
        else:
            images = rng.integers(0, np.iinfo(dtype).max, size=(n, c, h, w), dtype=dtype)
        options = dict(chunks=(1, c, h, w), compression=compression, shuffle=compression is not None) if chunked else {}
        f.create_dataset("images", data=images, **options)
        if masks:
            f.attrs["classes"] = ["background", "water"]
            f.attrs["ignore_index"] = 255
            labels = rng.integers(0, 2, size=(n, h, w), dtype=np.uint8)
            labels[:, 0, 0] = 255
            f.create_dataset("masks", data=labels, **({"chunks": (1, h, w)} if chunked else {}))
        f.attrs["band_mean"] = images.mean(axis=(0, 2, 3)).astype(np.float64)
        f.attrs["band_std"] = images.std(axis=(0, 2, 3)).astype(np.float64)
        f.create_dataset("meta/origin", data=np.array([[0, 0], [0, w], [h, 0]], dtype=np.int64))
        f.create_dataset("meta/source_id", data=np.zeros(n, dtype=np.int32))
        f.attrs["sources"] = ["scene.tif"]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, dtype, masks, chunked, compression in [
        ("h5py_uint8_contiguous", np.uint8, True, False, None),
        ("h5py_uint16_gzip", np.uint16, True, True, "gzip"),
        ("h5py_float32_chunked", np.float32, False, True, None),
    ]:
        path = os.path.join(out, name + ".h5")
        write(path, dtype, masks, chunked, compression)
        print(path)


if __name__ == "__main__":
    main()
