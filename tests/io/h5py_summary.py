#!/usr/bin/env python3
"""Prints what h5py sees in a tile archive, one `key: value` line each, for
tests that check archives written by da_dist read naturally in Python.

Usage: h5py_summary.py ARCHIVE
"""
import sys

import h5py


def describe(value):
    # h5py returns str for variable-length UTF-8 strings, numpy values otherwise.
    if isinstance(value, str):
        return "str " + value
    if hasattr(value, "tolist"):
        items = value.tolist()
        return f"{value.dtype} {items}"
    return f"{type(value).__name__} {value}"


def main():
    with h5py.File(sys.argv[1], "r") as f:
        for key in sorted(f.attrs):
            print(f"attr {key}: {describe(f.attrs[key])}")
        for name in ("images", "masks", "meta/origin", "meta/source_id", "meta/geotransform"):
            if name in f:
                d = f[name]
                print(f"{name}: {d.dtype} {list(d.shape)} chunks {list(d.chunks) if d.chunks else None} "
                      f"compression {d.compression} shuffle {d.shuffle} sum {d[()].sum()}")


if __name__ == "__main__":
    main()
