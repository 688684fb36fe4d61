#include "inference/checkpoint_model.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/cuda.h>

#include <stdexcept>

#include "config/errors.h"
#include "config/loader.h"
#include "dist/bootstrap.h"
#include "dist/local_device.h"
#include "models/weights.h"
#include "setup/checkpoint.h"
#include "setup/loader_setup.h"

namespace da::inference {
namespace {

constexpr const char* kFirstConv = "encoder.conv1.weight";
constexpr const char* kHead = "segmentation_head.0.weight";

std::int64_t state_dim(const models::StateDict& state, const char* key, std::int64_t dim, const std::string& path) {
  const auto it = state.find(key);
  if (it == state.end() || it->second.dim() <= dim) {
    throw std::runtime_error("checkpoint " + path + ": the model has no '" + key +
                             "' of the expected shape (not a U-Net segmentation checkpoint?)");
  }
  return it->second.size(dim);
}

std::string plural(std::int64_t n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

CheckpointModel load(const std::string& path, c10::Device* forced_device) {
  CheckpointModel m;
  m.path = path;
  const models::StateDict state = setup::read_checkpoint_model(path);
  const std::string yaml = setup::read_checkpoint_config(path);
  try {
    m.config = config::parse_config(yaml, "checkpoint " + path + " config");
  } catch (const config::ConfigError& e) {
    throw std::runtime_error(std::string("checkpoint ") + path + ": its configuration does not load: " + e.what());
  }
  const config::ModelOptions& options = m.config.model;
  m.spec.encoder = options.encoder;
  m.spec.in_channels = state_dim(state, kFirstConv, 1, path);
  m.spec.classes = state_dim(state, kHead, 0, path);
  m.spec.domain_specific_bn = options.bn_mode == "dsbn";
  if (options.in_channels > 0 && options.in_channels != m.spec.in_channels) {
    throw std::runtime_error("checkpoint " + path + ": model.in_channels is " + std::to_string(options.in_channels) +
                             " but the weights take " + plural(m.spec.in_channels, "band"));
  }
  if (options.classes > 0 && options.classes != m.spec.classes) {
    throw std::runtime_error("checkpoint " + path + ": model.classes is " + std::to_string(options.classes) +
                             " but the weights give " + plural(m.spec.classes, "class"));
  }
  m.model = models::make_segmentation_model(m.spec);
  try {
    models::load_state_dict(*m.model, state, models::LoadOptions{});
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint " + path + ": the weights do not fit model unet/" + m.spec.encoder +
                             (m.spec.domain_specific_bn ? " with domain-specific BN" : "") + ": " + e.what());
  }
  if (forced_device != nullptr) {
    m.device = *forced_device;
  } else if (m.config.run.device != "cpu" && torch::cuda::is_available()) {
    // The rank's own GPU, as in training (never every rank on GPU 0).
    const int index = dist::local_device_index(dist::world(), static_cast<int>(torch::cuda::device_count()));
    m.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  m.model->to(m.device);
  m.model->eval();
  return m;
}

}  // namespace

CheckpointModel load_checkpoint_model(const std::string& path) { return load(path, nullptr); }

CheckpointModel load_checkpoint_model(const std::string& path, c10::Device device) { return load(path, &device); }

void check_archive(const CheckpointModel& model, const io::ArchiveSet& archives, const std::string& archive_name,
                   bool need_classes) {
  const io::ArchiveInfo& info = archives.info();
  if (info.channels() != model.spec.in_channels) {
    throw std::runtime_error(archive_name + ": has " + plural(info.channels(), "band") + " but the model of " +
                             model.path + " expects " + plural(model.spec.in_channels, "band"));
  }
  if (!need_classes) return;
  if (!info.has_masks) {
    throw std::runtime_error(archive_name + ": has no /masks; evaluate needs a labelled archive");
  }
  const auto classes = static_cast<std::int64_t>(info.classes.size());
  if (classes != model.spec.classes) {
    throw std::runtime_error(archive_name + ": has " + plural(classes, "class") + " but the model of " + model.path +
                             " predicts " + plural(model.spec.classes, "class"));
  }
}

std::vector<std::string> class_names(const CheckpointModel& model, const io::ArchiveSet& input) {
  const auto k = static_cast<std::size_t>(model.spec.classes);
  const std::vector<std::string>& trained_on = model.config.data.source.train;
  if (!trained_on.empty()) {
    try {
      const io::ArchiveSet source(trained_on);
      if (source.info().classes.size() == k) return source.info().classes;
    } catch (const std::exception& e) {
      spdlog::debug("class names: the checkpoint's source archives cannot be read ({})", e.what());
    }
  }
  if (input.info().classes.size() == k) return input.info().classes;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < k; ++i) names.push_back("class_" + std::to_string(i));
  return names;
}

io::LoaderOptions inference_loader_options(const config::Config& config, std::int64_t batch_size, bool load_masks) {
  io::LoaderOptions o =
      setup::loader_options(config.data, config.run.seed, setup::LoaderRole::kValidation, load_masks, 0, 1);
  if (batch_size > 0) o.batch_size = batch_size;
  o.skip_non_finite = false;
  return o;
}

std::int64_t for_each_prediction(CheckpointModel& model, models::Domain domain, io::TileLoader& loader,
                                 const PredictionSink& fn) {
  torch::NoGradGuard no_grad;
  model.model->eval();
  model.model->set_domain(domain);
  loader.start_epoch(0);
  std::int64_t next = 0;  // the next tile expected, in order
  while (auto batch = loader.next()) {
    std::vector<std::int64_t> rows;
    for (std::size_t i = 0; i < batch->indices.size(); ++i) {
      const std::int64_t tile = batch->indices[i];
      if (tile == next) {
        rows.push_back(static_cast<std::int64_t>(i));
        ++next;
      } else if (tile > next) {
        throw std::runtime_error("prediction: tile " + std::to_string(tile) + " arrived before tile " +
                                 std::to_string(next));
      }  // else: padding from the start of the list
    }
    if (rows.empty()) continue;
    const at::Tensor index = at::tensor(rows, at::kLong);
    const at::Tensor image = batch->image.index_select(0, index).to(model.device);
    const at::Tensor logits = model.model->forward(image).logits.to(at::kCPU, at::kFloat).contiguous();
    fn(*batch, rows, logits);
  }
  if (next != loader.num_tiles()) {
    throw std::runtime_error("prediction: " + std::to_string(next) + " of " + std::to_string(loader.num_tiles()) +
                             " tiles were predicted");
  }
  return next;
}

std::string archive_list(const std::vector<std::string>& paths) {
  std::string s;
  for (const auto& p : paths) s += (s.empty() ? "" : ", ") + p;
  return s;
}

models::Domain parse_domain(const std::string& name) {
  if (name == "source") return models::Domain::kSource;
  if (name == "target") return models::Domain::kTarget;
  throw std::invalid_argument("unknown domain '" + name + "' (source or target)");
}

}  // namespace da::inference
