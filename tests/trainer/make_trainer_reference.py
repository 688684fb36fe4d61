#!/usr/bin/env python3
"""Reference values for tests/trainer/test_loss_optimizer.cpp and
test_metrics.cpp, computed with PyTorch.

Inputs come from closed-form formulas, so the C++ test rebuilds the same
tensors. Prints `name v1 v2 ...` lines with full double precision.
"""
import math

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def det(shape, offset, scale=1.0):
    n = math.prod(shape)
    return (scale * torch.sin(0.37 * torch.arange(n, dtype=torch.float64) + offset)).reshape(shape)


def emit(name, t):
    flat = t.reshape(-1).tolist() if torch.is_tensor(t) else [t]
    print(name, " ".join(repr(float(v)) for v in flat))


def masks():
    m = (torch.arange(2 * 4 * 4) * 7 % 3).reshape(2, 4, 4)
    m[0, 0, :2] = 255
    return m


def dice_loss(logits, m, ignore=255):
    valid = (m != ignore).unsqueeze(1).double()
    onehot = F.one_hot(m.masked_fill(m == ignore, 0), logits.shape[1]).permute(0, 3, 1, 2).double() * valid
    p = torch.softmax(logits, 1) * valid
    inter = (p * onehot).sum((0, 2, 3))
    card = p.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (card + 1)).mean()


for tag, dice_weight in (("seg_ce", 0.0), ("seg_ce_dice", 0.5)):
    logits = det((2, 3, 4, 4), 0.4, 2.0).requires_grad_()
    loss = F.cross_entropy(logits, masks(), ignore_index=255)
    if dice_weight:
        loss = loss + dice_weight * dice_loss(logits, masks())
    loss.backward()
    emit(f"{tag}.loss", loss.detach())
    emit(f"{tag}.grad", logits.grad)

# Two optimizer steps on two parameter groups with fixed gradients.
for tag in ("sgd", "adamw"):
    a = det((3, 2), 0.1).requires_grad_()
    b = det((4,), 0.9).requires_grad_()
    if tag == "sgd":
        opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9,
                              nesterov=True, weight_decay=0.01)
    else:
        opt = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": 0.05}], lr=0.01, betas=(0.8, 0.99),
                                eps=1e-6, weight_decay=0.1)
    for step in range(2):
        opt.zero_grad()
        a.grad = det((3, 2), 1.3 + step)
        b.grad = det((4,), 2.1 + step, 0.5)
        opt.step()
    emit(f"{tag}.a", a.detach())
    emit(f"{tag}.b", b.detach())


# Label-free model-selection signals (src/metrics/label_free_signals.h).
def snd(p, temperature=0.05):
    """Soft Neighborhood Density as the authors' code computes it."""
    f = F.normalize(p, dim=1)
    mat = f @ f.t() / temperature
    mat.masked_fill_(torch.eye(len(f), dtype=torch.bool), -1 / temperature)
    q = F.softmax(mat, 1)
    return -(q * torch.log(q + 1e-5)).sum(1).mean()


def pixels(p):
    """[tiles, K, H, W] -> [tiles, H*W, K] (raster order)."""
    return p.flatten(2).transpose(1, 2)


# All pixels sampled: 3 tiles of 4x4, 3 classes.
p = F.softmax(det((3, 3, 4, 4), 0.9, 3.0), 1)
emit("signals.entropy", -(p * p.log()).sum(1).mean() / math.log(3))
predicted = torch.bincount(p.argmax(1).reshape(-1), minlength=3).double() / p[:, 0].numel()
source = torch.tensor([5.0, 9.0, 3.0])
emit("signals.prior_gap", 0.5 * (predicted - source / source.sum()).abs().sum())
emit("signals.snd", snd(pixels(p).reshape(-1, 3)))
# 1100 tiles of 2x2: 4096 // 1100 = 3 pixels a tile, at (j * 4) // 3 = 0, 1, 2.
p = F.softmax(det((1100, 3, 2, 2), 0.2, 2.0), 1)
emit("signals.snd_spaced", snd(pixels(p)[:, [0, 1, 2]].reshape(-1, 3)))
# 5000 tiles of one pixel: every second tile (ceil(5000 / 4096) = 2).
p = F.softmax(det((5000, 3, 1, 1), 0.5, 2.0), 1)
emit("signals.snd_strided", snd(pixels(p)[::2].reshape(-1, 3)))
