#!/usr/bin/env python3
"""How well each label-free signal chooses the checkpoint, against target labels.

    python3 tools/compare/selection_gap.py RUN_DIR [RUN_DIR ...]

For every run (a da_dist run directory with metrics.jsonl, its validation
logged each epoch) and every signal a user without target labels can monitor,
the epoch the signal picks (its best value; the first on a tie, as
callbacks.checkpoint keeps the first best) is compared with the epoch target
labels pick (the best iou/target_val). Prints a Markdown table: per signal,
the mean and largest target-mIoU gap (label-chosen minus signal-chosen) over
the runs, and how many runs it picked the label-chosen epoch in. Runs
without iou/target_val in their epoch lines are refused: the gap needs labels.
"""
import json
import statistics
import sys

# The signals and which way is better, as callbacks.checkpoint.mode takes it.
SIGNALS = [
    ("iou/source_val", "max"),
    ("unsup/snd", "max"),
    ("unsup/target_entropy", "min"),
    ("unsup/class_prior_gap", "min"),
    ("last epoch", None),
]
LABELS = "iou/target_val"


def epochs(run_dir):
    path = f"{run_dir}/metrics.jsonl"
    rows = []
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                sys.exit(f"selection_gap: {path}:{number}: not JSON")
            if row.get("kind") == "epoch" and LABELS in row:
                rows.append(row)
    if not rows:
        sys.exit(f"selection_gap: {path}: no epoch line with {LABELS} (the gap needs target labels)")
    return rows


def pick(rows, signal, mode):
    """The row the signal chooses; None when no row has it."""
    if mode is None:
        return rows[-1]
    scored = [r for r in rows if signal in r]
    if not scored:
        return None
    best = max if mode == "max" else min
    value = best(r[signal] for r in scored)
    return next(r for r in scored if r[signal] == value)


def main(run_dirs):
    if not run_dirs:
        sys.exit(__doc__)
    runs = [epochs(d) for d in run_dirs]
    print(f"| signal (mode) | mean target-mIoU gap | largest gap | label-chosen epoch picked | runs |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for signal, mode in SIGNALS:
        gaps, hits = [], 0
        for rows in runs:
            chosen = pick(rows, signal, mode)
            if chosen is None:
                continue
            label_best = pick(rows, LABELS, "max")
            gaps.append(label_best[LABELS] - chosen[LABELS])
            hits += chosen is label_best
        if not gaps:
            continue
        name = signal if mode is None else f"{signal} ({mode})"
        print(f"| {name} | {statistics.mean(gaps):.4f} | {max(gaps):.4f} | {hits} | {len(gaps)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
