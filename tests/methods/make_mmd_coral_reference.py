#!/usr/bin/env python3
"""Reference values for tests/methods/test_mmd_coral.cpp, computed with PyTorch.

Inputs come from the same closed-form det() as make_method_reference.py (no
RNG), so the C++ test rebuilds exactly the same feature maps. Prints one line
per quantity: `name v1 v2 ...` with full double precision.

MMD follows the Transfer-Learning-Library's GaussianKernel (bandwidth
alpha * mean of the detached squared distances) with the biased MMD^2
estimate; CORAL uses torch.cov (n-1 denominator).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import det, emit  # noqa: E402

torch.set_default_dtype(torch.float64)


def pool(x):
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def gaussian_kernel(x, alpha):
    # Transfer-Learning-Library, tllib/modules/kernels.py (track_running_stats=True).
    l2_distance_square = ((x.unsqueeze(0) - x.unsqueeze(1)) ** 2).sum(2)
    sigma_square = alpha * torch.mean(l2_distance_square.detach())
    return torch.exp(-l2_distance_square / (2 * sigma_square))


def mmd(zs, zt, alphas):
    ns = zs.shape[0]
    k = sum(gaussian_kernel(torch.cat([zs, zt]), a) for a in alphas)
    return k[:ns, :ns].mean() + k[ns:, ns:].mean() - 2 * k[:ns, ns:].mean()


def coral(zs, zt):
    d = zs.shape[1]
    cs, ct = torch.cov(zs.t()), torch.cov(zt.t())
    return ((cs - ct) ** 2).sum() / (4 * d * d)


def case(tag, loss_fn, source_shape, target_shape):
    s = det(source_shape, 0.1).requires_grad_()
    t = det(target_shape, 0.7, 1.5).requires_grad_()
    loss = loss_fn(pool(s), pool(t))
    loss.backward()
    emit(f"{tag}.loss", loss.detach())
    emit(f"{tag}.grad_source", s.grad)
    emit(f"{tag}.grad_target", t.grad)


# The default: the Transfer-Learning-Library's DAN kernels, alpha = 2^k, k = -3..1.
DAN_ALPHAS = [2.0 ** k for k in range(-3, 2)]
case("mmd_default", lambda s, t: mmd(s, t, DAN_ALPHAS), (3, 4, 3, 3), (3, 4, 3, 3))
case("mmd_alpha1.5", lambda s, t: mmd(s, t, [1.5]), (3, 4, 3, 3), (3, 4, 3, 3))
case("mmd_unequal", lambda s, t: mmd(s, t, DAN_ALPHAS), (2, 4, 3, 3), (5, 4, 3, 3))
case("coral_equal", coral, (3, 4, 3, 3), (3, 4, 3, 3))
case("coral_unequal", coral, (2, 4, 3, 3), (5, 4, 3, 3))
