// DANN (Ganin et al., 2016): a domain discriminator on one feature layer,
// trained through a gradient reversal layer so that the encoder learns
// features the discriminator cannot tell apart.
//
// Parameters: layer (default: the first of domain_adaptation.feature_layers,
// else "encoder"), discriminator (pooled | pixel), hidden_size (1024),
// in_channels (default: from the model), discriminator_lr and
// discriminator_weight_decay (default: the optimizer's), lambda_in_loss
// (false; see lambda_schedule.h), loss_weight (read by the framework).
// Logs: domain_loss, domain_acc, lambda. Expects model.bn_mode joint or
// separate.
#pragma once

#include "methods/domain_discriminator.h"
#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class Dann : public Method {
 public:
  Dann(Params& params, const ModelInfo& model);

  std::string name() const override { return "dann"; }
  std::vector<std::string> feature_layers() const override { return {layer_}; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;
  std::shared_ptr<torch::nn::Module> module() override { return discriminator_.ptr(); }
  std::vector<ParamGroup> extra_parameter_groups() override;

 private:
  std::string layer_;
  bool lambda_in_loss_;
  std::optional<double> lr_;
  std::optional<double> weight_decay_;
  DomainDiscriminator discriminator_{nullptr};
};

// Domain classification loss of discriminator logits: binary cross-entropy
// with source = 0 and target = 1, averaged over every logit of both
// domains; `accuracy` receives the fraction classified correctly.
torch::Tensor domain_loss(const torch::Tensor& source_logits, const torch::Tensor& target_logits, double* accuracy);

}  // namespace da::methods
