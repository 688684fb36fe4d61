#!/usr/bin/env python3
"""Reference values for tests/methods/test_cdan.cpp, computed with PyTorch.

CDAN in tllib's ConditionalDomainAdversarialLoss formulation (multilinear or
randomized map, softmax detached, optional entropy conditioning) and
multi-layer DANN. Inputs and weights use the shared closed-form det() and
set_params() formulas of reference_common.py, so the C++ test rebuilds the
same tensors. The randomized map's matrices come from torch.randn on a CPU
generator seeded like the C++ side; they are printed too, so the test can
check that both sides draw identical values. Prints `name v1 v2 ...`.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import Pooled, Reverse, det, emit, set_params  # noqa: E402

torch.set_default_dtype(torch.float64)


class Head(nn.Module):
    """tllib DomainDiscriminator without BatchNorm/dropout, plus the map."""

    def __init__(self, c, k, hidden, d, generator):
        super().__init__()
        self.rf = self.rg = None
        dim = c * k
        if d > 0:
            # Drawn in float32 like the C++ buffers, then converted like module->to(kDouble).
            self.rf = torch.randn((c, d), generator=generator, dtype=torch.float32).double()
            self.rg = torch.randn((k, d), generator=generator, dtype=torch.float32).double()
            dim = d
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 1)

    def map(self, f, g):  # tllib MultiLinearMap / RandomizedMultiLinearMap
        if self.rf is not None:
            return torch.mm(f, self.rf) * torch.mm(g, self.rg) / math.sqrt(float(self.rf.size(1)))
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).view(f.size(0), -1)

    def forward(self, h):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(h))))).reshape(-1)


def samples(feat, logits, pixel):
    p = torch.softmax(logits, 1).detach()
    if not pixel:
        return F.adaptive_avg_pool2d(feat, 1).flatten(1), F.adaptive_avg_pool2d(p, 1).flatten(1)
    g = F.adaptive_avg_pool2d(p, feat.shape[2:])
    rows = lambda x: x.permute(0, 2, 3, 1).reshape(-1, x.size(1))
    return rows(feat), rows(g)


def tllib_entropy(g):
    return -(g * torch.log(g + 1e-5)).sum(dim=1)


def cdan_layer_loss(head, fs, ls, ft, lt, lam, pixel, entropy):
    f_s, g_s = samples(fs, ls, pixel)
    f_t, g_t = samples(ft, lt, pixel)
    d_s = head(head.map(Reverse.apply(f_s, lam), g_s))
    d_t = head(head.map(Reverse.apply(f_t, lam), g_t))
    d = torch.cat([d_s, d_t])
    label = torch.cat([torch.zeros_like(d_s), torch.ones_like(d_t)])
    weight = None
    if entropy:
        g = torch.cat([g_s, g_t])
        weight = 1.0 + torch.exp(-tllib_entropy(g))
        weight = (weight / weight.sum() * g.size(0)).detach()
    loss = F.binary_cross_entropy_with_logits(d, label, weight=weight)
    acc = ((d > 0).double() == label).double().mean()
    return loss, acc


K, HIDDEN, LAM = 3, 5, 0.5


def layer_inputs(c, hw, offset):
    fs = det((2, c, hw, hw), 0.1 + offset).requires_grad_()
    ft = det((2, c, hw, hw), 0.7 + offset, 1.5).requires_grad_()
    return fs, ft


def logits_inputs():
    # 5x5 logits pooled to 3x3 (and 2x2) feature maps: overlapping adaptive windows.
    return det((2, K, 5, 5), 0.2, 2.0), det((2, K, 5, 5), 0.9, 1.5)


def cdan_case(tag, pixel, entropy, d=0, seed=0, layers=((4, 3, 1.0),)):
    """layers: (channels, feature HxW, weight) per layer, in order."""
    gen = torch.Generator().manual_seed(seed)
    top = nn.Module()
    heads = []
    for i, (c, _, _) in enumerate(layers):
        heads.append(Head(c, K, HIDDEN, d, gen))
        top.add_module(f"l{i}", heads[-1])
    set_params(top)
    ls, lt = logits_inputs()
    total, feats = 0.0, []
    for i, ((c, hw, w), head) in enumerate(zip(layers, heads)):
        fs, ft = layer_inputs(c, hw, 0.2 * i)
        feats.append((fs, ft))
        loss, acc = cdan_layer_loss(head, fs, ls, ft, lt, LAM, pixel, entropy)
        emit(f"{tag}.loss{i}", loss.detach())
        emit(f"{tag}.acc{i}", acc)
        total = total + w * loss
        if d > 0:
            emit(f"{tag}.random_f{i}", head.rf)
            emit(f"{tag}.random_g{i}", head.rg)
    total.backward()
    emit(f"{tag}.loss", total.detach())
    for i, (fs, ft) in enumerate(feats):
        emit(f"{tag}.grad_source{i}", fs.grad)
        emit(f"{tag}.grad_target{i}", ft.grad)
    emit(f"{tag}.grad_disc_first", next(top.parameters()).grad)


cdan_case("cdan_pooled", pixel=False, entropy=False)
cdan_case("cdan_pixel", pixel=True, entropy=False)
cdan_case("cdan_pooled_e", pixel=False, entropy=True)
cdan_case("cdan_pixel_e", pixel=True, entropy=True)
cdan_case("cdan_random_pooled", pixel=False, entropy=False, d=6, seed=3)
cdan_case("cdan_random_pixel_e", pixel=True, entropy=True, d=7, seed=0)
cdan_case("cdan_two_layers", pixel=True, entropy=True, d=6, seed=11, layers=((4, 3, 0.7), (6, 2, 1.3)))

# torch.randn on a seeded CPU generator, float32 and float64, for the test
# that C++ and Python draw the same values (sizes below and above the
# 16-element threshold where randn switches to its vectorised path).
for n in (5, 40):
    gen = torch.Generator().manual_seed(42)
    emit(f"randn.seed42.float.{n}", torch.randn(n, generator=gen, dtype=torch.float32))
    emit(f"randn.seed42.double.{n}", torch.randn(n, generator=gen, dtype=torch.float64))


def dann_two_layers(tag, lam, weights):
    top = nn.Module()
    top.add_module("encoder_layer3", Pooled(4, HIDDEN))
    top.add_module("encoder_layer4", Pooled(6, HIDDEN))
    set_params(top)
    total, feats = 0.0, []
    for i, (disc, c, hw) in enumerate(((top.encoder_layer3, 4, 3), (top.encoder_layer4, 6, 2))):
        fs, ft = layer_inputs(c, hw, 0.2 * i)
        feats.append((fs, ft))
        ls, lt = disc(Reverse.apply(fs, lam)), disc(Reverse.apply(ft, lam))
        logits = torch.cat([ls, lt])
        labels = torch.cat([torch.zeros_like(ls), torch.ones_like(lt)])
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        emit(f"{tag}.loss{i}", loss.detach())
        emit(f"{tag}.acc{i}", ((logits > 0).double() == labels).double().mean())
        total = total + weights[i] * loss
    total.backward()
    emit(f"{tag}.loss", total.detach())
    for i, (fs, ft) in enumerate(feats):
        emit(f"{tag}.grad_source{i}", fs.grad)
        emit(f"{tag}.grad_target{i}", ft.grad)
    emit(f"{tag}.grad_disc_first", top.encoder_layer3.fc1.weight.grad)
    emit(f"{tag}.grad_disc_second", top.encoder_layer4.fc1.weight.grad)


dann_two_layers("dann_two_layers", 0.4, (0.7, 1.3))
