"""The sliding window of `da_dist predict --scene` written in PyTorch, as a peer
for tools/bench/scene_bench.sh: the same windows, padding and blending
(src/inference/sliding_window.h, scene_predict.h) around a model exported with
`da_dist export`, with GDAL block reads of strips as a rasterio user would write
them (osgeo.gdal from Debian's python3-gdal).

usage: scene_peer.py MODEL.pt SCENE OUT.tif [--window 512] [--overlap 64] [--batch 4] [--threads N]

MODEL.json (next to MODEL.pt) gives the normalisation. The scene is padded by
reflection by overlap/2 on every side (and to at least one window), cut into
windows stepping by window - overlap with the last aligned with the edge,
logits blended with the separable sin^2 weight, and each finished band of rows
written (argmax of the softmax) to a tiled, deflate-compressed uint8 GeoTIFF
with the scene's geotransform and CRS. Prints the seconds it took.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
from osgeo import gdal

gdal.UseExceptions()


def window_starts(length, window, stride):
    starts = list(range(0, max(length - window, 0), stride))
    return starts + [length - window]


def reflect(index, n):
    """Positions of a reflection-padded axis (numpy 'reflect', period 2n - 2) -> [0, n)."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * n - 2
    index = np.mod(index, period)
    return np.where(index < n, index, period - index)


def blend_weights(window):
    w = np.sin(math.pi * (np.arange(window, dtype=np.float64) + 0.5) / window) ** 2
    return torch.from_numpy(np.outer(w, w).astype(np.float32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("scene")
    parser.add_argument("output")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(args.threads)

    with open(os.path.splitext(args.model)[0] + ".json") as f:
        meta = json.load(f)
    model = torch.jit.load(args.model, map_location="cpu").eval()
    mean = torch.tensor(meta["normalization"]["mean"], dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(meta["normalization"]["std"], dtype=torch.float32).view(-1, 1, 1)

    src = gdal.Open(args.scene)
    width, height = src.RasterXSize, src.RasterYSize
    window, margin, stride = args.window, args.overlap // 2, args.window - args.overlap
    padded_h, padded_w = max(height + 2 * margin, window), max(width + 2 * margin, window)
    columns = reflect(np.arange(padded_w) - margin, width)
    rows = window_starts(padded_h, window, stride)
    cols = window_starts(padded_w, window, stride)
    weight = blend_weights(window)

    driver = gdal.GetDriverByName("GTiff")
    out = driver.Create(args.output, width, height, 1, gdal.GDT_Byte,
                        options=["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"])
    out.SetGeoTransform(src.GetGeoTransform())
    out.SetProjection(src.GetProjection())
    out_band = out.GetRasterBand(1)

    def read_strip(y):
        """Padded rows [y, y + window) as normalised float32 [C, window, padded_w]."""
        source_rows = reflect(np.arange(y, y + window) - margin, height)
        lo, hi = int(source_rows.min()), int(source_rows.max())
        block = src.ReadAsArray(0, lo, width, hi - lo + 1)  # [C, n, width], one read per strip
        block = block[:, source_rows - lo][:, :, columns]
        return (torch.from_numpy(block.astype(np.float32)) - mean) / std

    def write_rows(y, logits):
        """Padded rows [y, y + n) of blended logits -> scene rows, margins dropped."""
        first, last = max(y, margin), min(y + logits.shape[1], margin + height)
        if first >= last:
            return
        scene_logits = logits[:, first - y:last - y, margin:margin + width]
        labels = torch.softmax(scene_logits, dim=0).max(dim=0).indices.to(torch.uint8)
        out_band.WriteArray(labels.numpy(), 0, first - margin)

    total = None
    weight_total = torch.zeros(window, padded_w)
    band_y = 0
    with torch.inference_mode():
        for r, y in enumerate(rows):
            strip = read_strip(y)
            for c0 in range(0, len(cols), args.batch):
                batch = cols[c0:c0 + args.batch]
                logits = model(torch.stack([strip[:, :, x:x + window] for x in batch]))
                if total is None:
                    total = torch.zeros(logits.shape[1], window, padded_w)
                for i, x in enumerate(batch):
                    total[:, y - band_y:y - band_y + window, x:x + window] += logits[i] * weight
                    weight_total[y - band_y:y - band_y + window, x:x + window] += weight
            # Rows above the next window row are final.
            done = (rows[r + 1] if r + 1 < len(rows) else padded_h) - band_y
            write_rows(band_y, total[:, :done] / weight_total[:done])
            total = torch.cat([total[:, done:], torch.zeros(total.shape[0], done, padded_w)], dim=1)
            weight_total = torch.cat([weight_total[done:], torch.zeros(done, padded_w)], dim=0)
            band_y += done
    out_band.FlushCache()
    out = None
    print("seconds %.3f" % (time.perf_counter() - start))


if __name__ == "__main__":
    main()
