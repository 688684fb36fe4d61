#!/usr/bin/env python3
"""Reference values for tests/methods/test_methods.cpp, computed with PyTorch.

Inputs and weights come from closed-form formulas (no RNG), so the C++ test
rebuilds exactly the same tensors. Prints one line per quantity:
`name v1 v2 ...` with full double precision.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import Pixel, Pooled, Reverse, det, emit, set_params  # noqa: E402

torch.set_default_dtype(torch.float64)


def dann_case(tag, disc, lam):
    set_params(disc)
    s = det((2, 4, 3, 3), 0.1).requires_grad_()
    t = det((2, 4, 3, 3), 0.7, 1.5).requires_grad_()
    ls, lt = disc(Reverse.apply(s, lam)), disc(Reverse.apply(t, lam))
    logits = torch.cat([ls, lt])
    labels = torch.cat([torch.zeros_like(ls), torch.ones_like(lt)])
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    loss.backward()
    acc = ((logits > 0).double() == labels).double().mean()
    emit(f"{tag}.loss", loss.detach())
    emit(f"{tag}.acc", acc)
    emit(f"{tag}.grad_source", s.grad)
    emit(f"{tag}.grad_target", t.grad)
    first = next(disc.parameters())
    emit(f"{tag}.grad_disc_first", first.grad)


dann_case("dann_pooled_l0.3", Pooled(4, 5), 0.3)
dann_case("dann_pooled_l1", Pooled(4, 5), 1.0)
dann_case("dann_pixel_l0.5", Pixel(4, 5), 0.5)

logits = det((2, 3, 4, 4), 0.2, 2.0).requires_grad_()
p = torch.softmax(logits, 1)
entropy = -(p * torch.log(p)).sum(1).mean()
entropy.backward()
emit("entropy.loss", entropy.detach())
emit("entropy.grad", logits.grad)

for tag, threshold in (("pseudo_t0.7", 0.7), ("pseudo_t0.999", 0.999)):
    logits = det((2, 3, 4, 4), 0.3, 6.0).requires_grad_()
    conf, lab = torch.softmax(logits, 1).max(1)
    mask = conf > threshold
    if mask.sum() == 0:
        loss = logits.sum() * 0.0
    else:
        loss = F.cross_entropy(logits.permute(0, 2, 3, 1)[mask], lab[mask])
    loss.backward()
    emit(f"{tag}.loss", loss.detach())
    emit(f"{tag}.ratio", mask.double().mean())
    emit(f"{tag}.grad", logits.grad)

emit("schedule.dann_gamma10", torch.tensor([2.0 / (1.0 + math.exp(-10.0 * q)) - 1.0 for q in (0, 0.1, 0.25, 0.5, 1.0)]))
