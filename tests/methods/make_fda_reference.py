#!/usr/bin/env python3
"""Reference values for tests/methods/test_fda.cpp: the FDA amplitude swap as
the authors' low_freq_mutate_np does it (in torch.fft), and the target
indices drawn from the same CPU generator. Prints `name v1 v2 ...` lines."""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import det, emit  # noqa: E402


def low_freq_mutate(src, trg, beta):
    """FDA's low_freq_mutate_np on [B,C,H,W]: swap the centred low-frequency amplitude."""
    fft_src = torch.fft.fft2(src)
    fft_trg = torch.fft.fft2(trg)
    amp_src, pha_src = fft_src.abs(), fft_src.angle()
    amp_trg = fft_trg.abs()
    a_src = torch.fft.fftshift(amp_src, dim=(-2, -1))
    a_trg = torch.fft.fftshift(amp_trg, dim=(-2, -1))
    h, w = src.shape[-2:]
    b = int(math.floor(min(h, w) * beta))
    c_h, c_w = h // 2, w // 2
    a_src[..., c_h - b:c_h + b + 1, c_w - b:c_w + b + 1] = a_trg[..., c_h - b:c_h + b + 1, c_w - b:c_w + b + 1]
    a_src = torch.fft.ifftshift(a_src, dim=(-2, -1))
    return torch.real(torch.fft.ifft2(torch.polar(a_src, pha_src)))


src = det((2, 3, 8, 10), 0.2, 2.0) + 0.5
trg = det((2, 3, 8, 10), 1.3, 1.0) - 0.25
for tag, beta in (("fda_b0.25", 0.25), ("fda_b0.01", 0.01)):
    emit(f"{tag}.swap", low_freq_mutate(src, trg, beta))

seed, step = 7, 11
mixed = (seed * 0x9E3779B97F4A7C15 + step) % 2**64
generator = torch.Generator().manual_seed(mixed)
emit("fda.indices_7_11", torch.randint(3, (5,), generator=generator))
