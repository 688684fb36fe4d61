#!/usr/bin/python3
"""Plots a run's metrics.jsonl as PNG curves with matplotlib.

usage: tools/plot_run.py RUN_DIR [--out FILE.png] [--title TEXT]

Four panels: training losses per logged step (loss/total, loss/seg,
loss/da), lambda and the learning rate, the DA methods' domain accuracies
(da/<method>/domain_acc, the chance level 0.5 dashed), and validation mIoU
per epoch for the source and the target (iou/source_val, iou/target_val).
Panels with nothing to show say so. Writes RUN_DIR/metrics.png unless --out
is given.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(path):
    steps, epochs = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"plot_run: {path}:{number}: not JSON: {e}")
            (steps if record.get("kind") == "step" else epochs).append(record)
    return steps, epochs


def curve(ax, records, x_key, key, label=None, **style):
    points = [(r[x_key], r[key]) for r in records if key in r]
    if points:
        xs, ys = zip(*points)
        ax.plot(xs, ys, label=label or key, **style)
    return bool(points)


def plot(run_dir, out, title):
    steps, epochs = read_metrics(os.path.join(run_dir, "metrics.jsonl"))
    if not steps and not epochs:
        raise SystemExit(f"plot_run: {run_dir}/metrics.jsonl holds no records")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    (losses, schedule), (domain, iou) = axes

    drawn = [curve(losses, steps, "step", k) for k in ("loss/total", "loss/seg", "loss/da")]
    losses.set(title="training losses", xlabel="global step")

    drawn_schedule = curve(schedule, steps, "step", "lambda")
    twin = schedule.twinx()
    if curve(twin, steps, "step", "lr", color="tab:red"):
        twin.set_ylabel("lr", color="tab:red")
        drawn_schedule = True
    schedule.set(title="lambda and learning rate", xlabel="global step", ylabel="lambda")

    acc_keys = sorted({k for r in steps for k in r if k.startswith("da/") and k.endswith("/domain_acc")})
    for k in acc_keys:
        curve(domain, steps, "step", k, label=k[3:])
    if acc_keys:
        domain.axhline(0.5, linestyle="--", color="gray", linewidth=1)
    domain.set(title="domain accuracy (0.5 = domains indistinguishable)", xlabel="global step", ylim=(0, 1))

    drawn_iou = [curve(iou, epochs, "epoch", k, marker="o") for k in ("iou/source_val", "iou/target_val")]
    iou.set(title="validation mIoU", xlabel="epoch", ylim=(0, 1))

    for ax, has in ((losses, any(drawn)), (schedule, drawn_schedule), (domain, bool(acc_keys)), (iou, any(drawn_iou))):
        if has:
            ax.legend(loc="best", fontsize=8)
            ax.grid(alpha=0.3)
        else:
            ax.text(0.5, 0.5, "nothing logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title or os.path.basename(os.path.normpath(run_dir)))
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    return out


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--out")
    parser.add_argument("--title")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(args.run_dir, "metrics.png")
    print(plot(args.run_dir, out, args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
