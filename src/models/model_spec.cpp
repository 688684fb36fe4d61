#include "models/model_spec.h"

#include <stdexcept>

namespace da::models {
namespace {

const std::vector<int64_t> kTorchvisionPlanes = {64, 128, 256, 512};
const std::vector<int64_t> kSmpDecoderChannels = {256, 128, 64, 32, 16};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

const std::vector<std::string>& known_encoders() {
  static const std::vector<std::string> names = {"resnet18", "resnet34", "resnet50", "tiny"};
  return names;
}

UnetArchitecture unet_architecture(const ModelSpec& spec) {
  if (spec.in_channels < 1) {
    throw std::invalid_argument("model: in_channels must be >= 1, got " + std::to_string(spec.in_channels));
  }
  if (spec.classes < 1) {
    throw std::invalid_argument("model: classes must be >= 1, got " + std::to_string(spec.classes));
  }
  UnetArchitecture arch;
  arch.encoder.in_channels = spec.in_channels;
  arch.encoder.domain_specific_bn = spec.domain_specific_bn;
  arch.encoder.planes = kTorchvisionPlanes;
  arch.decoder_channels = kSmpDecoderChannels;
  if (spec.encoder == "resnet18") {
    arch.encoder.block = BlockKind::kBasic;
    arch.encoder.blocks_per_layer = {2, 2, 2, 2};
  } else if (spec.encoder == "resnet34") {
    arch.encoder.block = BlockKind::kBasic;
    arch.encoder.blocks_per_layer = {3, 4, 6, 3};
  } else if (spec.encoder == "resnet50") {
    arch.encoder.block = BlockKind::kBottleneck;
    arch.encoder.blocks_per_layer = {3, 4, 6, 3};
  } else if (spec.encoder == "tiny") {
    arch.encoder.block = BlockKind::kBasic;
    arch.encoder.blocks_per_layer = {1, 1, 1, 1};
    arch.encoder.planes = {8, 16, 32, 64};
    arch.decoder_channels = {32, 16, 8, 8, 8};
  } else {
    throw std::invalid_argument("model: unknown encoder '" + spec.encoder + "'; valid: " + join(known_encoders()));
  }
  return arch;
}

}  // namespace da::models
