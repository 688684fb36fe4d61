#!/usr/bin/env python3
"""Writes tile archives with h5py, the way outside tools write them, for the C++ reader tests.

Usage: make_h5py_archives.py OUT_DIR

Good archives use h5py's own encodings (variable-length UTF-8 strings, numpy
integers of assorted widths) or fixed-length byte strings; bad archives each
break one rule of spec/tile-archive.md. Pixel values follow formulas that
tests/io/test_io.cpp recomputes:
  image[n, c, y, x] = (7n + 13c + 3y + x) % 256   (float32: the same value / 4)
  mask[n, y, x]     = (n + y + x) % K, except mask[n, 0, 0] = 255
"""
import os
import sys

import h5py
import numpy as np

N, C, H, W, K = 3, 4, 8, 6, 5
BANDS = ["red", "green", "blue", "nir"]
CLASSES = ["road", "building", "grass", "tree", "car"]


def image_values(n=N, c=C, h=H, w=W):
    idx = np.indices((n, c, h, w))
    return (7 * idx[0] + 13 * idx[1] + 3 * idx[2] + idx[3]) % 256


def mask_values(n=N, h=H, w=W, k=K):
    idx = np.indices((n, h, w))
    mask = ((idx[0] + idx[1] + idx[2]) % k).astype(np.uint8)
    mask[:, 0, 0] = 255
    return mask


def root(f, **overrides):
    attrs = {"format": "da-tiles", "version": np.int32(1), "domain": "potsdam", "bands": BANDS}
    attrs.update(overrides)
    for key, value in attrs.items():
        if value is not None:
            f.attrs[key] = value


def write_good_uint8(path, userblock_size=0):
    # A user block (bytes before the HDF5 data, e.g. a header another tool
    # put there) shifts every HDF5 file address by its size.
    with h5py.File(path, "w", userblock_size=userblock_size) as f:
        root(f, classes=CLASSES, ignore_index=np.uint8(255), band_mean=np.array([1.5, 2.5, 3.5, 4.5]),
             band_std=np.array([0.5, 1.0, 2.0, 4.0]), crs="EPSG:32632", sources=["a.tif", "b.tif"])
        f.create_dataset("images", data=image_values().astype(np.uint8), chunks=(1, C, H, W))
        f.create_dataset("masks", data=mask_values(), chunks=(1, H, W))
        f.create_dataset("meta/origin", data=np.array([[0, 0], [0, 6], [8, 0]], dtype=np.int64))
        f.create_dataset("meta/source_id", data=np.array([0, 1, 1], dtype=np.int16))
        f.create_dataset("meta/geotransform", data=np.arange(N * 6, dtype=np.float64).reshape(N, 6))


def write_good_fixed_float(path):
    # Fixed-length byte strings (numpy 'S'), gzip + shuffle, no masks.
    with h5py.File(path, "w") as f:
        root(f, format=np.bytes_(b"da-tiles"), domain=np.bytes_(b"rural"), version=np.uint64(1),
             bands=np.array([b.encode() for b in BANDS], dtype="S5"))
        f.create_dataset("images", data=(image_values() / 4.0).astype(np.float32), chunks=(1, C, H, W),
                         compression="gzip", compression_opts=4, shuffle=True)


def write_good_uint16(path):
    with h5py.File(path, "w") as f:
        root(f, version=np.int8(1))
        f.create_dataset("images", data=(image_values() * 200).astype(np.uint16), chunks=(1, C, H, W),
                         compression="gzip")


def write_compressed_variants(out):
    """Compressed archives for the direct chunk reads (H5Dread_chunk + our own inflate and unshuffle),
    compared tile by tile with H5Dread: uint8 and uint16, gzip with and without shuffle, masks too;
    fletcher32 (a filter we leave to HDF5) and a never-written chunk (fill value) take the H5Dread path."""
    u8, u16 = image_values().astype(np.uint8), (image_values() * 200).astype(np.uint16)
    for name, data, shuffle in [("h5py_uint8_gzip.h5", u8, False), ("h5py_uint8_gzip_shuffle.h5", u8, True),
                                ("h5py_uint16_gzip_shuffle.h5", u16, True)]:
        with h5py.File(os.path.join(out, name), "w") as f:
            root(f, classes=CLASSES)
            f.create_dataset("images", data=data, chunks=(1, C, H, W), compression="gzip", compression_opts=6,
                             shuffle=shuffle)
            f.create_dataset("masks", data=mask_values(), chunks=(1, H, W), compression="gzip", shuffle=shuffle)
    with h5py.File(os.path.join(out, "h5py_uint16_fletcher32.h5"), "w") as f:
        root(f)
        f.create_dataset("images", data=u16, chunks=(1, C, H, W), compression="gzip", shuffle=True, fletcher32=True)
    with h5py.File(os.path.join(out, "h5py_uint16_unwritten.h5"), "w") as f:
        root(f)
        dset = f.create_dataset("images", shape=u16.shape, dtype=np.uint16, chunks=(1, C, H, W), compression="gzip",
                                shuffle=True)
        dset[0] = u16[0]
        dset[2] = u16[2]  # tile 1 is never written: H5Dread gives the fill value 0


def write_bad(out):
    def simple(name, images=None, masks=None, **attrs):
        with h5py.File(os.path.join(out, name), "w") as f:
            root(f, **attrs)
            if images is not None:
                f.create_dataset("images", data=images)
            if masks is not None:
                f.create_dataset("masks", data=masks)

    u8 = image_values().astype(np.uint8)
    simple("wrong_format.h5", u8, format="geo-tiles")
    simple("version2.h5", u8, version=2)
    simple("no_images.h5", None)
    simple("wrong_rank.h5", u8[:, 0])
    simple("int32_images.h5", image_values().astype(np.int32))
    bad_mask = mask_values()
    bad_mask[1, 2, 3] = 9
    simple("mask_out_of_range.h5", u8, bad_mask, classes=CLASSES)
    simple("masks_without_classes.h5", u8, mask_values())
    simple("empty.h5", np.zeros((0, C, H, W), dtype=np.uint8))
    with_nan = (image_values() / 4.0).astype(np.float32)
    with_nan[2, 1, 3, 4] = np.nan
    with_nan[2, 3, 0, 0] = np.inf
    simple("nan.h5", with_nan)
    write_corrupt_chunk(os.path.join(out, "corrupt_chunk.h5"))


def write_corrupt_chunk(path):
    """A compressed archive whose tile 1 chunk holds garbage: the file opens, that tile cannot be decoded."""
    with h5py.File(path, "w") as f:
        root(f)
        dset = f.create_dataset("images", data=image_values().astype(np.uint8), chunks=(1, C, H, W),
                                compression="gzip")
        chunk = dset.id.get_chunk_info(1)
    with open(path, "r+b") as raw:
        raw.seek(chunk.byte_offset)
        raw.write(b"\xff" * chunk.size)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_good_uint8(os.path.join(out, "h5py_uint8.h5"))
    write_good_uint8(os.path.join(out, "h5py_uint8_userblock.h5"), userblock_size=1024)
    write_good_fixed_float(os.path.join(out, "h5py_fixed_float.h5"))
    write_good_uint16(os.path.join(out, "h5py_uint16.h5"))
    write_compressed_variants(out)
    write_bad(out)


if __name__ == "__main__":
    main()
