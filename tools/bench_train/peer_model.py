"""The PyTorch side of the training benchmarks: da_dist's U-Net + DANN in plain PyTorch.

Shared by ddp_dann_peer.py (weak scaling) and dataloader_peer.py (end to end).
The same network as da_dist with conf/demo.yaml's method settings: a
torchvision ResNet-18/34 encoder and a U-Net decoder like
segmentation_models_pytorch's (decoder channels 256,128,64,32,16; per block
nearest x2 upsampling, skip concatenation, conv3x3-BN-ReLU x2; 3x3 head), with
smp's (and so da_dist's) parameter names: encoder.*, decoder.blocks.*,
segmentation_head.0.*; DANN with a gradient reversal autograd Function on
global-average-pooled encoder.layer4 features -> fc1 Linear(512,hidden)-ReLU-fc2
Linear(hidden,1), BCE with logits (source 0, target 1); source and target
forwarded jointly (bn_mode joint); cross-entropy (ignore_index 255) on the
source half.
"""
import math

import torch
import torch.jit._pickle  # restore_type_tag, allowed when loading C++-saved dicts
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.neg() * ctx.lam, None


class Conv2dReLU(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.conv1 = Conv2dReLU(cin + cskip, cout)
        self.conv2 = Conv2dReLU(cout, cout)

    def forward(self, x, skip=None):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], 1)
        return self.conv2(self.conv1(x))


class UnetDecoder(nn.Module):
    def __init__(self, encoder_channels=(64, 64, 128, 256, 512), decoder_channels=(256, 128, 64, 32, 16)):
        super().__init__()
        channels = list(encoder_channels)[::-1]  # layer4 first
        ins = [channels[0]] + list(decoder_channels[:-1])
        skips = channels[1:] + [0]
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, decoder_channels))

    def forward(self, stem, l1, l2, l3, l4):
        x = l4
        for block, skip in zip(self.blocks, [l3, l2, l1, stem, None]):
            x = block(x, skip)
        return x


class Unet(nn.Module):
    """smp.Unet('resnet18'/'resnet34') layout: returns (logits, layer4 features)."""

    def __init__(self, encoder="resnet18", in_channels=3, classes=4):
        super().__init__()
        if encoder not in ("resnet18", "resnet34"):
            raise ValueError(f"encoder {encoder!r}: expected resnet18 or resnet34")
        r = getattr(torchvision.models, encoder)(weights=None)
        if in_channels != 3:
            r.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        del r.fc, r.avgpool  # as smp's ResNetEncoder
        self.encoder = r
        self.decoder = UnetDecoder()
        self.segmentation_head = nn.Sequential(nn.Conv2d(16, classes, 3, padding=1))

    def forward(self, x):
        e = self.encoder
        stem = e.relu(e.bn1(e.conv1(x)))      # /2, 64
        l1 = e.layer1(e.maxpool(stem))        # /4, 64
        l2 = e.layer2(l1)                     # /8, 128
        l3 = e.layer3(l2)                     # /16, 256
        l4 = e.layer4(l3)                     # /32, 512
        return self.segmentation_head(self.decoder(stem, l1, l2, l3, l4)), l4


class Discriminator(nn.Module):
    def __init__(self, cin=512, hidden=256):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(cin, hidden), nn.Linear(hidden, 1)

    def forward(self, f):
        return self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(f, 1).flatten(1)))).reshape(-1)


class DannNet(nn.Module):
    """One module so that DDP wraps segmentation net and discriminator together."""

    def __init__(self, classes, hidden, encoder="resnet18", in_channels=3):
        super().__init__()
        self.model = Unet(encoder, in_channels, classes)
        self.disc = Discriminator(512, hidden)

    def forward(self, source, target, lam):
        n = source.shape[0]
        logits, feats = self.model(torch.cat([source, target]))  # bn_mode joint
        ds = self.disc(GradReverse.apply(feats[:n], lam))
        dt = self.disc(GradReverse.apply(feats[n:], lam))
        return logits[:n], ds, dt


def dann_losses(seg_logits, masks, ds, dt):
    """(segmentation loss, domain loss): CE on the source, BCE on source 0 / target 1."""
    seg = F.cross_entropy(seg_logits, masks, ignore_index=255)
    dom = F.binary_cross_entropy_with_logits(torch.cat([ds, dt]), torch.cat([torch.zeros_like(ds), torch.ones_like(dt)]))
    return seg, dom


def dann_lambda(progress, gamma=10.0, value=1.0):
    """da_dist's lambda_schedule dann: value * (2 / (1 + exp(-gamma p)) - 1)."""
    return value * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


def poly_factor(step, total, power=0.9):
    """da_dist's scheduler poly (no warm-up, min_lr 0): (1 - step / total) ** power."""
    return (1.0 - min(max(step / max(total, 1), 0.0), 1.0)) ** power


def load_da_dist_state(net, path):
    """Loads da_bench_step --dump-state's dict: model.<name> into net.model, method0.<name> into net.disc."""
    # C++'s torch::save tags the dict's type with restore_type_tag: the one
    # global beyond tensors that weights-only loading must allow.
    with torch.serialization.safe_globals([torch.jit._pickle.restore_type_tag]):
        state = torch.load(path, map_location="cpu", weights_only=True)
    model = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    disc = {k[len("method0."):]: v for k, v in state.items() if k.startswith("method0.")}
    for module, part, prefix in ((net.model, model, "model."), (net.disc, disc, "method0.")):
        missing, unexpected = module.load_state_dict(part, strict=False)
        # libtorch's BatchNorm may not carry num_batches_tracked; nothing else may differ.
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ValueError(f"{path}: {prefix}* does not match the peer's network: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
    return len(model) + len(disc)
