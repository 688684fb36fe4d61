"""Runs a `da_dist export` model with PyTorch and compares it with the C++ model.

usage: check_export.py MODEL.pt MODEL.json CASE...
  CASE: INPUT.f32:EXPECTED.f32:B,C,H,W,K with raw little-endian float32 arrays,
        the input [B, C, H, W] (already normalised) and the C++ logits [B, K, H, W].

Checks the JSON description against the model (format, version, band and class
counts and names, normalisation lengths) and the outputs against the expected
logits; prints "max_abs_diff X" over all cases and exits 1 when X > 1e-5 or a
check fails (with the reason on stderr).
"""
import json
import sys

import numpy as np
import torch


def fail(message):
    print("check_export: " + message, file=sys.stderr)
    sys.exit(1)


def main(argv):
    if len(argv) < 3:
        fail("usage: check_export.py MODEL.pt MODEL.json CASE...")
    model_path, json_path, cases = argv[0], argv[1], argv[2:]
    with open(json_path) as f:
        meta = json.load(f)
    if meta.get("format") != "da_dist-torchscript" or meta.get("version") != 1:
        fail("unexpected format/version %r/%r" % (meta.get("format"), meta.get("version")))
    bands, classes = meta["bands"]["count"], meta["classes"]["count"]
    if len(meta["bands"]["names"]) != bands or len(meta["classes"]["names"]) != classes:
        fail("band/class names do not match their counts")
    if len(meta["normalization"]["mean"]) != bands or len(meta["normalization"]["std"]) != bands:
        fail("normalization has not one mean and std per band")

    model = torch.jit.load(model_path, map_location="cpu")
    model.eval()
    worst = 0.0
    with torch.inference_mode():
        for case in cases:
            input_path, expected_path, shape = case.split(":")
            b, c, h, w, k = (int(v) for v in shape.split(","))
            if c != bands or k != classes:
                fail("case %s does not match the JSON's %d bands / %d classes" % (case, bands, classes))
            x = torch.from_numpy(np.fromfile(input_path, dtype="<f4").reshape(b, c, h, w))
            expected = torch.from_numpy(np.fromfile(expected_path, dtype="<f4").reshape(b, k, h, w))
            logits = model(x)
            if tuple(logits.shape) != (b, k, h, w) or logits.dtype != torch.float32:
                fail("case %s: logits %s %s, expected [%d, %d, %d, %d] float32"
                     % (case, tuple(logits.shape), logits.dtype, b, k, h, w))
            worst = max(worst, (logits - expected).abs().max().item())
    print("max_abs_diff %.9g" % worst)
    if worst > 1e-5:
        fail("max abs difference %g > 1e-5" % worst)


if __name__ == "__main__":
    main(sys.argv[1:])
