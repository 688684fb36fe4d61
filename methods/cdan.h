// CDAN (Long et al., "Conditional Adversarial Domain Adaptation", NeurIPS
// 2018), in the Transfer-Learning-Library (tllib) formulation of
// ConditionalDomainAdversarialLoss: the discriminator sees the features f
// conditioned on the (detached) softmax predictions g through the
// multilinear map h = outer(g, f) flattened (dimension K*C), or the
// randomized map h = (f R_f) * (g R_g) / sqrt(d). Gradient reversal sits on
// f, scaled by the scheduled lambda as in DANN (g is detached and the map
// is linear in f, so this equals tllib's reversal after the map).
//
// Parameters:
//   layer / layers / layer_weights / in_channels: as dann (dann.h); one
//     discriminator (and one pair of random matrices) per layer.
//   variant (pooled): pooled = one sample per image, f the global-average-
//     pooled feature map [B,C], g the softmax probabilities averaged over
//     all pixels [B,K]; pixel = one sample per feature-map position, g the
//     softmax probabilities adaptive-average-pooled to the map's HxW.
//   hidden_size (1024): width of the discriminator MLP.
//   randomized_dim (0): d > 0 uses the randomized map of dimension d, 0 the
//     exact multilinear map.
//   seed (0): seed of the CPU generator R_f [C,d] then R_g [K,d] are drawn
//     from with torch::randn (layer by layer, in order); they are buffers of
//     module() so checkpoints hold them.
//   entropy_conditioning (false): CDAN+E; per-sample weights
//     w = 1 + exp(-H(g)), H(g) = -sum g log(g + 1e-5) (tllib's entropy),
//     over the source and target samples together, normalised to sum to
//     their count, detached.
//   discriminator_lr, discriminator_weight_decay: as dann.
// Logs: domain_loss, domain_acc (and per layer with several, as dann).
//
// The discriminator is tllib's DomainDiscriminator without BatchNorm and
// dropout: Linear(dim, hidden) ReLU Linear(hidden, hidden) ReLU
// Linear(hidden, 1) (deterministic, and no batch statistics mixing the
// domains). Loss: binary cross-entropy, source = 0, target = 1 (domain_loss
// of dann.h, weighted for CDAN+E).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

// The conditional discriminator of one layer: the map (with its random
// matrices as buffers when randomized) and the MLP on it.
class CdanHeadImpl : public torch::nn::Module {
 public:
  // randomized_dim 0: exact map; otherwise R_f, R_g are drawn from `generator`.
  CdanHeadImpl(std::int64_t channels, std::int64_t classes, std::int64_t hidden, std::int64_t randomized_dim,
               at::Generator& generator);

  // f [N,C], g [N,K] -> h [N,K*C] or [N,d].
  torch::Tensor map(const torch::Tensor& f, const torch::Tensor& g) const;
  // h -> logits [N].
  torch::Tensor forward(const torch::Tensor& h);

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
  torch::Tensor random_f_, random_g_;  // undefined for the exact map
};
TORCH_MODULE(CdanHead);

class Cdan : public Method {
 public:
  Cdan(Params& params, const ModelInfo& model);

  std::string name() const override { return "cdan"; }
  std::vector<std::string> summary_logs() const override { return {"domain_acc"}; }
  std::vector<std::string> feature_layers() const override;
  DaLossOutput compute_da_loss(const StepInputs& step) override;
  std::shared_ptr<torch::nn::Module> module() override { return module_; }
  std::vector<ParamGroup> extra_parameter_groups() override;

 private:
  struct Layer {
    std::string name;
    double weight;
    CdanHead head;
  };
  // f, g of one domain as samples: [N,C] and [N,K] (see `variant`).
  std::pair<torch::Tensor, torch::Tensor> samples(const torch::Tensor& features, const torch::Tensor& logits) const;

  std::vector<Layer> layers_;
  bool per_pixel_;
  bool entropy_conditioning_;
  std::optional<double> lr_;
  std::optional<double> weight_decay_;
  std::shared_ptr<torch::nn::Module> module_;
};

}  // namespace da::methods
