#include "inference/export.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <stdexcept>
#include <vector>

#include "inference/checkpoint_model.h"
#include "inference/torchscript_trace.h"
#include "inference/training_input.h"
#include "io/archive_set.h"
#include "io/atomic_file.h"
#include "io/pixel_type.h"
#include "log/json_text.h"

namespace da::inference {
namespace fs = std::filesystem;
namespace {

constexpr std::int64_t kSizeMultiple = 32;  // the encoder's output stride

}  // namespace

std::string export_json_path(const std::string& model_path) {
  return fs::path(model_path).replace_extension(".json").string();
}

ExportResult export_model(const ExportOptions& options) {
  CheckpointModel model = load_checkpoint_model(options.checkpoint, c10::Device(c10::kCPU));
  const TrainingInput training = [&] {
    try {
      return training_input(model, options.domain);
    } catch (const std::exception& e) {
      throw std::runtime_error("checkpoint " + options.checkpoint + ": " + e.what());
    }
  }();
  const io::ArchiveSet archives(training.archives);
  check_archive(model, archives, archive_list(training.archives), /*need_classes=*/false);
  const std::vector<std::string> classes = class_names(model, archives);

  ExportResult result;
  const std::int64_t crop = model.config.data.augmentation.crop_size;
  result.tile = options.tile > 0 ? options.tile : crop > 0 ? crop : training.info.height;
  if (result.tile % kSizeMultiple != 0) {
    throw std::runtime_error("export: the tile size " + std::to_string(result.tile) +
                             (options.tile > 0 ? "" : " of the training data") + " is not a multiple of " +
                             std::to_string(kSizeMultiple) + "; give --tile N");
  }
  const bool to_directory = fs::path(options.output).extension() != ".pt";
  result.model_path = to_directory ? (fs::path(options.output) / "model.pt").string() : options.output;
  result.json_path = export_json_path(result.model_path);
  if (const fs::path parent = fs::path(result.model_path).parent_path(); !parent.empty()) {
    std::error_code error;
    fs::create_directories(parent, error);
    if (error) throw std::runtime_error(parent.string() + ": cannot create the directory: " + error.message());
  }

  torch::jit::Module module = trace_segmentation_model(*model.model, options.domain, result.tile);
  io::write_atomically_with(result.model_path, [&](const std::string& temporary) { module.save(temporary); });

  // Floats as doubles: nlohmann writes the shortest text that reads back as the same double.
  const auto numbers = [](const std::vector<float>& values) { return std::vector<double>(values.begin(), values.end()); };
  const std::string json = log::json_document(
      {{"format", "da_dist-torchscript"},
       {"version", 1},
       {"model", fs::path(result.model_path).filename().string()},
       {"checkpoint", options.checkpoint},
       {"encoder", model.spec.encoder},
       {"domain", models::domain_name(options.domain)},
       {"bands", {{"count", model.spec.in_channels}, {"names", training.info.bands}}},
       {"classes", {{"count", model.spec.classes}, {"names", classes}}},
       {"pixel_type", io::pixel_type_name(training.info.pixel_type)},
       {"normalization", {{"mean", numbers(training.normalization.mean)}, {"std", numbers(training.normalization.std)}}},
       {"tile_size", result.tile},
       {"size_multiple", kSizeMultiple},
       {"input", "float32 NCHW normalised"},
       {"output", "logits NCHW"}});
  io::write_file_atomically(result.json_path, json);
  return result;
}

}  // namespace da::inference
