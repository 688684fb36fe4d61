#!/usr/bin/env python3
"""The comparison table of tools/compare/compare_methods.sh.

    method_table.py OUT "METHOD ..." "SEED ..."

Reads OUT/METHOD-seedSEED/metrics.jsonl (the last epoch line) and prints a
Markdown table: target and source validation mIoU (mean ± spread over the
seeds), the target gain over source_only and over the strongest baseline
(source_only, source_stats, adabn: the best mean target mIoU of those run),
both paired by seed, and whether the gain over the strongest baseline is
clear (its mean above twice its spread).
"""
import json
import statistics
import sys

BASELINES = ("source_only", "source_stats", "adabn")


def last_epoch(out, method, seed):
    with open(f"{out}/{method}-seed{seed}/metrics.jsonl") as lines:
        rows = [json.loads(line) for line in lines if '"kind": "epoch"' in line]
    return rows[-1]


def mean_spread(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(values):
    return "{:.3f} ± {:.3f}".format(*mean_spread(values))


def main(out, methods, seeds):
    target = {m: [last_epoch(out, m, s)["iou/target_val"] for s in seeds] for m in methods}
    source = {m: [last_epoch(out, m, s).get("iou/source_val", float("nan")) for s in seeds] for m in methods}
    baselines = [b for b in BASELINES if b in target]
    strongest = max(baselines, key=lambda b: statistics.mean(target[b])) if baselines else None

    def gain(m, base):
        if base not in target:
            return "-", None
        diffs = [t - b for t, b in zip(target[m], target[base])]
        return fmt(diffs), mean_spread(diffs)

    print(f"Strongest baseline: {strongest or '-'}\n")
    print("| method | target mIoU | source mIoU | gain over source_only | gain over strongest | clear (> 2 spread) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for m in methods:
        over_source, _ = gain(m, "source_only")
        over_best, stats = gain(m, strongest) if m != strongest else ("-", None)
        clear = "-" if stats is None or m in BASELINES or m == "oracle" else (
            "yes" if stats[0] > 2 * stats[1] and stats[0] > 0 else "no")
        print(f"| {m} | {fmt(target[m])} | {fmt(source[m])} | {over_source} | {over_best} | {clear} |")
    print(f"\n{len(seeds)} seeds: {' '.join(seeds)}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2].split(), sys.argv[3].split())
