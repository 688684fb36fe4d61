#!/usr/bin/python3
"""Writes a sharded tile archive with h5py, as an outside tool would
(../shared/spec/tile-archive.md: root attributes, /images [N, C, H, W] in
one chunk per tile, /masks [N, H, W]), for shards_bench.sh.

Usage: make_shards.py OUT_DIR --shards N --tiles T [--size 32] [--bands 3]
       [--dtype uint8] [--deflate 0] [--seed 0]

Pixels are smooth gradients plus noise (deflate saves a part, as on
imagery). Prints 'RESULT kind=shards ... checksum=S', S the sum of band 0's
raw values over every tile of every shard (the loaders' value check).
Shards already there with the same parameters are kept (the .done marker
holds their checksum)."""
import argparse
import os

import h5py
import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--shards", type=int, required=True)
    p.add_argument("--tiles", type=int, required=True, help="tiles per shard")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--bands", type=int, default=3)
    p.add_argument("--dtype", choices=["uint8", "uint16"], default="uint8")
    p.add_argument("--deflate", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    marker = os.path.join(a.out, ".done")
    signature = f"shards={a.shards} tiles={a.tiles} size={a.size} bands={a.bands} dtype={a.dtype} deflate={a.deflate} seed={a.seed}"
    if os.path.exists(marker):
        with open(marker) as f:
            line = f.read().strip()
        if line.startswith(signature + " "):
            print(f"RESULT kind=shards {line}")
            return
    top = 255 if a.dtype == "uint8" else 4095
    y, x = np.mgrid[0:a.size, 0:a.size]
    rng = np.random.default_rng(a.seed)
    checksum = 0
    for s in range(a.shards):
        phase = rng.uniform(0, 2 * np.pi, (a.tiles, a.bands, 1, 1))
        field = 0.5 + 0.4 * np.sin(x / 7.0 + phase) * np.cos(y / 11.0 + phase)
        noise = rng.normal(0, 0.03, (a.tiles, a.bands, a.size, a.size))
        images = np.clip((field + noise) * top, 0, top).astype(a.dtype)
        masks = (images[:, 0] > top // 2).astype(np.uint8)
        checksum += int(images[:, 0].sum(dtype=np.int64))
        compression = {"compression": "gzip", "compression_opts": a.deflate} if a.deflate else {}
        with h5py.File(os.path.join(a.out, f"shard_{s:06d}.h5"), "w") as f:
            f.attrs["format"] = "da-tiles"
            f.attrs["version"] = np.int32(1)
            f.attrs["domain"] = "bench"
            f.attrs["bands"] = [f"b{c}" for c in range(a.bands)]
            f.attrs["classes"] = ["low", "high"]
            f.attrs["ignore_index"] = np.uint8(255)
            f.create_dataset("images", data=images, chunks=(1, a.bands, a.size, a.size),
                             shuffle=bool(a.deflate) and a.dtype != "uint8", **compression)
            f.create_dataset("masks", data=masks, chunks=(1, a.size, a.size), **compression)
    line = f"{signature} checksum={checksum}"
    with open(marker, "w") as f:
        f.write(line + "\n")
    print(f"RESULT kind=shards {line}")


if __name__ == "__main__":
    main()
