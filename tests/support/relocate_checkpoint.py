#!/usr/bin/env python3
"""Rewrites a torch::serialize archive (a da_dist checkpoint) as if every
tensor in it had been saved from a GPU: the storage locations recorded in its
pickles change from "cpu" to DEVICE (default cuda:0); the tensor bytes stay.

Lets a CPU-only test load a "GPU" checkpoint: without a map location Torch
refuses it on a machine without CUDA, exactly as it refuses a real one.

    relocate_checkpoint.py IN OUT [DEVICE]
"""
import struct
import sys
import zipfile


def binunicode(text: str) -> bytes:
    """The pickle opcode BINUNICODE ('X', 4-byte little-endian length) for text."""
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def main() -> int:
    source, target = sys.argv[1], sys.argv[2]
    device = sys.argv[3] if len(sys.argv) > 3 else "cuda:0"
    relocated = 0
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith(".pkl"):
                relocated += data.count(binunicode("cpu"))
                data = data.replace(binunicode("cpu"), binunicode(device))
            zout.writestr(info.filename, data)
    if relocated == 0:
        print(f"{source}: no storage location 'cpu' found", file=sys.stderr)
        return 1
    print(relocated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
