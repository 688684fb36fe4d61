#!/usr/bin/env python3
"""What data-parallel efficiency to expect at N GPUs: a model of da_dist's
gradient reducer (buckets all-reduced on one stream, in the order backward
fills them) with the all-reduce cost of NCCL's ring and tree algorithms.

  python3 tools/bench_comm/scaling_model.py                  # the README's table
  python3 tools/bench_comm/scaling_model.py --grad-mib 95.2 --forward-ms 4 --backward-ms 8 ...

Model, per step:
- backward makes gradient bytes at a steady rate over --backward-ms, so a
  bucket is ready when the bytes up to its end are (buckets: --first-mib,
  then --bucket-mib, in backward's order, as dist.first_bucket_mb /
  dist.bucket_mb after the rebuild);
- all-reduces run one after another; each takes
  2(n-1)/n * bytes / busbw + latency, busbw being the intra-node figure
  while the job fits in one node and the inter-node one beyond; latency per
  all-reduce is NCCL's cheaper of ring, 2(n-1) hops, and tree, 2 log2(n)
  hops, at --hop-us (intra) or --inter-hop-us a hop;
- what runs past the end of backward is exposed:
  step = forward + backward + exposed + optimizer, and
  efficiency = (forward + backward + optimizer) / step.
Ignored: the SMs NCCL's kernels take from compute, stragglers and jitter,
the loader (assumed hidden), and compression's conversion cost.
"""
import argparse
import math

# Interconnects (busbw in GB/s, nccl-tests' definition): assumed figures
# of the usual hardware, not measurements of ours; pass your cluster's
# nccl-tests all_reduce_perf results instead.
INTERCONNECTS = {
    "nvlink+ndr": dict(intra=350.0, inter=45.0, gpus_per_node=8,
                       note="8 H100 per node on NVLink/NVSwitch; one 400 Gb/s InfiniBand NIC per GPU"),
    "nvlink+25gbe": dict(intra=350.0, inter=2.8, gpus_per_node=8,
                         note="8 GPUs per node on NVLink; one 25 Gb/s RoCE NIC per node (Horovod's 2017 benchmark "
                              "network, 4 GPUs a node there)"),
}


def allreduce_s(nbytes, n, busbw_gbs, hop_s):
    if n == 1:
        return 0.0
    bandwidth = 2 * (n - 1) / n * nbytes / (busbw_gbs * 1e9)
    hops = min(2 * (n - 1), 2 * math.ceil(math.log2(n)))
    return bandwidth + hops * hop_s


def buckets(total_mib, first_mib, cap_mib):
    sizes, left = [], total_mib
    for cap in [first_mib] + [cap_mib] * math.ceil(total_mib / cap_mib):
        if left <= 0:
            break
        sizes.append(min(cap, left))
        left -= sizes[-1]
    return sizes


def step(args, n, net, wire_factor):
    """(exposed communication s, efficiency) at n GPUs on interconnect `net`."""
    inter = n > net["gpus_per_node"]
    busbw = net["inter"] if inter else net["intra"]
    hop = (args.inter_hop_us if inter else args.hop_us) * 1e-6
    bwd = args.backward_ms / 1e3
    sizes = buckets(args.grad_mib, args.first_mib, args.bucket_mib)
    end, done_mib = 0.0, 0.0
    for size in sizes:
        done_mib += size
        ready = bwd * done_mib / args.grad_mib
        end = max(end, ready) + allreduce_s(size * 2**20 * wire_factor, n, busbw, hop)
    exposed = max(0.0, end - bwd)
    compute = (args.forward_ms + args.backward_ms + args.optimizer_ms) / 1e3
    return exposed, compute / (compute + exposed)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Defaults: U-Net ResNet-34 + DANN (hidden 1024), 24.96 M float32 values
    # (tools/bench_train/peer_model.py's count), 512x512 tiles, batch 16 a GPU.
    p.add_argument("--grad-mib", type=float, default=95.2, help="gradient bytes per step in MiB (float32)")
    p.add_argument("--forward-ms", type=float, default=10.0)
    p.add_argument("--backward-ms", type=float, default=20.0)
    p.add_argument("--optimizer-ms", type=float, default=3.0)
    p.add_argument("--first-mib", type=float, default=1.0)
    p.add_argument("--bucket-mib", type=float, default=25.0)
    p.add_argument("--hop-us", type=float, default=2.0, help="latency a hop inside a node")
    p.add_argument("--inter-hop-us", type=float, default=8.0, help="latency a hop between nodes")
    p.add_argument("--gpus", default="8,64,512")
    p.add_argument("--busbw", type=float, help="model only this interconnect: one busbw (GB/s) in and between nodes")
    args = p.parse_args()
    gpus = [int(g) for g in args.gpus.split(",")]
    if args.busbw:
        INTERCONNECTS.clear()
        INTERCONNECTS["given"] = dict(intra=args.busbw, inter=args.busbw, gpus_per_node=max(gpus), note="--busbw")

    print(f"# {args.grad_mib} MiB of gradients, forward {args.forward_ms} ms, backward {args.backward_ms} ms, "
          f"optimizer {args.optimizer_ms} ms; buckets {args.first_mib} MiB then {args.bucket_mib} MiB "
          f"({len(buckets(args.grad_mib, args.first_mib, args.bucket_mib))} buckets)")
    for name, net in INTERCONNECTS.items():
        print(f"# {name}: {net['note']}; busbw {net['intra']} GB/s in a node, {net['inter']} GB/s between nodes")
    print()
    print("| interconnect | gradients on the wire | " + " | ".join(f"{g} GPUs: exposed ms / efficiency" for g in gpus)
          + " |")
    print("| --- | --- |" + " ---: |" * len(gpus))
    for name, net in INTERCONNECTS.items():
        for label, factor in (("float32", 1.0), ("bf16 (gradient_compression)", 0.5)):
            cells = []
            for g in gpus:
                exposed, eff = step(args, g, net, factor)
                cells.append(f"{exposed * 1e3:.1f} / {eff:.2f}")
            print(f"| {name} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
