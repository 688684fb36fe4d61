#include "methods/dann.h"

#include <torch/nn/functional/loss.h>

#include "methods/gradient_reversal.h"
#include "methods/registry.h"

namespace da::methods {

torch::Tensor domain_loss(const torch::Tensor& source_logits, const torch::Tensor& target_logits, double* accuracy) {
  const auto logits = torch::cat({source_logits, target_logits});
  const auto labels = torch::cat({torch::zeros_like(source_logits), torch::ones_like(target_logits)});
  const auto loss = torch::nn::functional::binary_cross_entropy_with_logits(logits, labels);
  if (accuracy != nullptr) {
    torch::NoGradGuard no_grad;
    *accuracy = (logits.gt(0).to(labels.dtype()) == labels).to(torch::kFloat).mean().item<double>();
  }
  return loss;
}

Dann::Dann(Params& params, const ModelInfo& model) {
  const std::string default_layer = model.feature_layers.empty() ? "encoder" : model.feature_layers.front();
  layer_ = params.text("layer", default_layer);
  const bool per_pixel = params.choice("discriminator", "pooled", {"pooled", "pixel"}) == "pixel";
  const std::int64_t hidden = params.integer("hidden_size", 1024, 1);
  std::int64_t in_channels = params.integer("in_channels", 0, 0);
  if (in_channels == 0) {
    if (!model.channels) throw MethodError(params.path() + ".in_channels: not given and the model cannot tell");
    in_channels = model.channels(layer_);
  }
  lr_ = params.optional_number("discriminator_lr", 0.0);
  weight_decay_ = params.optional_number("discriminator_weight_decay", 0.0);
  lambda_in_loss_ = params.flag("lambda_in_loss", false);
  discriminator_ = DomainDiscriminator(in_channels, hidden, per_pixel);
}

DaLossOutput Dann::compute_da_loss(const StepInputs& step) {
  const auto& source = step.source_features.at(layer_);
  const auto& target = step.target_features.at(layer_);
  const auto source_logits = discriminator_(gradient_reversal(source, step.lambda));
  const auto target_logits = discriminator_(gradient_reversal(target, step.lambda));
  double accuracy = 0.0;
  const auto loss = domain_loss(source_logits, target_logits, &accuracy);
  DaLossOutput out;
  out.loss = lambda_in_loss_ ? loss * step.lambda : loss;
  out.logs = {{"domain_loss", loss.item<double>()}, {"domain_acc", accuracy}, {"lambda", step.lambda}};
  return out;
}

std::vector<ParamGroup> Dann::extra_parameter_groups() {
  return {ParamGroup{"dann.discriminator", discriminator_->parameters(), lr_, weight_decay_}};
}

DA_REGISTER_METHOD("dann", Dann);

}  // namespace da::methods
