#include "methods/advent.h"

#include <torch/nn/functional/activation.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "methods/dann.h"
#include "methods/registry.h"

namespace da::methods {
namespace {

// While alive, the module's parameters take no gradient (requires_grad off);
// autograd records the forwards run meanwhile without them.
class FrozenParameters {
 public:
  explicit FrozenParameters(torch::nn::Module& module) : parameters_(module.parameters()) {
    for (auto& p : parameters_) p.requires_grad_(false);
  }
  ~FrozenParameters() {
    for (auto& p : parameters_) p.requires_grad_(true);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<torch::Tensor> parameters_;
};

}  // namespace

torch::Tensor self_information(const torch::Tensor& logits) {
  const auto log_p = torch::log_softmax(logits, 1);
  return -(log_p.exp() * log_p) / std::log(static_cast<double>(logits.size(1)));
}

EntropyMapDiscriminatorImpl::EntropyMapDiscriminatorImpl(std::int64_t classes, std::int64_t ndf) {
  const std::vector<std::int64_t> channels{classes, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 1};
  for (std::size_t i = 0; i + 1 < channels.size(); ++i) {
    convs_.push_back(register_module(
        "conv" + std::to_string(i + 1),
        torch::nn::Conv2d(torch::nn::Conv2dOptions(channels[i], channels[i + 1], 4).stride(2).padding(1))));
  }
}

torch::Tensor EntropyMapDiscriminatorImpl::forward(const torch::Tensor& maps) {
  auto x = maps;
  for (std::size_t i = 0; i < convs_.size(); ++i) {
    x = convs_[i](x);
    if (i + 1 < convs_.size()) {
      x = torch::nn::functional::leaky_relu(x, torch::nn::functional::LeakyReLUFuncOptions().negative_slope(0.2));
    }
  }
  return x.reshape({-1});
}

AdventAdversarial::AdventAdversarial(Params& params, const ModelInfo& model) {
  if (model.classes < 2) throw MethodError(params.path() + ": advent_adversarial needs at least 2 classes");
  const std::int64_t ndf = params.integer(
      "ndf", 64,
      {"channels of the discriminator's first convolution (doubling to 8*ndf)",
       "Vu et al. 2019; valeoai/ADVENT model/discriminator.py get_fc_discriminator(ndf=64)"},
      1);
  lr_ = params.optional_number(
      "discriminator_lr",
      {"discriminator learning rate; unset = the optimizer's",
       "paper: Adam 1e-4, betas (0.9, 0.99) (valeoai/ADVENT config.py LEARNING_RATE_D); ours: the optimizer's, as "
       "the discriminator learns in the same step through gradient reversal"},
      Range::at_least(0.0));
  weight_decay_ = params.optional_number(
      "discriminator_weight_decay",
      {"discriminator weight decay; unset = the optimizer's",
       "paper: none (valeoai/ADVENT train_UDA.py: Adam without weight decay); ours: the optimizer's, like every "
       "discriminator here"},
      Range::at_least(0.0));
  discriminator_ = EntropyMapDiscriminator(model.classes, ndf);
}

DaLossOutput AdventAdversarial::compute_da_loss(const StepInputs& step) {
  for (const auto* logits : {&step.source_logits, &step.target_logits}) {
    if (logits->size(2) < 32 || logits->size(3) < 32) {
      throw std::invalid_argument("advent_adversarial: the discriminator halves the maps five times and needs tiles of "
                                  "at least 32x32 pixels, got " + std::to_string(logits->size(2)) + "x" +
                                  std::to_string(logits->size(3)));
    }
  }
  // The discriminator learns on the maps as they are (source 0, target 1);
  // none of its loss reaches the segmentation network.
  const auto source = discriminator_(self_information(step.source_logits).detach());
  const auto target = discriminator_(self_information(step.target_logits).detach());
  torch::Tensor accuracy;
  const auto discriminator_loss = domain_loss(source, target, &accuracy);
  // The segmentation network learns to pass its target maps off as source
  // ones (label 0) to the discriminator as it is: with the discriminator's
  // parameters frozen for this forward, as the authors' train_UDA.py does,
  // this term gives them no gradient.
  torch::Tensor fooled;
  {
    const FrozenParameters frozen(*discriminator_);
    fooled = discriminator_(self_information(step.target_logits));
  }
  const auto adversarial_loss = torch::binary_cross_entropy_with_logits(fooled, torch::zeros_like(fooled));
  DaLossOutput out;
  out.loss = step.lambda * adversarial_loss + discriminator_loss;
  out.logs = {{"domain_loss", discriminator_loss.detach()},
              {"domain_acc", accuracy},
              {"adversarial_loss", adversarial_loss.detach()}};
  return out;
}

std::vector<ParamGroup> AdventAdversarial::extra_parameter_groups() {
  return {ParamGroup{"advent_adversarial.discriminator", discriminator_->parameters(), lr_, weight_decay_}};
}

DA_REGISTER_METHOD("advent_adversarial", AdventAdversarial);

}  // namespace da::methods
