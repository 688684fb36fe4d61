#!/usr/bin/python3
"""Compares every tensor of two da_dist checkpoints.

    compare_checkpoints.py A.pt B.pt [--tol 1e-6]

da_dist writes checkpoints with torch::serialize::OutputArchive: a TorchScript
zip archive whose data.pkl holds the model's parameters and buffers (a
Dict[str, Tensor] attribute "model"), the methods' modules, the optimizer
state, the RNG state and the progress counters. This reads data.pkl with
Python's own unpickler (tensors rebuilt from the archive's storages by
PyTorch, which Debian's python3-torch provides) and compares every tensor
found (and every number: optimizer steps, progress counters), by its path,
the optimizer state keyed by parameter position rather than by the address
libtorch writes: same set of paths, same dtype and shape, and values equal
(floating point within --tol absolute, default 0: bit-exact; everything else
exactly). The strings (the configuration, which names the run directory) are
not compared. Exit status 0 when they agree, 1 with the differences listed.
"""
import argparse
import pickle
import re
import sys
import warnings

import torch

# The checkpoint's pickle names typed storages (torch.FloatStorage, ...), the
# format torch.save writes; rebuilding them warns that the class is deprecated.
warnings.filterwarnings("ignore", message="TypedStorage is deprecated")


class _Obj:
    """A TorchScript object (module, class instance): keeps its state."""

    def __init__(self, *args):
        self.state = {}

    def __setstate__(self, state):
        self.state = state


def _torch_class(name):
    return type(name.replace(".", "_"), (_Obj,), {})


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, reader, prefix):
        import io

        super().__init__(io.BytesIO(data))
        self.reader = reader
        self.prefix = prefix
        self.storages = {}

    def find_class(self, module, name):
        if module.startswith("__torch__"):
            return _torch_class(module + "." + name)
        if module == "torch.jit._pickle":
            import torch.jit._pickle as jp

            return getattr(jp, name)
        if module == "torch._utils":
            import torch._utils as tu

            return getattr(tu, name)
        if module == "torch" and name.endswith("Storage"):
            return getattr(torch, name)
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', torch.FloatStorage, key, location, numel)
        _, storage_type, key, _location, numel = pid
        if key not in self.storages:
            raw = self.reader.get_record(f"data/{key}")
            dtype = storage_type(0).dtype if callable(storage_type) else storage_type.dtype
            t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype)[:numel].clone()
            self.storages[key] = t.storage()
        return self.storages[key]


def load(path):
    reader = torch._C.PyTorchFileReader(path)
    data = reader.get_record("data.pkl")
    return _Unpickler(data, reader, "").load()


def param_names(obj, path="", out=None):
    """libtorch keys the optimizer state by the parameters' addresses in the
    writing process ("0x55..."); the param groups list those keys in
    parameter order. Maps each address to "group G param I"."""
    if out is None:
        out = {}
    if isinstance(obj, _Obj):
        param_names(obj.state, path, out)
    elif isinstance(obj, dict):
        m = re.search(r"param_groups/(\d+)$", path)
        for k, v in obj.items():
            km = re.fullmatch(r"params/(\d+)", str(k))
            if m and km and isinstance(v, str):
                out[v] = f"group{m.group(1)}.param{km.group(1)}"
            else:
                param_names(v, f"{path}/{k}", out)
    return out


def values(obj, names, path="", out=None):
    """Every tensor and number (not the strings) by its path."""
    if out is None:
        out = {}
    if isinstance(obj, torch.Tensor):
        out[path] = obj
    elif isinstance(obj, bool) or isinstance(obj, (int, float)):
        out[path] = torch.tensor(obj, dtype=torch.float64 if isinstance(obj, float) else torch.int64)
    elif isinstance(obj, _Obj):
        values(obj.state, names, path, out)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            values(v, names, f"{path}/{names.get(k, k)}", out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            values(v, names, f"{path}[{i}]", out)
    return out


def tensors(obj):
    return values(obj, param_names(obj))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tol", type=float, default=0.0)
    args = ap.parse_args()
    ta, tb = tensors(load(args.a)), tensors(load(args.b))
    problems = []
    if not any(k.startswith("/model/") for k in ta):
        problems.append(f"no model tensors (/model/...) found in {args.a}")
    for k in sorted(set(ta) ^ set(tb)):
        problems.append(f"{k}: only in {args.a if k in ta else args.b}")
    worst, worst_key, exact, floats = 0.0, "", 0, 0
    for k in sorted(set(ta) & set(tb)):
        a, b = ta[k], tb[k]
        if a.dtype != b.dtype or a.shape != b.shape:
            problems.append(f"{k}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}")
            continue
        if torch.equal(a.contiguous().view(-1).view(torch.uint8), b.contiguous().view(-1).view(torch.uint8)):
            exact += 1  # the same bits (NaN included)
            continue
        if a.is_floating_point():
            floats += 1
            nan_a, nan_b = torch.isnan(a), torch.isnan(b)
            if not torch.equal(nan_a, nan_b):
                floats -= 1
                problems.append(f"{k}: NaN in different places")
                continue
            diff = (a.double() - b.double()).abs()
            diff[nan_a] = 0
            d = diff.max().item() if diff.numel() else 0.0
            if d > worst:
                worst, worst_key = d, k
            if not d <= args.tol:
                floats -= 1
                problems.append(f"{k}: max |a-b| = {d:.3g} > {args.tol:g}")
        else:
            problems.append(f"{k}: {a.dtype} values differ")
    print(f"{len(ta)} tensors and numbers: {exact} bit-exact, {floats} floating point within {args.tol:g}, "
          f"max |a-b| = {worst:.3g}{' (' + worst_key + ')' if worst_key else ''}")
    for p in problems:
        print("DIFF " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
