#include "methods/bsp.h"

#include <algorithm>

#include "methods/feature_access.h"
#include "methods/registry.h"
#include "ranks/rank_sum.h"

namespace da::methods {

torch::Tensor bsp_pool(const torch::Tensor& features) {
  if (features.dim() == 2) return features;
  TORCH_CHECK(features.dim() == 4, "bsp: expected features [B,C,H,W] or [B,C], got ", features.sizes());
  return features.mean({2, 3});
}

torch::Tensor top_singular_energy(const torch::Tensor& matrix, std::int64_t k) {
  TORCH_CHECK(matrix.dim() == 2, "bsp: expected a matrix [B,C], got ", matrix.sizes());
  TORCH_CHECK(k >= 1, "bsp: k must be >= 1, got ", k);
  // No half-precision SVD: compute reduced-precision features in float.
  const bool reduced = matrix.scalar_type() == torch::kHalf || matrix.scalar_type() == torch::kBFloat16;
  const auto sigma = torch::linalg_svdvals(reduced ? matrix.to(torch::kFloat) : matrix);  // descending
  const auto top = sigma.slice(0, 0, std::min<std::int64_t>(k, sigma.size(0)));
  return top.pow(2).sum();
}

torch::Tensor bsp_loss(const torch::Tensor& source, const torch::Tensor& target, std::int64_t k) {
  return top_singular_energy(source, k) + top_singular_energy(target, k);
}

BatchSpectralPenalization::BatchSpectralPenalization(Params& params, const ModelInfo& model) {
  layer_ = read_feature_layer(params, model);
  k_ = params.integer("k", 1,
                      {"how many of the largest singular values are penalised",
                       "Chen et al. 2019 (k = 1); thuml/Batch-Spectral-Penalization train.py penalises s[0] only"},
                      1);
}

DaLossOutput BatchSpectralPenalization::compute_da_loss(const StepInputs& step) {
  // The global batch's features (see the header).
  const auto source = ranks::all_gather_rows(bsp_pool(step.source_features.at(layer_)), collectives(), "bsp");
  const auto target = ranks::all_gather_rows(bsp_pool(step.target_features.at(layer_)), collectives(), "bsp");
  DaLossOutput out;
  out.loss = bsp_loss(source, target, k_);
  out.logs = {{"bsp_loss", out.loss}};
  return out;
}

DA_REGISTER_METHOD("bsp", BatchSpectralPenalization);

}  // namespace da::methods
