#include "methods/mstn.h"

#include <torch/nn/functional/upsampling.h>

#include <algorithm>
#include <stdexcept>

#include "methods/registry.h"

namespace da::methods {
namespace {

// Labels [B,H,W] at h x w by nearest neighbour (as F.interpolate's 'nearest').
torch::Tensor labels_at(const torch::Tensor& labels, std::int64_t h, std::int64_t w) {
  if (labels.size(1) == h && labels.size(2) == w) return labels;
  namespace F = torch::nn::functional;
  const auto resized = F::interpolate(labels.unsqueeze(1).to(torch::kFloat),
                                      F::InterpolateFuncOptions().size(std::vector<std::int64_t>{h, w}).mode(torch::kNearest));
  return resized.squeeze(1).to(torch::kLong);
}

const torch::Tensor& feature(const FeatureMap& features, const std::string& layer, const char* domain) {
  const auto it = features.find(layer);
  if (it == features.end()) {
    throw std::invalid_argument(std::string("mstn: no ") + domain + " features of layer '" + layer + "'");
  }
  if (it->second.dim() != 4) {
    throw std::invalid_argument(std::string("mstn: ") + domain + " features of layer '" + layer +
                                "' must be [B,C,H,W]");
  }
  return it->second;
}

}  // namespace

torch::Tensor class_feature_sums(const torch::Tensor& features, const torch::Tensor& labels, std::int64_t classes) {
  const std::int64_t channels = features.size(1);
  torch::Tensor onehot;
  {
    torch::NoGradGuard no_grad;
    const auto l = labels_at(labels, features.size(2), features.size(3)).reshape({-1});
    const auto valid = l.ge(0).logical_and(l.lt(classes));
    onehot = torch::zeros({l.size(0), classes}, features.options().requires_grad(false));
    const auto rows = torch::arange(l.size(0), l.options()).masked_select(valid);
    onehot.index_put_({rows, l.masked_select(valid)}, 1.0);
  }
  const auto flat = features.permute({0, 2, 3, 1}).reshape({-1, channels});
  return torch::cat({onehot.t().mm(flat), onehot.sum(0).unsqueeze(1)}, 1);
}

Mstn::Mstn(Params& params, const ModelInfo& model) : dann_(params, model), classes_(model.classes) {
  layer_ = params.text("centroid_layer", dann_.feature_layers().front(),
                       {"feature tap of the class centroids; default: the first DANN layer",
                        "Xie et al. 2018: the features the discriminator sees"});
  decay_ = params.number("decay", 0.7,
                         {"weight of the old centroid in the moving average",
                          "the authors' Mid-Push/Moving-Semantic-Transfer-Network mstnmodel.py: 0.3 on the batch "
                          "centroid, 0.7 on the old"},
                         Range{0.0, 1.0, false, /*max_exclusive=*/true});
  centroid_weight_ = params.number(
      "centroid_weight", 1.0,
      {"weight of the centroid loss",
       "Mid-Push/Moving-Semantic-Transfer-Network mstnmodel.py: weight 1, times lambda, on the mean over classes "
       "and channels of the squared centroid difference"},
      Range::at_least(0.0));
  scale_by_lambda_ = params.flag(
      "scale_by_lambda", true,
      {"multiply the centroid loss by the scheduled lambda",
       "the authors' mstnmodel.py / mstntrain.py: the semantic loss times the DANN schedule's lambda"});
  if (classes_ < 1) throw MethodError(params.path() + ": mstn needs the model's number of classes");
  if (!model.channels) throw MethodError(params.path() + ".centroid_layer: the model cannot tell its channels");
  const std::int64_t channels = model.channels(layer_);
  centroids_ = torch::zeros({2, classes_, channels});
  seen_ = torch::zeros({2, classes_});
}

std::vector<std::string> Mstn::feature_layers() const {
  auto layers = dann_.feature_layers();
  if (std::find(layers.begin(), layers.end(), layer_) == layers.end()) layers.push_back(layer_);
  return layers;
}

std::vector<ParamGroup> Mstn::extra_parameter_groups() {
  auto groups = dann_.extra_parameter_groups();
  for (auto& group : groups) group.name = "mstn.discriminator";
  return groups;
}

DaLossOutput Mstn::compute_da_loss(const StepInputs& step) {
  DaLossOutput out = dann_.compute_da_loss(step);
  const auto& source = feature(step.source_features, layer_, "source");
  const auto& target = feature(step.target_features, layer_, "target");
  if (!step.source.mask.defined()) throw std::invalid_argument("mstn: the source batch has no masks");
  const auto dtype = source.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const auto s = source.to(dtype), t = target.to(dtype);
  const std::int64_t channels = s.size(1);
  if (centroids_.size(2) != channels) {
    throw std::invalid_argument("mstn: layer '" + layer_ + "' has " + std::to_string(channels) +
                                " channels, the centroids " + std::to_string(centroids_.size(2)));
  }
  torch::Tensor pseudo;
  {
    torch::NoGradGuard no_grad;
    pseudo = step.target_logits.argmax(1);
  }
  // One all-reduce (and one in the backward) for both domains' sums and counts.
  const auto local = torch::stack({class_feature_sums(s, step.source.mask, classes_),
                                   class_feature_sums(t, pseudo, classes_)});
  const auto total = ranks::all_reduce_sum(local, collectives());
  const auto sums = total.narrow(2, 0, channels);
  const auto counts = total.select(2, channels).detach();  // [2,K]

  const auto old = centroids_.to(s.options()).detach();
  const auto seen = seen_.to(s.options()).gt(0.5);
  const auto present = counts.gt(0);
  // Weight of the old centroid: decay when present and seen before, 0 when
  // present for the first time, 1 when absent (then C_batch is 0 anyway).
  const auto keep = torch::where(present, torch::where(seen, torch::full_like(counts, decay_), torch::zeros_like(counts)),
                                 torch::ones_like(counts))
                        .unsqueeze(2);
  const auto batch = sums / counts.clamp_min(1.0).unsqueeze(2);
  const auto centroids = keep * old + (1.0 - keep) * batch;
  const auto now_seen = seen.logical_or(present);
  const auto both = now_seen[0].logical_and(now_seen[1]);
  // Mean squared difference over the channels (the authors' code; a sum
  // would scale the loss with the layer's width: 512 times DANN's on a
  // ResNet's last stage) and over the classes seen in both domains, 0 while
  // there are none: a masked mean, so the host never waits for the count.
  const auto n = both.sum();
  const auto distance = (centroids[0] - centroids[1]).pow(2).mean(1);
  const auto centroid_loss = (distance * both.to(distance.scalar_type())).sum() / n.clamp_min(1).to(distance.scalar_type());
  centroids_ = centroids.detach();
  seen_ = now_seen.to(s.dtype());

  const double factor = centroid_weight_ * (scale_by_lambda_ ? step.lambda : 1.0);
  out.loss = out.loss + factor * centroid_loss.to(out.loss.scalar_type());
  out.logs["centroid_loss"] = centroid_loss;
  out.logs["centroid_classes"] = n;
  return out;
}

void Mstn::save_state(torch::serialize::OutputArchive& archive) const {
  Method::save_state(archive);
  archive.write("mstn_centroids", centroids_.cpu());
  archive.write("mstn_seen", seen_.cpu());
}

void Mstn::load_state(torch::serialize::InputArchive& archive) {
  Method::load_state(archive);
  torch::Tensor centroids, seen;
  archive.read("mstn_centroids", centroids);
  archive.read("mstn_seen", seen);
  if (centroids.sizes() != centroids_.sizes() || seen.sizes() != seen_.sizes()) {
    throw std::runtime_error("mstn: saved centroids have another shape (classes or channels differ)");
  }
  centroids_ = centroids;
  seen_ = seen;
}

DA_REGISTER_METHOD("mstn", Mstn);

}  // namespace da::methods
