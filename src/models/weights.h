// Loading PyTorch weights into a libtorch module by parameter name.
//
// Files: libtorch 1.13's unpickler cannot read the OrderedDict that
// `torch.save(model.state_dict(), path)` writes (it carries `_metadata`), but
// reads a plain dict of tensors. tools/convert_state_dict.py re-saves a
// state_dict (or a checkpoint holding one) as such a dict:
//   python3 tools/convert_state_dict.py model.pth model.dict.pt
#pragma once

#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

namespace da::models {

using StateDict = std::map<std::string, at::Tensor>;

struct LoadOptions {
  // Strict: any missing or unexpected key is an error (listing them all) and nothing is copied.
  // Not strict: matching entries are copied, the others are reported in LoadReport.
  // A shape mismatch is an error in both modes (as in PyTorch).
  bool strict = true;
  // Prepended to every key of the file; only the model's entries under this prefix are expected
  // (e.g. "encoder." to load a torchvision ResNet into the U-Net's encoder).
  std::string prefix;
  // File keys starting with one of these are skipped (e.g. "fc." of a torchvision ResNet).
  std::vector<std::string> ignored_prefixes;
  // Warm start of a domain-specific-BN model (see segmentation_model.h) from a plain checkpoint: the target
  // branch entries of every DomainBatchNorm2d ("<bn>.target.weight", ".bias", ".running_mean",
  // ".running_var", ".num_batches_tracked") that the file lacks are not missing (even when strict) but are
  // filled, after loading, from the same BN's source entry ("<bn>.weight", ...); they are listed in
  // LoadReport::target_from_source. Target entries the file has are loaded as usual. No effect on a model
  // without DomainBatchNorm2d layers. Off: a DSBN model needs its ".target." entries like any other.
  bool dsbn_target_from_source = false;
};

// Options for loading a torchvision ResNet state_dict into the encoder of a SegmentationModel.
LoadOptions torchvision_encoder_options();

struct LoadReport {
  std::vector<std::string> missing;     // model keys with no entry in the file (sorted)
  std::vector<std::string> unexpected;  // file keys (prefixed) the model does not have (sorted)
  // With dsbn_target_from_source: target-branch keys filled from their source branch (sorted).
  std::vector<std::string> target_from_source;
};

// Reads a dict of tensors saved by Python's torch.save (see the note above). Throws std::runtime_error
// naming the file and, for a raw state_dict, pointing at tools/convert_state_dict.py.
StateDict read_state_dict(const std::string& path);

// Copies `state` into the parameters and buffers of `model` by name.
LoadReport load_state_dict(torch::nn::Module& model, const StateDict& state, const LoadOptions& options = {});

// read_state_dict + load_state_dict; errors name the file.
LoadReport load_weights(torch::nn::Module& model, const std::string& path, const LoadOptions& options = {});

}  // namespace da::models
