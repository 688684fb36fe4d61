// The supervised segmentation loss on source batches: cross-entropy with
// ignore_index, plus an optional soft Dice term.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace da::trainer {

struct SegmentationLoss {
  std::int64_t ignore_index = 255;
  double dice_weight = 0.0;

  // logits [B,K,H,W], masks [B,H,W] int64. Cross-entropy is the mean over
  // pixels that are not ignore_index (PyTorch's F.cross_entropy); the Dice
  // term is 1 - mean over classes of (2 sum(p*y) + 1) / (sum(p) + sum(y) + 1)
  // over the same pixels (smoothing 1, as segmentation_models_pytorch).
  at::Tensor operator()(const at::Tensor& logits, const at::Tensor& masks) const;
};

}  // namespace da::trainer
