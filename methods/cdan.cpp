#include "methods/cdan.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/pooling.h>

#include <cmath>

#include "methods/dann.h"
#include "methods/gradient_reversal.h"
#include "methods/registry.h"

namespace da::methods {
namespace F = torch::nn::functional;

CdanHeadImpl::CdanHeadImpl(std::int64_t channels, std::int64_t classes, std::int64_t hidden,
                           std::int64_t randomized_dim, at::Generator& generator) {
  std::int64_t dim = channels * classes;
  if (randomized_dim > 0) {
    // Fixed random projections (not trained). float32 like every freshly
    // built parameter; module()->to() converts them with the rest.
    random_f_ = register_buffer("random_f", torch::randn({channels, randomized_dim}, generator, torch::kFloat));
    random_g_ = register_buffer("random_g", torch::randn({classes, randomized_dim}, generator, torch::kFloat));
    dim = randomized_dim;
  }
  fc1_ = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden, hidden));
  fc3_ = register_module("fc3", torch::nn::Linear(hidden, 1));
}

torch::Tensor CdanHeadImpl::map(const torch::Tensor& f, const torch::Tensor& g) const {
  if (random_f_.defined()) {
    const double d = static_cast<double>(random_f_.size(1));
    return f.mm(random_f_) * g.mm(random_g_) / std::sqrt(d);
  }
  // tllib: bmm(g.unsqueeze(2), f.unsqueeze(1)).view(N, -1): h[n, k*C + c] = g[n,k] f[n,c].
  return torch::bmm(g.unsqueeze(2), f.unsqueeze(1)).reshape({f.size(0), -1});
}

torch::Tensor CdanHeadImpl::forward(const torch::Tensor& h) {
  auto x = torch::relu(fc1_(h));
  x = torch::relu(fc2_(x));
  return fc3_(x).reshape({-1});
}

Cdan::Cdan(Params& params, const ModelInfo& model) {
  const auto layers = read_aligned_layers(params, model);
  per_pixel_ = params.choice("variant", "pooled", {"pooled", "pixel"},
                             {"pooled: one sample per image (pooled features, mean prediction); pixel: one per "
                              "feature-map position",
                              "Long et al. 2018 condition one feature vector per image on its prediction; pixel is "
                              "ours, for segmentation"}) == "pixel";
  const std::int64_t hidden = params.integer(
      "hidden_size", 1024,
      {"discriminator hidden width", "Transfer-Learning-Library cdan.py DomainDiscriminator(hidden_size=1024)"}, 1);
  const std::int64_t randomized_dim = params.integer(
      "randomized_dim", 0,
      {"0 = the exact multilinear map (K*C inputs); d > 0 = the randomized map of dimension d",
       "Transfer-Learning-Library cdan.py: exact map unless --randomized, then --randomized-dim 1024"},
      0);
  const std::int64_t seed = params.integer(
      "seed", 0, {"seed of the randomized map's fixed random matrices", "ours: reproducible matrices"}, 0);
  entropy_conditioning_ = params.flag(
      "entropy_conditioning", false,
      {"CDAN+E: weight samples by 1 + exp(-entropy of the prediction)",
       "Transfer-Learning-Library cdan.py --entropy off by default (CDAN; true is Long et al. 2018's CDAN+E)"});
  lr_ = params.optional_number(
      "discriminator_lr",
      {"discriminator learning rate; unset = the optimizer's",
       "Transfer-Learning-Library cdan.py: the network's optimizer and learning rate"},
      Range::at_least(0.0));
  weight_decay_ = params.optional_number(
      "discriminator_weight_decay",
      {"discriminator weight decay; unset = the optimizer's",
       "Transfer-Learning-Library cdan.py: the network's optimizer and weight decay"},
      Range::at_least(0.0));
  if (model.classes <= 0) throw MethodError(params.path() + ": cdan needs the model's number of classes");

  // One generator for all layers, so every layer gets different matrices
  // and the whole set is reproducible from `seed`.
  auto generator = at::detail::createCPUGenerator(static_cast<std::uint64_t>(seed));
  module_ = std::make_shared<torch::nn::Module>("CdanDiscriminators");
  for (const auto& layer : layers) {
    CdanHead head(layer.channels, model.classes, hidden, randomized_dim, generator);
    module_->register_module(layer_module_name(layer.name), head.ptr());
    layers_.push_back(Layer{layer.name, layer.weight, head});
  }
}

std::vector<std::string> Cdan::feature_layers() const {
  std::vector<std::string> names;
  for (const auto& layer : layers_) names.push_back(layer.name);
  return names;
}

std::pair<torch::Tensor, torch::Tensor> Cdan::samples(const torch::Tensor& features,
                                                      const torch::Tensor& logits) const {
  // The predictions only condition the discriminator: no gradient to the
  // classifier through them (tllib detaches g).
  const auto probs = torch::softmax(logits.detach(), 1);
  if (!per_pixel_) return {features.mean({2, 3}), probs.mean({2, 3})};
  const auto g = F::adaptive_avg_pool2d(probs, F::AdaptiveAvgPool2dFuncOptions({features.size(2), features.size(3)}));
  const auto to_rows = [](const torch::Tensor& x) { return x.permute({0, 2, 3, 1}).reshape({-1, x.size(1)}); };
  return {to_rows(features), to_rows(g)};
}

DaLossOutput Cdan::compute_da_loss(const StepInputs& step) {
  LayerLossSum sum(layers_.size());
  for (auto& layer : layers_) {
    auto [fs, gs] = samples(step.source_features.at(layer.name), step.source_logits);
    auto [ft, gt] = samples(step.target_features.at(layer.name), step.target_logits);
    const auto source_logits = layer.head(layer.head->map(gradient_reversal(fs, step.lambda), gs));
    const auto target_logits = layer.head(layer.head->map(gradient_reversal(ft, step.lambda), gt));
    torch::Tensor weight;
    if (entropy_conditioning_) {
      // tllib's CDAN+E weights over source and target samples together.
      const auto g = torch::cat({gs, gt});
      const auto entropy = -(g * torch::log(g + 1e-5)).sum(1);
      weight = 1.0 + torch::exp(-entropy);
      weight = (weight / weight.sum() * static_cast<double>(g.size(0))).detach();
    }
    torch::Tensor accuracy;
    const auto loss = domain_loss(source_logits, target_logits, weight, &accuracy);
    sum.add(layer.name, layer.weight, loss, accuracy);
  }
  DaLossOutput out;
  out.loss = sum.total();
  out.logs = sum.logs();
  return out;
}

std::vector<ParamGroup> Cdan::extra_parameter_groups() {
  // Buffers (the random matrices) are not parameters, so they stay fixed.
  return {ParamGroup{"cdan.discriminator", module_->parameters(), lr_, weight_decay_}};
}

DA_REGISTER_METHOD("cdan", Cdan);

}  // namespace da::methods
