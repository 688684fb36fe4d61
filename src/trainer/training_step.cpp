#include "trainer/training_step.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <utility>

namespace da::trainer {

TrainingStep::TrainingStep(models::SegmentationModel model, std::vector<setup::WeightedMethod>& methods,
                           SegmentationLoss loss, std::string bn_mode)
    : model_(std::move(model)), methods_(methods), loss_(loss), bn_mode_(std::move(bn_mode)) {
  for (const auto& wm : methods_) {
    uses_target_ = uses_target_ || wm.method->uses_target_batch();
    for (const auto& layer : wm.method->feature_layers()) {
      if (std::find(feature_layers_.begin(), feature_layers_.end(), layer) == feature_layers_.end()) {
        feature_layers_.push_back(layer);
      }
    }
  }
}

TrainingStep::DomainOutputs TrainingStep::run_model(const io::PairedBatch& batch, bool with_target) {
  DomainOutputs out;
  const at::Tensor& source = batch.source.image;
  if (!with_target) {
    model_->set_domain(models::Domain::kSource);
    auto result = model_->forward(source, feature_layers_);
    out.source_logits = result.logits;
    out.source_features = std::move(result.features);
    return out;
  }
  const at::Tensor& target = batch.target.image;
  if (bn_mode_ == "joint") {
    model_->set_domain(models::Domain::kSource);
    auto result = model_->forward(at::cat({source, target}), feature_layers_);
    const int64_t n = source.size(0);
    out.source_logits = result.logits.narrow(0, 0, n);
    out.target_logits = result.logits.narrow(0, n, target.size(0));
    for (const auto& [name, feature] : result.features) {
      out.source_features[name] = feature.narrow(0, 0, n);
      out.target_features[name] = feature.narrow(0, n, target.size(0));
    }
    return out;
  }
  // separate and dsbn: one forward per domain; dsbn switches the BatchNorm branch.
  model_->set_domain(models::Domain::kSource);
  auto source_result = model_->forward(source, feature_layers_);
  model_->set_domain(models::Domain::kTarget);
  auto target_result = model_->forward(target, feature_layers_);
  model_->set_domain(models::Domain::kSource);
  out.source_logits = source_result.logits;
  out.source_features = std::move(source_result.features);
  out.target_logits = target_result.logits;
  out.target_features = std::move(target_result.features);
  return out;
}

StepLosses TrainingStep::forward(const io::PairedBatch& batch, double lambda, std::int64_t global_step,
                                 bool da_active) {
  const bool with_target = da_active && uses_target_;
  methods::Batch source{batch.source.image, batch.source.mask};
  methods::Batch target{batch.target.image, batch.target.mask};
  io::PairedBatch inputs_batch = batch;  // tensors are shared, not copied
  if (da_active) {
    for (auto& wm : methods_) wm.method->transform_batches(source, target, global_step);
    inputs_batch.source.image = source.image;
    inputs_batch.source.mask = source.mask;
    inputs_batch.target.image = target.image;
    inputs_batch.target.mask = target.mask;
  }
  DomainOutputs out = run_model(inputs_batch, with_target);
  StepLosses result;
  const at::Tensor seg = loss_(out.source_logits, source.mask);
  at::Tensor da = at::zeros({}, seg.options());
  if (da_active) {
    // Methods that ignore the target still receive a well-formed (empty) target side.
    const methods::StepInputs inputs{source,
                                     target,
                                     out.source_logits,
                                     out.target_logits,
                                     out.source_features,
                                     out.target_features,
                                     lambda,
                                     global_step,
                                     loss_.ignore_index};
    for (auto& wm : methods_) {
      methods::DaLossOutput method_out = wm.method->compute_da_loss(inputs);
      da = da + wm.loss_weight * method_out.loss;
      const std::string prefix = "da/" + wm.method->name() + "/";
      for (const auto& [key, value] : method_out.logs) result.logs[prefix + key] = value;
    }
  }
  result.total = seg + da;
  result.logs["loss/seg"] = seg;
  result.logs["loss/da"] = da;
  result.logs["loss/total"] = result.total;
  result.logs["lambda"] = da_active ? lambda : 0.0;
  return result;
}

}  // namespace da::trainer
