#!/usr/bin/python3
"""h5py's side of loader_bench.sh: read /images tile by tile (ds[i], as a
PyTorch Dataset's __getitem__ would), in index order, --repeat times after
one untimed warm-up pass; then print the sum of band 0's raw values over all
tiles (the value check against da_bench_loader's loader and generator)."""
import argparse
import time

import h5py
import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with h5py.File(args.file, "r") as f:
        images = f["images"]
        n = images.shape[0]
        tile_bytes = int(np.prod(images.shape[1:])) * images.dtype.itemsize
        checksum = 0
        for i in range(n):  # warm-up and value check
            checksum += int(images[i][0].sum(dtype=np.int64))
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            for i in range(n):
                images[i]
            times.append(time.perf_counter() - start)
    times.sort()
    best, median = times[0], times[len(times) // 2]
    print(f"RESULT kind=h5py file={args.file} tiles={n} repeat={args.repeat} best_s={best:.4f} "
          f"median_s={median:.4f} tiles_per_s={n / best:.1f} mb_per_s={n * tile_bytes / 2**20 / best:.1f} "
          f"median_tiles_per_s={n / median:.1f} h5py={h5py.__version__} hdf5={h5py.version.hdf5_version} "
          f"checksum={checksum}")


if __name__ == "__main__":
    main()
