// `da_dist export`: a checkpoint's segmentation model (without the
// discriminator or any other method network) as TorchScript that PyTorch's
// torch.jit.load runs (torchscript_trace.h), plus a JSON description of what
// it expects: band and class names, the pixel normalisation, the tile size.
//
// JSON (next to the model, same stem, ".json"):
//   {"format": "da_dist-torchscript", "version": 1, "model": "<file name of the .pt>",
//    "checkpoint": "...", "encoder": "resnet18", "domain": "target",
//    "bands": {"count": C, "names": [...]}, "classes": {"count": K, "names": [...]},
//    "pixel_type": "uint8", "normalization": {"mean": [C], "std": [C]},
//    "tile_size": N, "size_multiple": 32,
//    "input": "float32 NCHW normalised", "output": "logits NCHW"}
// where the model's input is (pixel - mean[c]) / std[c] for band c, as the
// domain's training data was normalised (training_input.h), and H and W are
// multiples of size_multiple.
#pragma once

#include <cstdint>
#include <string>

#include "models/domain_batch_norm.h"

namespace da::inference {

struct ExportOptions {
  std::string checkpoint;
  std::string output;                               // FILE.pt, or a directory for DIR/model.pt
  models::Domain domain = models::Domain::kTarget;  // DSBN branch and the training archives for normalisation
  std::int64_t tile = 0;                            // example size to trace with and tile_size (0: training tile)
};

struct ExportResult {
  std::string model_path;  // the .pt
  std::string json_path;
  std::int64_t tile = 0;
};

// "x/model.pt" -> "x/model.json".
std::string export_json_path(const std::string& model_path);

// Writes both files atomically (temporary name, then rename). Throws
// std::runtime_error naming the checkpoint, the training archives or the
// output that is the problem.
ExportResult export_model(const ExportOptions& options);

}  // namespace da::inference
