#include "inference/export.h"

#include <filesystem>
#include <sstream>
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

template <class T, class Format>
std::string json_list(const std::vector<T>& values, Format format) {
  std::string s = "[";
  for (std::size_t i = 0; i < values.size(); ++i) s += (i ? ", " : "") + format(values[i]);
  return s + "]";
}

std::string json_numbers(const std::vector<float>& values) {
  return json_list(values, [](float v) { return log::json_number(v); });
}

std::string json_strings(const std::vector<std::string>& values) {
  return json_list(values, [](const std::string& v) { return log::json_string(v); });
}

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

  std::ostringstream json;
  json << "{\n  \"format\": \"da_dist-torchscript\",\n  \"version\": 1,\n  \"model\": "
       << log::json_string(fs::path(result.model_path).filename().string())
       << ",\n  \"checkpoint\": " << log::json_string(options.checkpoint)
       << ",\n  \"encoder\": " << log::json_string(model.spec.encoder)
       << ",\n  \"domain\": " << log::json_string(models::domain_name(options.domain))
       << ",\n  \"bands\": {\"count\": " << model.spec.in_channels << ", \"names\": " << json_strings(training.info.bands)
       << "},\n  \"classes\": {\"count\": " << model.spec.classes << ", \"names\": " << json_strings(classes)
       << "},\n  \"pixel_type\": " << log::json_string(io::pixel_type_name(training.info.pixel_type))
       << ",\n  \"normalization\": {\"mean\": " << json_numbers(training.normalization.mean)
       << ", \"std\": " << json_numbers(training.normalization.std) << "},\n  \"tile_size\": " << result.tile
       << ",\n  \"size_multiple\": " << kSizeMultiple
       << ",\n  \"input\": \"float32 NCHW normalised\",\n  \"output\": \"logits NCHW\"\n}\n";
  io::write_file_atomically(result.json_path, json.str());
  return result;
}

}  // namespace da::inference
