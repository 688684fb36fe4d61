#!/usr/bin/python3
"""End-to-end PyTorch peer of a da_dist DANN training run, for tools/bench_train/end_to_end.sh.

Written as a PyTorch user would write the job: a torch.utils.data.Dataset over
the tile archive (h5py, opened lazily in each worker, normalised by the
archive's band_mean/band_std), one DataLoader per domain (--workers worker
processes, DistributedSampler shuffling, pin_memory off on the CPU), the
network of peer_model.py (da_dist's U-Net + DANN), AdamW with da_dist's poly
learning-rate schedule (LambdaLR) and DANN lambda schedule, and
DistributedDataParallel (gloo) when started with several ranks. No
augmentation (end_to_end.sh turns da_dist's off too).

On a GPU (--device cuda, tools/gpu/device_check.sh): page-locked batches
(pin_memory) copied without blocking, --precision bf16 autocast,
--channels-last model and inputs, DDP over --backend nccl (--ddp wraps the
model in DDP also for one rank, as a DDP job on one GPU runs), and the
losses read on the host only at the end of an epoch (a .item() per step
would make every step wait for the GPU); RESULT adds gpu_peak_mb
(torch.cuda.max_memory_allocated).

Ranks: start one process per rank with mpirun; RANK/WORLD_SIZE come from Open
MPI's OMPI_COMM_WORLD_RANK/SIZE when RANK is not set (MASTER_ADDR and
MASTER_PORT must be set; env:// initialisation), since torch.distributed.run
does not work with Debian's Python 3.11 build. With one rank DDP is not used.

Modes (each prints a final `RESULT key=value ...` line on rank 0):
  (default)        train --epochs; the last epoch is measured: images_per_s
                   (source images of all ranks per second, loading included),
                   step_s, and per-step means of data_wait_s (waiting for the
                   loaders), forward_backward_s (forward, losses, backward: with
                   DDP this includes the all-reduces backward waits for),
                   optimizer_s (zero_grad, step, scheduler), comm_wait_s (ranks
                   > 1, --comm-steps > 0: after training, steps on one batch with
                   and without DDP's all-reduce (no_sync) alternate; the
                   difference per step estimates the communication backward
                   waited for; it is inside forward_backward_s), peak_rss_mb
                   (this process) and workers_rss_mb (its loader workers' peaks,
                   summed; shared pages counted in each)
  --compute-only   --steps training steps on the first batch, kept in memory:
                   no loader, no communication (one process); on the GPU the
                   split comes from a second pass that waits for the device at
                   each phase's end (step_s and images_per_s from the first)
  --check-state F  one process, no shuffling: loads da_bench_step
                   --dump-state's weights F and prints `LOSS step seg dom total`
                   for every step before its optimizer step, for loss_check.sh
"""
import argparse
import contextlib
import os
import resource
import sys
import time

import h5py
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from peer_model import DannNet, dann_lambda, dann_losses, load_da_dist_state, poly_factor


class TileDataset(Dataset):
    """Tiles of one archive: (image float32 [C,H,W] normalised, mask int64 [H,W] or -1)."""

    def __init__(self, path, with_masks):
        self.path, self.with_masks = path, with_masks
        with h5py.File(path, "r") as f:
            self.length = f["images"].shape[0]
            self.mean = torch.tensor(np.asarray(f.attrs["band_mean"], dtype=np.float32)).view(-1, 1, 1)
            self.std = torch.tensor(np.asarray(f.attrs["band_std"], dtype=np.float32)).view(-1, 1, 1)
            self.classes = len(f.attrs["classes"]) if "classes" in f.attrs else 4
            self.bands = f["images"].shape[1]
        self.file = None  # opened on first use, i.e. in each worker process

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        if self.file is None:
            self.file = h5py.File(self.path, "r")
        image = (torch.from_numpy(self.file["images"][i]).float() - self.mean) / self.std
        mask = torch.from_numpy(self.file["masks"][i].astype(np.int64)) if self.with_masks else -1
        return image, mask


def make_loader(dataset, args, rank, world, shuffle, seed):
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_size=args.batch, sampler=sampler, num_workers=args.workers,
                      pin_memory=args.device == "cuda", persistent_workers=args.workers > 0)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def workers_rss_mb():
    """Sum of the peak RSS (VmHWM) of this process's children (the DataLoader workers)."""
    me, total = os.getpid(), 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) != me:
                    continue
            with open(f"/proc/{pid}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024.0
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="source train archive (HDF5)")
    ap.add_argument("--target", required=True, help="target train archive (HDF5)")
    ap.add_argument("--batch", type=int, default=8, help="per-rank batch (each domain)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs; the last one is measured")
    ap.add_argument("--workers", type=int, default=1, help="DataLoader worker processes per domain loader")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads per rank")
    ap.add_argument("--encoder", default="resnet18", choices=["resnet18", "resnet34"])
    ap.add_argument("--hidden", type=int, default=256, help="discriminator hidden size")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"], help="sgd: momentum 0.9")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--comm-steps", type=int, default=4, help="steps timed with and without all-reduce (0: skip)")
    ap.add_argument("--compute-only", action="store_true", help="train on one in-memory batch (see above)")
    ap.add_argument("--steps", type=int, default=10, help="--compute-only: timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="--compute-only: untimed steps first")
    ap.add_argument("--check-state", metavar="FILE", help="da_bench_step --dump-state weights; print losses")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="autocast dtype on cuda")
    ap.add_argument("--channels-last", action="store_true", help="model and inputs in channels-last layout")
    ap.add_argument("--backend", default="gloo", choices=["gloo", "nccl"], help="DDP's process group")
    ap.add_argument("--ddp", action="store_true", help="DistributedDataParallel also for one rank")
    args = ap.parse_args()
    for name in ("batch", "epochs", "threads", "steps", "hidden"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(args, name)}")
    if args.workers < 0:
        ap.error(f"--workers: must be >= 0, got {args.workers}")

    torch.set_num_threads(args.threads)
    if "RANK" not in os.environ and "OMPI_COMM_WORLD_RANK" in os.environ:
        os.environ["RANK"] = os.environ["OMPI_COMM_WORLD_RANK"]
        os.environ["WORLD_SIZE"] = os.environ["OMPI_COMM_WORLD_SIZE"]
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and (args.compute_only or args.check_state):
        sys.exit("dataloader_peer: --compute-only and --check-state run in one process")
    if args.device == "cpu" and (args.precision != "fp32" or args.backend == "nccl"):
        sys.exit("dataloader_peer: --precision bf16 and --backend nccl need --device cuda")
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", 0))))
    use_ddp = world > 1 or args.ddp
    if use_ddp:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29511")
        dist.init_process_group(args.backend, init_method="env://", rank=rank, world_size=world)

    source, target = TileDataset(args.source, True), TileDataset(args.target, False)
    torch.manual_seed(args.seed)
    net = DannNet(source.classes, args.hidden, args.encoder, source.bands)
    if args.check_state:
        load_da_dist_state(net, args.check_state)
    device = torch.device("cuda") if cuda else torch.device("cpu")
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(device, memory_format=layout)
    ddp = nn.parallel.DistributedDataParallel(net, broadcast_buffers=False) if use_ddp else net
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())

    def to_device(image, mask=None):
        image = image.to(device, non_blocking=True).contiguous(memory_format=layout)
        return image if mask is None else (image, mask.to(device, non_blocking=True))
    if args.optimizer == "sgd":  # da_dist's optimizer.name: sgd defaults
        opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    shuffle = not args.check_state
    source_loader = make_loader(source, args, rank, world, shuffle, args.seed)
    target_loader = make_loader(target, args, rank, world, shuffle, args.seed + 1)
    steps_per_epoch = len(source_loader)
    total_steps = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: poly_factor(s, total_steps))
    net.train()
    times = {"data": 0.0, "fb": 0.0, "opt": 0.0}

    def finish():
        """On the GPU the steps are queued: wait for them before reading a clock."""
        if cuda:
            torch.cuda.synchronize()

    def train_step(xs, ys, xt, lam, sync=True, wait_at_phases=False):
        """One step; returns the detached losses (on the device: read them only when needed).
        wait_at_phases: wait for the GPU at each phase's end, so that the split times its work."""
        end_phase = finish if wait_at_phases else (lambda: None)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        end_phase()
        t1 = time.perf_counter()
        with ddp.no_sync() if (use_ddp and not sync) else contextlib.nullcontext():
            with autocast:
                seg_logits, ds, dt = ddp(xs, xt, lam)
            seg, dom = dann_losses(seg_logits.float(), ys, ds.float(), dt.float())
            loss = seg + dom
            loss.backward()
        end_phase()
        t2 = time.perf_counter()
        opt.step()
        sched.step()
        end_phase()
        times["fb"] += t2 - t1
        times["opt"] += (t1 - t0) + (time.perf_counter() - t2)
        return seg.detach(), dom.detach(), loss.detach()

    def gpu_peak_mb():
        return torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")

    if args.compute_only:
        (xs, ys), (xt, _) = next(iter(source_loader)), next(iter(target_loader))
        (xs, ys), xt = to_device(xs, ys), to_device(xt)
        for i in range(args.warmup):
            train_step(xs, ys, xt, dann_lambda(i / total_steps))
        finish()
        times.update(fb=0.0, opt=0.0)
        t0 = time.perf_counter()
        for i in range(args.steps):
            train_step(xs, ys, xt, dann_lambda(((args.warmup + i) % total_steps) / total_steps))
        finish()
        sec = time.perf_counter() - t0
        n = args.steps
        if cuda:  # the split from a second pass that waits at each phase (da_bench_step does the same)
            times.update(fb=0.0, opt=0.0)
            for i in range(args.steps):
                train_step(xs, ys, xt, dann_lambda(((args.warmup + i) % total_steps) / total_steps),
                           wait_at_phases=True)
        print(f"RESULT steps={n} batch={args.batch} step_s={sec / n:.6f} images_per_s={n * args.batch / sec:.4f} "
              f"forward_backward_s={times['fb'] / n:.6f} optimizer_s={times['opt'] / n:.6f} "
              f"peak_rss_mb={peak_rss_mb():.1f} gpu_peak_mb={gpu_peak_mb():.1f}", flush=True)
        return 0

    gstep = target_cycle = 0
    target_iter = iter(target_loader)
    t_epoch = n_steps = 0
    for epoch in range(args.epochs):
        source_loader.sampler.set_epoch(epoch)
        times.update(data=0.0, fb=0.0, opt=0.0)
        finish()
        if use_ddp:
            dist.barrier()
        t_start = time.perf_counter()
        source_iter = iter(source_loader)
        n_steps = 0
        while True:
            t0 = time.perf_counter()
            try:
                xs, ys = next(source_iter)
            except StopIteration:
                break
            try:
                xt, _ = next(target_iter)
            except StopIteration:  # the target domain cycles (epoch length: the source's)
                target_cycle += 1
                target_loader.sampler.set_epoch(target_cycle)
                target_iter = iter(target_loader)
                xt, _ = next(target_iter)
            (xs, ys), xt = to_device(xs, ys), to_device(xt)
            times["data"] += time.perf_counter() - t0
            lam = dann_lambda(gstep / total_steps)
            seg, dom, total = train_step(xs, ys, xt, lam)
            if args.check_state:
                print(f"LOSS {gstep} {seg.item():.9g} {dom.item():.9g} {total.item():.9g}", flush=True)
            gstep += 1
            n_steps += 1
        finish()
        t_epoch = time.perf_counter() - t_start
        if rank == 0:
            print(f"epoch {epoch}: {n_steps} steps, {t_epoch:.2f} s, {n_steps * args.batch * world / t_epoch:.2f} "
                  f"images/s, loss {total.item():.4f}", flush=True)
    split = {k: v / max(n_steps, 1) for k, v in times.items()}
    workers_mb = workers_rss_mb()

    comm_wait = float("nan")
    if world > 1 and args.comm_steps > 0:
        xs, ys = next(iter(source_loader))
        xt, _ = next(iter(target_loader))
        (xs, ys), xt = to_device(xs, ys), to_device(xt)
        spent, done = {True: 0.0, False: 0.0}, {True: 0, False: 0}
        block, mode = max(1, args.comm_steps // 2), True
        train_step(xs, ys, xt, 0.5)  # settle
        while done[True] < args.comm_steps or done[False] < args.comm_steps:
            finish()
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(block):
                train_step(xs, ys, xt, 0.5, sync=mode)
            finish()
            if not mode:
                dist.barrier()  # no_sync steps: count until both ranks are done, as a synchronised step would
            spent[mode] += time.perf_counter() - t0
            done[mode] += block
            mode = not mode
        comm_wait = max(0.0, spent[True] / done[True] - spent[False] / done[False])

    peak = torch.tensor([peak_rss_mb(), workers_mb, gpu_peak_mb()], dtype=torch.float64)
    if world > 1:
        peak = peak.to(device)
        dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    if rank == 0:
        print(f"RESULT ranks={world} threads={args.threads} workers={args.workers} batch={args.batch} "
              f"images_per_s={n_steps * args.batch * world / t_epoch:.4f} step_s={t_epoch / max(n_steps, 1):.6f} "
              f"data_wait_s={split['data']:.6f} forward_backward_s={split['fb']:.6f} "
              f"optimizer_s={split['opt']:.6f} comm_wait_s={comm_wait:.6f} "
              f"peak_rss_mb={peak[0].item():.1f} workers_rss_mb={peak[1].item():.1f} "
              f"gpu_peak_mb={peak[2].item():.1f}", flush=True)
    if use_ddp:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
