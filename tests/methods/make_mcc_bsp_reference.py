#!/usr/bin/env python3
"""Reference values for tests/methods/test_mcc_bsp.cpp, computed with PyTorch.

MCC is tllib's MinimumClassConfusionLoss (copied below) on target pixels as
samples; BSP is tllib's BatchSpectralPenalizationLoss (torch.svd) generalised
to the top k singular values. Inputs come from det() (no RNG), so the C++ test
rebuilds exactly the same tensors; the MCC pixel sample is drawn with the
same per-image seeds as methods/mcc.cpp. Prints one line per quantity:
`name v1 v2 ...` with full double precision.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import det, emit  # noqa: E402

torch.set_default_dtype(torch.float64)

MASK64 = (1 << 64) - 1


# --- tllib (tllib/modules/entropy.py, tllib/self_training/mcc.py) -----------
def entropy(predictions, reduction='none'):
    epsilon = 1e-5
    H = -predictions * torch.log(predictions + epsilon)
    H = H.sum(dim=1)
    if reduction == 'mean':
        return H.mean()
    return H


def tllib_mcc(logits, temperature):
    batch_size, num_classes = logits.shape
    predictions = F.softmax(logits / temperature, dim=1)
    entropy_weight = entropy(predictions).detach()
    entropy_weight = 1 + torch.exp(-entropy_weight)
    entropy_weight = (batch_size * entropy_weight / torch.sum(entropy_weight)).unsqueeze(dim=1)
    class_confusion_matrix = torch.mm((predictions * entropy_weight).transpose(1, 0), predictions)
    class_confusion_matrix = class_confusion_matrix / torch.sum(class_confusion_matrix, dim=1)
    return (torch.sum(class_confusion_matrix) - torch.trace(class_confusion_matrix)) / num_classes


# --- the pixel sample of methods/mcc.cpp --------------------------------------
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def sample_seed(seed, step):
    return mix64((seed + GOLDEN * (step + 1)) & MASK64)


def image_seed(seed, step, image):
    return mix64((sample_seed(seed, step) + GOLDEN * (image + 1)) & MASK64)


def sample_pixels(batch, pixels, per_image, seed, step):
    # One generator per image, seeded by the image's index in the global batch.
    rows = []
    for b in range(batch):
        g = torch.Generator().manual_seed(image_seed(seed, step, b))
        rows.append(torch.randperm(pixels, generator=g)[:per_image])
    return torch.stack(rows)


MCC_SHAPE = (2, 4, 5, 6)


def mcc_logits():
    return det(MCC_SHAPE, 0.2, 3.0).requires_grad_()


for tag, temperature in (("mcc_all_t2.5", 2.5), ("mcc_all_t1", 1.0)):
    logits = mcc_logits()
    b, k, h, w = logits.shape
    loss = tllib_mcc(logits.permute(0, 2, 3, 1).reshape(-1, k), temperature)
    loss.backward()
    emit(f"{tag}.loss", loss.detach())
    emit(f"{tag}.grad", logits.grad)

# 7 of 30 pixels per image, seed 3, global step 11.
logits = mcc_logits()
b, k, h, w = logits.shape
index = sample_pixels(b, h * w, 7, 3, 11)
flat = logits.reshape(b, k, h * w)
samples = torch.cat([flat[i][:, index[i]].t() for i in range(b)])  # image by image, sampled order
loss = tllib_mcc(samples, 2.5)
loss.backward()
seed = sample_seed(3, 11)
emit("mcc_sample.seed_hi_lo", torch.tensor([seed >> 32, seed & 0xFFFFFFFF], dtype=torch.float64))
emit("mcc_sample.index", index)
emit("mcc_sample.loss", loss.detach())
emit("mcc_sample.grad", logits.grad)


# --- BSP ----------------------------------------------------------------------
def tllib_bsp(f_s, f_t, k):
    _, s_s, _ = torch.svd(f_s)
    _, s_t, _ = torch.svd(f_t)
    return torch.pow(s_s[:k], 2).sum() + torch.pow(s_t[:k], 2).sum()


def bsp_features():
    # Well conditioned: det() alone pools to a rank-2 matrix; a distinct
    # offset per channel and a diagonal make the [4,5] matrices full rank
    # with well separated singular values (checked below).
    scale = torch.tensor([3.0, 2.0, 1.2, 0.7, 0.4]).reshape(1, 5, 1, 1)
    diag = torch.eye(4, 5).reshape(4, 5, 1, 1)
    s = (det((4, 5, 3, 3), 0.1) + scale + diag).requires_grad_()
    t = (det((4, 5, 3, 3), 0.9, 1.5) - 0.5 * scale + 0.8 * diag).requires_grad_()
    return s, t


s, t = bsp_features()
for name, f in (("source", s), ("target", t)):
    sv = torch.linalg.svdvals(F.adaptive_avg_pool2d(f.detach(), 1).flatten(1))
    gaps = torch.cat([sv[:-1] - sv[1:], sv[-1:]])
    if gaps.min() < 0.02 * sv[0]:
        raise SystemExit(f"bsp {name} features ill conditioned: singular values {sv.tolist()}")
    emit(f"bsp.{name}_singular_values", sv)

for k in (1, 2):
    s, t = bsp_features()
    ps, pt = F.adaptive_avg_pool2d(s, 1).flatten(1), F.adaptive_avg_pool2d(t, 1).flatten(1)
    loss = tllib_bsp(ps, pt, k)
    loss.backward()
    emit(f"bsp_k{k}.loss", loss.detach())
    emit(f"bsp_k{k}.grad_source", s.grad)
    emit(f"bsp_k{k}.grad_target", t.grad)
