// A trained model ready for inference: weights and configuration from a
// training checkpoint, bands and classes from the weights themselves, checked
// against the archives it is applied to.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/options.h"
#include "io/archive_set.h"
#include "io/loader_options.h"
#include "io/tile_loader.h"
#include "models/segmentation_model.h"

namespace da::inference {

struct CheckpointModel {
  std::string path;
  config::Config config;                     // the configuration the checkpoint was trained with
  models::ModelSpec spec;                    // encoder, bands, classes, DSBN: from the weights and the configuration
  models::SegmentationModel model{nullptr};  // eval mode, on `device`
  c10::Device device = c10::Device(c10::kCPU);
};

// Reads the model and configuration of a training checkpoint (setup/checkpoint.h)
// and loads the weights strictly. in_channels and classes come from the weights
// (encoder.conv1.weight, segmentation_head.0.weight) and must agree with
// model.in_channels / model.classes where the configuration sets them;
// bn_mode dsbn means domain-specific BN. The device is CUDA when available
// and run.device is not cpu. Throws std::runtime_error naming the file.
CheckpointModel load_checkpoint_model(const std::string& path);

// The model on the CPU regardless of the configuration (tests, CPU-only use).
CheckpointModel load_checkpoint_model(const std::string& path, c10::Device device);

// Throws std::runtime_error naming the archive(s), what the model expects and
// what the archive holds, when the bands differ in number, or (with
// `need_classes`, for evaluation) when the archive has no masks or a different
// number of classes.
void check_archive(const CheckpointModel& model, const io::ArchiveSet& archives, const std::string& archive_name,
                   bool need_classes);

// Class names for predictions: the checkpoint's training (source) archives'
// classes when they can be opened and their count matches, else the input
// archive's when it is labelled with the same count, else class_0..class_{K-1}.
std::vector<std::string> class_names(const CheckpointModel& model, const io::ArchiveSet& input);

// The loader options validation uses (setup::loader_options, in order, no
// augmentation, the configuration's normalisation), for one process, with
// `batch_size` when > 0. NaN/Inf in float tiles is an error (every tile must
// be predicted).
io::LoaderOptions inference_loader_options(const config::Config& config, std::int64_t batch_size, bool load_masks);

// Runs the model (eval mode, no gradients, BN branch `domain`) over one
// epoch of `loader` (built with inference_loader_options) and calls `fn` with
// each batch, the rows of it that are new tiles in order (the padding that
// completes the last batch is left out) and their logits [rows, K, H, W]
// float32 on the CPU. Returns the number of tiles seen; throws
// std::runtime_error unless that is every tile of the loader exactly once.
using PredictionSink =
    std::function<void(const io::Batch& batch, const std::vector<std::int64_t>& rows, const at::Tensor& logits)>;
std::int64_t for_each_prediction(CheckpointModel& model, models::Domain domain, io::TileLoader& loader,
                                 const PredictionSink& fn);

// "a.h5" or "a.h5, b.h5" for messages.
std::string archive_list(const std::vector<std::string>& paths);

// "source" -> kSource, "target" -> kTarget; throws std::invalid_argument otherwise.
models::Domain parse_domain(const std::string& name);

}  // namespace da::inference
