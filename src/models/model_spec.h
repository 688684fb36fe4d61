// What a user chooses for a segmentation model (ModelSpec) and the
// architecture each encoder name stands for.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/resnet_encoder.h"
#include "models/sync_batch_norm.h"

namespace da::models {

struct ModelSpec {
  std::string encoder = "resnet34";  // one of known_encoders()
  int64_t in_channels = 3;           // input bands
  int64_t classes = 2;               // output channels of the logits
  // Domain-specific BatchNorm: every BN layer has a source and a target branch (see segmentation_model.h).
  bool domain_specific_bn = false;
  // When set, BatchNorm training statistics are summed over the ranks through it (dist.sync_bn).
  std::shared_ptr<ranks::RankSum> batch_stats_sync;
};

// Encoder options and decoder widths behind an encoder name.
struct UnetArchitecture {
  ResNetEncoderOptions encoder;
  std::vector<int64_t> decoder_channels;  // one entry per decoder block, first block first
};

// "resnet18", "resnet34", "resnet50" (torchvision ResNets, decoder 256,128,64,32,16, as smp's Unet) and
// "tiny" (for tests: BasicBlock, one block per layer, planes 8,16,32,64, decoder 32,16,8,8,8).
const std::vector<std::string>& known_encoders();

// The architecture for `spec`; throws std::invalid_argument for an unknown encoder (listing the known
// ones) or for in_channels / classes below 1.
UnetArchitecture unet_architecture(const ModelSpec& spec);

}  // namespace da::models
