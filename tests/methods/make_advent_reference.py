#!/usr/bin/env python3
"""Reference values for tests/methods/test_advent.cpp (ADVENT's adversarial
variant), computed with PyTorch on the closed-form inputs and weights of
make_method_reference.py. Prints `name v1 v2 ...` lines."""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import det, emit, set_params  # noqa: E402

torch.set_default_dtype(torch.float64)


class Discriminator(nn.Module):
    """ADVENT's: 4x4 stride-2 convolutions K -> ndf -> ... -> 8ndf -> 1."""

    def __init__(self, classes, ndf):
        super().__init__()
        channels = [classes, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 1]
        for i in range(5):
            setattr(self, f"conv{i + 1}", nn.Conv2d(channels[i], channels[i + 1], 4, stride=2, padding=1))

    def forward(self, x):
        for i in range(5):
            x = getattr(self, f"conv{i + 1}")(x)
            if i < 4:
                x = F.leaky_relu(x, 0.2)
        return x.reshape(-1)


def self_information(logits):
    # ADVENT's prob_2_entropy: -p * log2(p) / log2(K)
    p = torch.softmax(logits, 1)
    return -p * torch.log2(p) / math.log2(logits.shape[1])


# One step as the authors' train_UDA.py takes it: the segmentation network's
# adversarial loss on the target maps with the discriminator frozen (label
# source = 0), then the discriminator on the detached maps of both domains.
for tag, lam in (("advent_l0.4", 0.4), ("advent_l1", 1.0)):
    disc = Discriminator(3, 2)
    set_params(disc)
    s = det((2, 3, 32, 32), 0.3, 3.0).requires_grad_()
    t = det((2, 3, 32, 32), 1.7, 2.0).requires_grad_()
    for p in disc.parameters():
        p.requires_grad_(False)
    fooled = disc(self_information(t))
    adversarial = F.binary_cross_entropy_with_logits(fooled, torch.zeros_like(fooled))
    (lam * adversarial).backward()
    for p in disc.parameters():
        p.requires_grad_(True)
    ls = disc(self_information(s).detach())
    lt = disc(self_information(t).detach())
    logits = torch.cat([ls, lt])
    labels = torch.cat([torch.zeros_like(ls), torch.ones_like(lt)])
    discriminator = F.binary_cross_entropy_with_logits(logits, labels)
    discriminator.backward()
    emit(f"{tag}.loss", (lam * adversarial + discriminator).detach())
    emit(f"{tag}.domain_loss", discriminator.detach())
    emit(f"{tag}.adversarial_loss", adversarial.detach())
    emit(f"{tag}.acc", ((logits > 0).double() == labels).double().mean())
    assert s.grad is None  # the source maps only train the discriminator
    emit(f"{tag}.grad_target", t.grad)
    emit(f"{tag}.grad_disc_first", disc.conv1.weight.grad)

emit("advent.self_information", self_information(det((1, 3, 2, 2), 0.5, 4.0)))
