#!/usr/bin/env python3
"""tools/bench_comm/scaling_model.py against hand-computed values: the
all-reduce cost (bandwidth term and NCCL's cheaper of ring and tree
latency), the bucket split, and the exposed time and efficiency of a step.

    python3 test_scaling_model.py PROJECT_ROOT
"""
import argparse
import math
import sys

sys.path.insert(0, f"{sys.argv[1]}/tools/bench_comm")
import scaling_model as m  # noqa: E402

failures = []


def near(actual, expected, what, tol=1e-12):
    if not math.isclose(actual, expected, rel_tol=tol, abs_tol=tol):
        failures.append(f"{what}: {actual!r}, expected {expected!r}")


# 8 ranks, 1 GB at 10 GB/s: 2*7/8 * 0.1 s; tree (2*3 = 6 hops) beats ring (14).
near(m.allreduce_s(1e9, 8, 10.0, 1e-5), 0.175 + 6e-5, "8 ranks")
# 2 ranks: ring, 2 hops, and tree, 2*1 hops, tie.
near(m.allreduce_s(1e9, 2, 10.0, 1e-5), 0.1 + 2e-5, "2 ranks")
near(m.allreduce_s(1e9, 1, 10.0, 1e-5), 0.0, "1 rank")
if m.buckets(60.0, 1.0, 25.0) != [1.0, 25.0, 25.0, 9.0]:
    failures.append(f"buckets: {m.buckets(60.0, 1.0, 25.0)}")

# One 100 MiB bucket on 2 ranks at 1 GB/s (0.105 s): ready when backward
# ends, so all of it is exposed.
args = argparse.Namespace(grad_mib=100.0, first_mib=100.0, bucket_mib=100.0, forward_ms=10.0, backward_ms=20.0,
                          optimizer_ms=0.0, hop_us=0.0, inter_hop_us=0.0)
net = dict(intra=1.0, inter=1.0, gpus_per_node=8)
transfer = 100 * 2**20 / 1e9  # 2(n-1)/n = 1 at n = 2
exposed, efficiency = m.step(args, 2, net, 1.0)
near(exposed, transfer, "one bucket: exposed")
near(efficiency, 0.030 / (0.030 + transfer), "one bucket: efficiency")
# Two 50 MiB buckets: the first ready at 10 ms, its all-reduce (52.4 ms)
# ends at 62.4 ms, the second follows it: exposed = 10 + 2*52.4 - 20 ms.
args.first_mib = args.bucket_mib = 50.0
exposed, _ = m.step(args, 2, net, 1.0)
near(exposed, 0.010 + transfer - 0.020, "two buckets: exposed")
# Compression halves the bytes.
exposed, _ = m.step(args, 2, net, 0.5)
near(exposed, 0.010 + transfer / 2 - 0.020, "two bf16 buckets: exposed")
# A fast network hides everything but the last bucket's transfer after backward.
fast = dict(intra=1000.0, inter=1000.0, gpus_per_node=8)
exposed, _ = m.step(args, 2, fast, 1.0)
near(exposed, transfer / 1000 / 2, "fast network: exposed", tol=1e-9)

for f in failures:
    print("FAILED:", f)
sys.exit(1 if failures else 0)
