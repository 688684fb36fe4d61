#!/usr/bin/env python3
"""Reference values for tests/models: the U-Net of segmentation_models_pytorch
(smp) rebuilt on torchvision's ResNet, since smp itself is not packaged.

The decoder reimplements smp's `UnetDecoder` (center=False, no attention):
blocks take (previous channels + skip channels), skips are layer3, layer2,
layer1 and relu(bn1(conv1(x))), the last block has no skip; each block is
x2 nearest upsampling, concatenation, then conv3x3(no bias)-BN-ReLU twice.
The head is smp's `SegmentationHead`: one 3x3 conv with bias.

"tiny" is the test model of src/models/model_spec.cpp: torchvision's
BasicBlock, one block per layer, planes 8,16,32,64, decoder 32,16,8,8,8.

  make_model_reference.py params > tests/models/model_reference.txt
      parameter names and shapes of every configuration the test checks
  make_model_reference.py weights --encoder tiny --out DIR
      DIR/unet.pth     torch.save(unet.state_dict()) with random weights and BN statistics
      DIR/encoder.pth  torch.save(resnet.state_dict()) of the same encoder as a torchvision ResNet (with fc)
      DIR/input.bin, DIR/logits.bin  float32 input [2,3,64,64] and eval-mode logits [2,classes,64,64]
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

SMP_DECODER_CHANNELS = (256, 128, 64, 32, 16)
TINY_DECODER_CHANNELS = (32, 16, 8, 8, 8)
# (encoder, in_channels, classes) checked by test_segmentation_model.cpp.
PARAM_CONFIGS = [("resnet18", 3, 6), ("resnet34", 3, 6), ("resnet50", 3, 6), ("resnet34", 4, 6)]


class TinyResNet(ResNet):
    """torchvision's ResNet built by its own _make_layer with narrower planes."""

    def __init__(self, planes=(8, 16, 32, 64), layers=(1, 1, 1, 1), num_classes=10):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = planes[0]
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, planes[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, planes[0], layers[0])
        self.layer2 = self._make_layer(BasicBlock, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, planes[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3] * BasicBlock.expansion, num_classes)


def make_resnet(encoder, in_channels):
    """A torchvision ResNet (with fc) whose first convolution takes `in_channels` bands."""
    if encoder == "tiny":
        resnet, decoder_channels = TinyResNet(), TINY_DECODER_CHANNELS
    else:
        resnet, decoder_channels = getattr(torchvision.models, encoder)(weights=None), SMP_DECODER_CHANNELS
    if in_channels != 3:  # smp's patch_first_conv: same layer, new input channels
        old = resnet.conv1
        resnet.conv1 = nn.Conv2d(in_channels, old.out_channels, kernel_size=7, stride=2, padding=3, bias=False)
    return resnet, decoder_channels


def stage_channels(resnet):
    """Channels of relu(bn1(conv1)), layer1, layer2, layer3, layer4."""
    last = lambda layer: layer[-1].bn3.num_features if hasattr(layer[-1], "bn3") else layer[-1].bn2.num_features
    return [resnet.bn1.num_features] + [last(getattr(resnet, f"layer{i}")) for i in range(1, 5)]


class Conv2dReLU(nn.Sequential):
    def __init__(self, in_channels, out_channels):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.conv1 = Conv2dReLU(in_channels + skip_channels, out_channels)
        self.attention1 = nn.Identity()
        self.conv2 = Conv2dReLU(out_channels, out_channels)
        self.attention2 = nn.Identity()

    def forward(self, x, skip=None):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            x = self.attention1(torch.cat([x, skip], dim=1))
        return self.attention2(self.conv2(self.conv1(x)))


class UnetDecoder(nn.Module):
    def __init__(self, encoder_channels, decoder_channels):
        super().__init__()
        channels = encoder_channels[::-1]  # layer4 first
        in_channels = [channels[0]] + list(decoder_channels[:-1])
        skip_channels = list(channels[1:]) + [0]
        self.center = nn.Identity()
        self.blocks = nn.ModuleList(
            [DecoderBlock(i, s, o) for i, s, o in zip(in_channels, skip_channels, decoder_channels)])

    def forward(self, *features):
        features = features[::-1]
        x = self.center(features[0])
        skips = features[1:]
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return x


class Unet(nn.Module):
    def __init__(self, resnet, decoder_channels, classes):
        super().__init__()
        channels = stage_channels(resnet)
        del resnet.fc, resnet.avgpool  # as smp's ResNetEncoder
        self.encoder = resnet
        self.decoder = UnetDecoder(channels, decoder_channels)
        self.segmentation_head = nn.Sequential(nn.Conv2d(decoder_channels[-1], classes, 3, padding=1), nn.Identity())

    def forward(self, x):
        e = self.encoder
        stem = e.relu(e.bn1(e.conv1(x)))
        l1 = e.layer1(e.maxpool(stem))
        l2 = e.layer2(l1)
        l3 = e.layer3(l2)
        l4 = e.layer4(l3)
        return self.segmentation_head(self.decoder(stem, l1, l2, l3, l4))


def print_params():
    print("# written by tests/models/make_model_reference.py params; regenerate, do not edit")
    for encoder, in_channels, classes in PARAM_CONFIGS:
        resnet, decoder_channels = make_resnet(encoder, in_channels)
        model = Unet(resnet, decoder_channels, classes)
        params = sorted(model.named_parameters())
        print(f"model {encoder} {in_channels} {classes}")
        print(f"count {sum(p.numel() for _, p in params)}")
        for name, p in params:
            print(f"param {name} {','.join(str(s) for s in p.shape)}")


def randomize(model, generator):
    """Random weights and BN statistics, so eval-mode outputs exercise every tensor."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=generator) + 0.5)
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(torch.randn(t.shape, generator=generator) * 0.1)
            elif t.dim() == 1:  # BN scale
                t.copy_(torch.rand(t.shape, generator=generator) + 0.5)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=generator) * (2.0 / fan_in) ** 0.5)


def write_weights(encoder, classes, out):
    generator = torch.Generator().manual_seed(0)
    resnet, decoder_channels = make_resnet(encoder, 3)
    randomize(resnet, generator)
    torch.save(resnet.state_dict(), os.path.join(out, "encoder.pth"))
    model = Unet(resnet, decoder_channels, classes)
    randomize(model.decoder, generator)
    randomize(model.segmentation_head, generator)
    torch.save(model.state_dict(), os.path.join(out, "unet.pth"))
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        logits = model(x)
    x.numpy().astype("<f4").tofile(os.path.join(out, "input.bin"))
    logits.numpy().astype("<f4").tofile(os.path.join(out, "logits.bin"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("params")
    weights = sub.add_parser("weights")
    weights.add_argument("--encoder", default="tiny", choices=["tiny", "resnet18", "resnet34", "resnet50"])
    weights.add_argument("--classes", type=int, default=3)
    weights.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "params":
        print_params()
    else:
        write_weights(args.encoder, args.classes, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
