#!/usr/bin/python3
"""PyTorch peer of da_dist's DANN training step, for tools/bench_train/weak_scaling.sh.

The same network and step as da_dist with conf/demo.yaml's method settings
(peer_model.py: torchvision ResNet-18 encoder + smp-style U-Net decoder, DANN
discriminator on encoder.layer4, joint source+target forward); AdamW;
DistributedDataParallel (gloo) across the ranks.

Data: the same HDF5 archives, read with h5py. Each archive is read whole into
memory once at start (the synthetic archives are a few MB); every step then
gathers its batch (DistributedSampler-style sharding: one permutation per
epoch from the seed, rank r takes every world-th tile) and normalises it by
the archive's band_mean/band_std inside the timed loop. No augmentation.

Start one process per rank with mpirun; it takes RANK/WORLD_SIZE from Open
MPI's OMPI_COMM_WORLD_RANK/SIZE when RANK is not set (MASTER_ADDR and
MASTER_PORT must be set; env:// initialisation). With one rank DDP is not used.

Output: one line per epoch on rank 0 and a final line
  RESULT ranks=R threads=T batch=B images_per_s=X step_s=S comm_share=C
images/s counts the source images of all ranks per second of the last epoch
(loading included), as da_dist's time/images_per_s. comm_share (ranks > 1,
--comm-steps > 0): after training, --comm-steps steps with DDP's gradient
all-reduce and --comm-steps under no_sync() (no communication) are timed,
alternating in blocks; comm_share = (t_sync - t_nosync) / t_sync, the step time
the all-reduce adds (the part not hidden behind backward, including waiting for
the slower rank), comparable to da_dist's time/comm_wait_share.
"""
import argparse
import contextlib
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from peer_model import DannNet, dann_lambda, dann_losses


class Archive:
    def __init__(self, path, with_masks):
        with h5py.File(path, "r") as f:
            self.images = f["images"][...]
            self.masks = f["masks"][...] if with_masks else None
            mean = np.asarray(f.attrs["band_mean"], dtype=np.float32)
            std = np.asarray(f.attrs["band_std"], dtype=np.float32)
        self.mean = torch.from_numpy(mean).view(1, -1, 1, 1)
        self.std = torch.from_numpy(std).view(1, -1, 1, 1)

    def __len__(self):
        return self.images.shape[0]

    def batch(self, idx):
        x = (torch.from_numpy(self.images[idx]).float() - self.mean) / self.std
        y = torch.from_numpy(self.masks[idx]).long() if self.masks is not None else None
        return x, y


def shard(n, epoch, seed, rank, world, batch):
    """Indices of this rank's batches for one epoch (wrap-padded like data.remainder: wrap)."""
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    perm = torch.randperm(n, generator=g).numpy()
    per_round = world * batch
    total = -(-n // per_round) * per_round
    perm = np.concatenate([perm, perm[: total - n]])
    mine = perm[rank::world]
    return [np.sort(mine[i:i + batch]) for i in range(0, len(mine), batch)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="source train archive (HDF5)")
    ap.add_argument("--target", required=True, help="target train archive (HDF5)")
    ap.add_argument("--batch", type=int, default=8, help="per-rank batch (each domain)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs; the last one is timed")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads per rank")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--comm-steps", type=int, default=8, help="steps timed with and without all-reduce (0: skip)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if "RANK" not in os.environ and "OMPI_COMM_WORLD_RANK" in os.environ:
        os.environ["RANK"] = os.environ["OMPI_COMM_WORLD_RANK"]
        os.environ["WORLD_SIZE"] = os.environ["OMPI_COMM_WORLD_SIZE"]
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world > 1:
        dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world)

    src, tgt = Archive(args.source, True), Archive(args.target, False)
    classes = 4
    with h5py.File(args.source, "r") as f:
        if "classes" in f.attrs:
            classes = len(f.attrs["classes"])
    torch.manual_seed(args.seed)
    net = DannNet(classes, args.hidden)
    ddp = nn.parallel.DistributedDataParallel(net, broadcast_buffers=False) if world > 1 else net
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    net.train()

    def step(s_idx, t_idx, lam, sync=True):
        xs, ys = src.batch(s_idx)
        xt, _ = tgt.batch(t_idx)
        opt.zero_grad(set_to_none=True)
        ctx = ddp.no_sync() if (world > 1 and not sync) else contextlib.nullcontext()
        with ctx:
            seg_logits, ds, dt = ddp(xs, xt, lam)
            seg, dom = dann_losses(seg_logits, ys, ds, dt)
            (seg + dom).backward()
        opt.step()
        return seg.item() + dom.item()

    steps_total = None
    images_per_s = step_s = float("nan")
    gstep = 0
    for epoch in range(args.epochs):
        sb = shard(len(src), epoch, args.seed, rank, world, args.batch)
        tb = shard(len(tgt), epoch + 7919, args.seed, rank, world, args.batch)
        if steps_total is None:
            steps_total = len(sb) * args.epochs
        if world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        loss = 0.0
        for i, s_idx in enumerate(sb):
            p = gstep / steps_total
            lam = dann_lambda(p)
            loss = step(s_idx, tb[i % len(tb)], lam)
            gstep += 1
        sec = time.perf_counter() - t0
        images_per_s = len(sb) * args.batch * world / sec
        step_s = sec / len(sb)
        if rank == 0:
            print(f"epoch {epoch}: {len(sb)} steps, {sec:.2f} s, {images_per_s:.2f} images/s, loss {loss:.4f}",
                  flush=True)

    comm_share = float("nan")
    if world > 1 and args.comm_steps > 0:
        sb = shard(len(src), 99, args.seed, rank, world, args.batch)
        times = {True: 0.0, False: 0.0}
        block = max(1, args.comm_steps // 2)
        done = {True: 0, False: 0}
        mode = True
        i = 0
        step(sb[0], sb[0], 0.5, sync=True)  # settle
        while done[True] < args.comm_steps or done[False] < args.comm_steps:
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(block):
                step(sb[i % len(sb)], sb[(i + 1) % len(sb)], 0.5, sync=mode)
                i += 1
            if not mode:
                dist.barrier()  # no_sync steps: count until both ranks are done, as a sync step would
            times[mode] += time.perf_counter() - t0
            done[mode] += block
            mode = not mode
        t_sync, t_nosync = times[True] / done[True], times[False] / done[False]
        comm_share = max(0.0, (t_sync - t_nosync) / t_sync)
        if rank == 0:
            print(f"comm: step {t_sync:.4f} s with all-reduce, {t_nosync:.4f} s under no_sync", flush=True)

    if rank == 0:
        print(f"RESULT ranks={world} threads={args.threads} batch={args.batch} images_per_s={images_per_s:.3f} "
              f"step_s={step_s:.4f} comm_share={comm_share:.4f}", flush=True)
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
