#include "setup/model_setup.h"

#include <spdlog/spdlog.h>

#include "config/errors.h"
#include "models/weights.h"

namespace da::setup {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

models::ModelSpec model_spec(const config::Config& config, const io::ArchiveInfo& source,
                             const io::ArchiveInfo& target) {
  if (source.channels() != target.channels()) {
    throw config::ConfigError("data: source archives have " + std::to_string(source.channels()) + " bands (" +
                              joined(source.bands) + ") but target archives have " +
                              std::to_string(target.channels()) + " (" + joined(target.bands) + ")");
  }
  const auto archive_classes = static_cast<std::int64_t>(source.classes.size());
  if (archive_classes == 0) {
    throw config::ConfigError("data.source.train: the source archives have no masks (no class list): "
                              "the source domain must be labelled");
  }
  const config::ModelOptions& m = config.model;
  if (m.in_channels != 0 && m.in_channels != source.channels()) {
    throw config::ConfigError("model.in_channels: " + std::to_string(m.in_channels) + " but the archives have " +
                              std::to_string(source.channels()) + " bands (" + joined(source.bands) +
                              "); use 0 to take it from the archives");
  }
  if (m.classes != 0 && m.classes != archive_classes) {
    throw config::ConfigError("model.classes: " + std::to_string(m.classes) + " but the source archives have " +
                              std::to_string(archive_classes) + " classes (" + joined(source.classes) +
                              "); use 0 to take it from the archives");
  }
  models::ModelSpec spec;
  spec.encoder = m.encoder;
  spec.in_channels = source.channels();
  spec.classes = archive_classes;
  spec.domain_specific_bn = m.bn_mode == "dsbn";
  return spec;
}

models::SegmentationModel build_model(const config::Config& config, const models::ModelSpec& spec) {
  models::SegmentationModel model = models::make_segmentation_model(spec);
  if (!config.model.weights.empty()) {
    models::LoadOptions options;
    options.strict = config.model.weights_strict;
    options.dsbn_target_from_source = true;
    const models::LoadReport report = models::load_weights(*model, config.model.weights, options);
    spdlog::info("model weights from {}: {} missing, {} unexpected keys", config.model.weights,
                 report.missing.size(), report.unexpected.size());
    for (const auto& key : report.missing) spdlog::warn("model.weights: missing {}", key);
    for (const auto& key : report.unexpected) spdlog::warn("model.weights: unexpected {}", key);
  }
  return model;
}

}  // namespace da::setup
