// The domain-adaptation method interface: the contract of the Python tools
// our users come from (compute_da_loss, feature requirements, target-label
// requirement, lifecycle hooks, extra parameter groups, state) in C++.
//
// A method sees tensors only: batches, logits and named feature maps. It
// never sees the trainer, the loader or the communicator; batch-wide
// statistics that must not depend on the number of ranks are summed over the
// ranks through the RankSum interface (ranks/rank_sum.h).
#pragma once

#include <torch/nn/module.h>
#include <torch/serialize/archive.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "methods/log_value.h"
#include "ranks/rank_sum.h"

namespace da::methods {

// One domain's batch: image [B,C,H,W] float, mask [B,H,W] int64 (undefined
// when the domain is unlabelled or the method does not need it).
struct Batch {
  torch::Tensor image;
  torch::Tensor mask;
};

using FeatureMap = std::map<std::string, torch::Tensor>;

// Everything compute_da_loss may use for one step.
struct StepInputs {
  const Batch& source;
  const Batch& target;
  const torch::Tensor& source_logits;  // [B,K,H,W]
  const torch::Tensor& target_logits;  // [B,K,H,W]
  const FeatureMap& source_features;   // the layers of feature_layers(), or empty
  const FeatureMap& target_features;
  // The scheduled coefficient: what gradient reversal multiplies the
  // feature extractor's gradient by (see lambda_schedule.h).
  double lambda = 1.0;
  std::int64_t global_step = 0;
  std::int64_t ignore_index = 255;
};

struct DaLossOutput {
  torch::Tensor loss;                          // scalar, part of the graph
  // Logged under "da/<method>/". Log tensors (`loss.detach()`), not
  // `.item()`: the trainer reads them once per log interval (log_value.h).
  std::map<std::string, LogValue> logs;
  std::map<std::string, torch::Tensor> extra;  // not logged; for callbacks
};

// Extra optimizer parameter group (e.g. a discriminator with its own LR).
// Unset lr / weight_decay inherit the optimizer's.
struct ParamGroup {
  std::string name;
  std::vector<torch::Tensor> params;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

// What a method may ask of the segmentation model when it is built.
struct ModelInfo {
  std::int64_t classes = 0;
  std::vector<std::string> feature_layers;                    // domain_adaptation.feature_layers
  std::function<std::int64_t(const std::string&)> channels;  // channels of a feature tap
};

class Method {
 public:
  virtual ~Method() = default;

  // The registry name ("dann").
  virtual std::string name() const = 0;

  // Feature taps this method needs from both domains' forward passes.
  virtual std::vector<std::string> feature_layers() const { return {}; }
  bool requires_features() const { return !feature_layers().empty(); }
  // Whether compute_da_loss looks at the target batch at all; when no method
  // of a run does, the trainer skips the target forward (source-only runs
  // then train exactly like a plain supervised run, BatchNorm included).
  virtual bool uses_target_batch() const { return true; }
  // Semi-supervised methods need the target masks loaded.
  virtual bool requires_target_labels() const { return false; }

  // Input-level adaptation (e.g. FDA's amplitude swap): called in each
  // training step with DA active, before the forward, in the order the
  // methods are configured; may replace either domain's images (masks must
  // stay aligned with them). Validation and prediction never see it.
  virtual void transform_batches(Batch& /*source*/, Batch& /*target*/, std::int64_t /*global_step*/) {}

  // Target BatchNorm re-estimation (AdaBN, methods/adabn.h): a value asks the
  // trainer to recompute, before each end-of-epoch validation and after the last epoch,
  // the running statistics of the BatchNorm layers the target uses from the
  // target training tiles of all ranks (models/batch_norm_statistics.h); the
  // value is the most batches per rank to use, 0 for all. nullopt: no.
  virtual std::optional<std::int64_t> target_batch_norm_batches() const { return std::nullopt; }

  virtual DaLossOutput compute_da_loss(const StepInputs& step) = 0;
  // Names among compute_da_loss's logs worth a place in the one-line summary
  // the trainer prints after each epoch (e.g. a discriminator's accuracy,
  // which shows whether the adversarial game is balanced).
  virtual std::vector<std::string> summary_logs() const { return {}; }

  // Lifecycle hooks (default: nothing).
  virtual void on_fit_start() {}
  virtual void on_epoch_start(std::int64_t /*epoch*/) {}
  virtual void on_epoch_end(std::int64_t /*epoch*/) {}

  // Auxiliary networks (discriminators): their parameters take part in
  // gradient synchronisation, train/eval switching and checkpoints.
  // nullptr when the method has none.
  virtual std::shared_ptr<torch::nn::Module> module() { return nullptr; }
  virtual std::vector<ParamGroup> extra_parameter_groups() { return {}; }

  // State beyond module() parameters and buffers (e.g. moving averages).
  virtual void save_state(torch::serialize::OutputArchive& archive) const;
  virtual void load_state(torch::serialize::InputArchive& archive);

  // Sums over the ranks (ranks/rank_sum.h). The trainer attaches one
  // over its communicator right after creating the methods; a method that
  // sums batch-wide statistics over the ranks reaches it with collectives().
  // Never attached (unit tests, tools): a world of one rank.
  void attach_collectives(std::shared_ptr<ranks::RankSum> collectives) { collectives_ = std::move(collectives); }

 protected:
  ranks::RankSum& collectives() const { return collectives_ ? *collectives_ : *ranks::single_rank(); }

 private:
  std::shared_ptr<ranks::RankSum> collectives_;
};

}  // namespace da::methods
