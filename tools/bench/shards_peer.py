#!/usr/bin/python3
"""The PyTorch peer of shards_bench.sh: a map-style Dataset over many h5py
shards as users write it (every shard opened once for its length, then each
DataLoader worker opening the shards it reads lazily and keeping them open),
DataLoader with shuffle, dtype normalisation (value / 255 or / 65535), and
under mpirun a DistributedSampler share per rank (rank and world from Open
MPI's environment; no process group is needed to sample).

Prints 'RESULT kind=peer ...': open_s (Dataset construction), first_batch_s
(iterator start to first batch), tiles_per_s (best of --repeat epochs after
the first), pss_mib and fds (this process and its workers together, after
the last epoch) and checksum (band 0's raw values of the first epoch)."""
import argparse
import glob
import os
import time

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class ShardedTiles(Dataset):
    def __init__(self, paths):
        self.paths = paths
        counts = []
        for path in paths:
            with h5py.File(path, "r") as f:
                counts.append(f["images"].shape[0])
                self.scale = 255.0 if f["images"].dtype == np.uint8 else 65535.0
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.files = {}

    def __len__(self):
        return int(self.offsets[-1])

    def __getitem__(self, index):
        shard = int(np.searchsorted(self.offsets, index, side="right")) - 1
        f = self.files.get(shard)
        if f is None:
            f = self.files[shard] = h5py.File(self.paths[shard], "r")
        image = f["images"][index - self.offsets[shard]]
        return torch.from_numpy(image.astype(np.float32) / self.scale)


def pss_mib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("pattern")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(1)
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", 0))
    world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", 1))

    start = time.perf_counter()
    dataset = ShardedTiles(sorted(glob.glob(a.pattern)))
    open_s = time.perf_counter() - start
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=1)
    loader = DataLoader(dataset, batch_size=a.batch, sampler=sampler, num_workers=a.workers,
                        persistent_workers=a.workers > 0, prefetch_factor=4 if a.workers > 0 else None)
    times, first_batch_s, checksum, tiles = [], 0.0, 0, 0
    for epoch in range(a.repeat + 1):
        sampler.set_epoch(epoch)
        start = time.perf_counter()
        tiles = 0
        iterator = iter(loader)
        for n, batch in enumerate(iterator):
            if epoch == 0 and n == 0:
                first_batch_s = time.perf_counter() - start
            if epoch == 0:
                checksum += int(torch.round(batch[:, 0].double() * dataset.scale).sum().item())
            tiles += batch.shape[0]
        if epoch > 0:
            times.append(time.perf_counter() - start)
    pids = [os.getpid()] + [w.pid for w in getattr(iterator, "_workers", [])]
    pss = sum(pss_mib(pid) for pid in pids)
    fds = sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids)
    print(f"RESULT kind=peer rank={rank} world={world} workers={a.workers} shards={len(dataset.paths)} "
          f"tiles={tiles} open_s={open_s:.3f} first_batch_s={first_batch_s:.3f} "
          f"tiles_per_s={tiles / min(times):.1f} pss_mib={pss:.1f} fds={fds} checksum={checksum}")


if __name__ == "__main__":
    main()
