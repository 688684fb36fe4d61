#!/usr/bin/env python3
"""Reference values for tests/methods/test_mstn_cbst.cpp, computed with PyTorch.

MSTN: DANN (pooled discriminator, as make_method_reference.py) plus per-pixel
class centroids on the feature map: source classes from the masks and target
classes from the arg-max of the target logits, both nearest-neighbour
downsampled to the features; moving centroids C = decay * C_old +
(1 - decay) * C_batch (the first batch of a class sets it), loss = dann +
centroid_weight * lambda * mean over classes seen in both domains and over
channels of (C_s - C_t)^2 (the authors' tf.reduce_mean). Written with per-class loops, independently of the C++
vectorised form. Two steps: the second's loss and gradients.

CBST: per-class thresholds from 1000-bin histograms of the first batch's
confidences (the lower edge of the bin where the count from the top reaches
portion * n_k), then the second batch's cross-entropy on the selected pixels.

Inputs come from closed-form formulas (no RNG). Prints `name v1 v2 ...`.
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

K, C = 3, 4
DECAY, WEIGHT, LAM = 0.7, 1.5, 0.5


def mask(shape, offset):
    # Labels 0..2 and 255 (ignored), as test_mstn_cbst.cpp's mask().
    n = math.prod(shape)
    m = ((torch.arange(n) * 7 + offset) // 3) % 4
    m[m == 3] = 255
    return m.reshape(shape)


def at_features(labels, h, w):
    if labels.shape[-2:] == (h, w):
        return labels
    return F.interpolate(labels[:, None].double(), size=(h, w), mode="nearest").long()[:, 0]


def class_sums(f, labels):
    _, _, h, w = f.shape
    l = at_features(labels, h, w)
    sums, counts = [], []
    for k in range(K):
        sel = l == k  # [B,h,w]
        sums.append((f * sel[:, None].double()).sum((0, 2, 3)))
        counts.append(sel.sum().double())
    return sums, counts


class Mstn:
    def __init__(self):
        self.disc = Pooled(C, 5)
        set_params(self.disc)
        self.cent = [[torch.zeros(C) for _ in range(K)] for _ in range(2)]
        self.seen = [[False] * K for _ in range(2)]

    def step(self, s, t, m, tl):
        ls, lt = self.disc(Reverse.apply(s, LAM)), self.disc(Reverse.apply(t, LAM))
        logits = torch.cat([ls, lt])
        labels = torch.cat([torch.zeros_like(ls), torch.ones_like(lt)])
        dann = F.binary_cross_entropy_with_logits(logits, labels)
        stats = [class_sums(s, m), class_sums(t, tl.detach().argmax(1))]
        new = [[None] * K for _ in range(2)]
        for d in range(2):
            sums, counts = stats[d]
            for k in range(K):
                if counts[k] > 0:
                    batch = sums[k] / counts[k]
                    new[d][k] = DECAY * self.cent[d][k] + (1 - DECAY) * batch if self.seen[d][k] else batch
                    self.seen[d][k] = True
                else:
                    new[d][k] = self.cent[d][k]
        both = [k for k in range(K) if self.seen[0][k] and self.seen[1][k]]
        closs = sum(((new[0][k] - new[1][k]) ** 2).mean() for k in both) / len(both)
        self.cent = [[c.detach() for c in row] for row in new]
        return dann + WEIGHT * LAM * closs, closs, [len(both)]

    def centroids(self):
        return torch.stack([torch.stack(row) for row in self.cent])

    def seen_tensor(self):
        return torch.tensor([[1.0 if x else 0.0 for x in row] for row in self.seen])


mstn = Mstn()
s1, t1 = det((2, C, 4, 4), 0.1), det((2, C, 4, 4), 0.7, 1.5)
m1, tl1 = mask((2, 8, 8), 0), det((2, K, 8, 8), 0.3, 4.0)
_, closs1, n1 = mstn.step(s1, t1, m1, tl1)
emit("mstn.step1.centroid_loss", closs1.detach())
emit("mstn.step1.centroids", mstn.centroids())
emit("mstn.step1.seen", mstn.seen_tensor())
s2, t2 = det((2, C, 4, 4), 1.3).requires_grad_(), det((2, C, 4, 4), 2.1, 1.2).requires_grad_()
m2, tl2 = mask((2, 8, 8), 5), det((2, K, 8, 8), 0.9, 4.0)
loss, closs2, n2 = mstn.step(s2, t2, m2, tl2)
loss.backward()
emit("mstn.step2.loss", loss.detach())
emit("mstn.step2.centroid_loss", closs2.detach())
emit("mstn.step2.classes", float(n2[0]))
emit("mstn.step2.centroids", mstn.centroids())
emit("mstn.step2.seen", mstn.seen_tensor())
emit("mstn.step2.grad_source", s2.grad)
emit("mstn.step2.grad_target", t2.grad)
emit("mstn.step2.grad_disc_first", next(mstn.disc.parameters()).grad)

# ---- CBST
BINS, PORTION, FIXED = 1000, 0.2, 0.9
first = det((2, K, 6, 6), 0.2, 3.0)
conf, pred = torch.softmax(first, 1).max(1)
bins = (conf * BINS).floor().long().clamp(0, BINS - 1)
thresholds = []
for k in range(K):
    b = bins[pred == k]
    if b.numel() == 0:
        thresholds.append(FIXED)
        continue
    needed = PORTION * b.numel()
    edge = BINS - 1
    while edge > 0 and (b >= edge).sum().item() < needed:
        edge -= 1
    thresholds.append(edge / BINS)
thresholds = torch.tensor(thresholds)
emit("cbst.thresholds", thresholds)
# The fixed threshold's selection on the first batch (epoch 0).
emit("cbst.epoch0_ratio", (conf > FIXED).double().mean())

second = det((2, K, 6, 6), 0.6, 3.0).requires_grad_()
conf2, pred2 = torch.softmax(second.detach(), 1).max(1)
selected = conf2 >= thresholds[pred2]
targets = pred2.masked_fill(~selected, -100)
loss = F.cross_entropy(second, targets, ignore_index=-100)
loss.backward()
emit("cbst.loss", loss.detach())
emit("cbst.ratio", selected.double().mean())
emit("cbst.selected", selected.double())
emit("cbst.grad", second.grad)
