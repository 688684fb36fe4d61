#!/usr/bin/env python3
"""The --set overrides that turn source-only training into a baseline run.

    baseline_overrides.py RESOLVED_CONFIG.yaml BASELINE

RESOLVED_CONFIG is `da_dist --print-config` output. BASELINE:
  source_stats  every domain normalised with the source training archives'
                stored band_mean/band_std (weighted by tile count), as a
                model trained on the source alone would be deployed;
  oracle        trained on the target's labelled archives (the upper bound
                that target labels would give).
Prints one override per line.
"""
import glob
import sys

import h5py
import numpy as np
import yaml


def source_statistics(archives):
    means, stds, counts = [], [], []
    for path in [p for pattern in archives for p in sorted(glob.glob(pattern)) or [pattern]]:
        with h5py.File(path, "r") as f:
            means.append(np.asarray(f.attrs["band_mean"], np.float64))
            stds.append(np.asarray(f.attrs["band_std"], np.float64))
            counts.append(f["images"].shape[0])
    w = np.asarray(counts, np.float64)[:, None] / sum(counts)
    mean = (w * np.stack(means)).sum(0)
    # Pooled variance: within-archive variance plus the spread of the means.
    var = (w * (np.stack(stds) ** 2 + (np.stack(means) - mean) ** 2)).sum(0)
    return mean, np.sqrt(var)


def flow(values):
    return "[" + ",".join(f"{v:.6g}" for v in values) + "]"


def main(config_path, baseline):
    with open(config_path) as f:
        data = yaml.safe_load(f)["data"]
    if baseline == "source_stats":
        mean, std = source_statistics(data["source"]["train"])
        print(f"data.normalize.mode=config\ndata.normalize.mean={flow(mean)}\ndata.normalize.std={flow(std)}")
    elif baseline == "oracle":
        print(f"data.source.train={flow_paths(data['target']['train'])}")
        print(f"data.source.val={flow_paths(data['target']['val'])}")
    else:
        sys.exit(f"baseline_overrides: unknown baseline '{baseline}' (source_stats, oracle)")


def flow_paths(paths):
    return "[" + ",".join(paths) + "]"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
