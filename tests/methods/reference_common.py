"""Shared pieces of the method reference generators: the closed-form inputs
and weights that the C++ tests rebuild (tests/support/python_reference.h),
gradient reversal, and the output format (`name v1 v2 ...`)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def det(shape, offset, scale=1.0):
    n = math.prod(shape)
    return (scale * torch.sin(0.37 * torch.arange(n, dtype=torch.float64) + offset)).reshape(shape)


def set_params(module):
    with torch.no_grad():
        for k, (_, p) in enumerate(module.named_parameters()):
            p.copy_((0.1 * torch.cos(0.5 * torch.arange(p.numel(), dtype=torch.float64) + k)).reshape(p.shape))


class Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None


def emit(name, values):
    flat = values.reshape(-1).tolist() if torch.is_tensor(values) else [values]
    print(name, " ".join(repr(float(v)) for v in flat))


# The domain discriminators of methods/domain_discriminator.h.
class Pooled(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.fc1 = nn.Linear(c, h)
        self.fc2 = nn.Linear(h, 1)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc2(torch.relu(self.fc1(x))).reshape(-1)


class Pixel(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.conv1 = nn.Conv2d(c, h, 1)
        self.conv2 = nn.Conv2d(h, h, 1)
        self.conv3 = nn.Conv2d(h, 1, 1)

    def forward(self, x):
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        return self.conv3(x).reshape(-1)
