#include "methods/coral.h"

#include <stdexcept>

#include "methods/feature_access.h"
#include "methods/registry.h"
#include "ranks/rank_sum.h"

namespace da::methods {
namespace {

// Covariance of the rows of x [n,C] with the (n-1) denominator.
torch::Tensor covariance(const torch::Tensor& x) {
  const auto centred = x - x.mean(0, /*keepdim=*/true);
  return centred.t().matmul(centred) / double(x.size(0) - 1);
}

}  // namespace

torch::Tensor coral_loss(const torch::Tensor& source, const torch::Tensor& target) {
  if (source.dim() != 2 || target.dim() != 2 || source.size(1) != target.size(1)) {
    throw std::invalid_argument("coral: source and target features must be [B,C] with the same C, got " +
                                std::to_string(source.dim() == 2 ? source.size(1) : -1) + " and " +
                                std::to_string(target.dim() == 2 ? target.size(1) : -1) + " channels");
  }
  if (source.size(0) < 2 || target.size(0) < 2) {
    throw std::invalid_argument(
        "coral: needs at least 2 samples per domain to estimate a covariance, got a source batch of " +
        std::to_string(source.size(0)) + " and a target batch of " + std::to_string(target.size(0)) +
        " (the covariances are of the global batch: raise data.batch_size)");
  }
  const double d = double(source.size(1));
  return (covariance(source) - covariance(target)).pow(2).sum() / (4.0 * d * d);
}

Coral::Coral(Params& params, const ModelInfo& model) {
  layer_ = read_feature_layer(params, model);
}

DaLossOutput Coral::compute_da_loss(const StepInputs& step) {
  // The global batch's features (see the header).
  const auto source =
      ranks::all_gather_rows(pooled_features(step.source_features, layer_, "source", "coral"), collectives(), "coral");
  const auto target =
      ranks::all_gather_rows(pooled_features(step.target_features, layer_, "target", "coral"), collectives(), "coral");
  DaLossOutput out;
  out.loss = coral_loss(source, target);
  out.logs = {{"coral_loss", out.loss}};
  return out;
}

DA_REGISTER_METHOD("coral", Coral);

}  // namespace da::methods
