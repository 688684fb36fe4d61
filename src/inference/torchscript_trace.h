// A segmentation model as a TorchScript module that PyTorch's torch.jit.load
// runs: forward(x: float32 [B, C, H, W], normalised) -> logits [B, K, H, W].
//
// C++ frontend modules cannot be scripted, so the model's forward is traced:
// the TorchScript module mirrors the model's module tree (the same parameter
// and buffer tensors under the same names, e.g. encoder.conv1.weight), so the
// traced graph reads the weights as attributes rather than baking them in as
// constants, and Python sees the usual state_dict. What the trace fixes: eval
// mode (BN running statistics), the BN branch of `domain` for a DSBN model, and
// the ops of the forward; H and W stay free (any multiple of 32), as does B.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <cstdint>

#include "models/segmentation_model.h"

namespace da::inference {

// Traces `model` (put in eval mode with `domain` selected) on an example input
// of [1, in_channels, tile, tile]; `tile` must be a positive multiple of 32
// (std::invalid_argument otherwise).
torch::jit::Module trace_segmentation_model(models::SegmentationModelImpl& model, models::Domain domain,
                                            std::int64_t tile);

}  // namespace da::inference
