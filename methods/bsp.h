// Batch Spectral Penalization (Chen et al., "Transferability vs.
// Discriminability: Batch Spectral Penalization for Adversarial Domain
// Adaptation", ICML 2019).
//
// tllib's BatchSpectralPenalizationLoss generalised to the top k singular
// values: the features of one layer, global-average-pooled to [B,C] per
// domain, give
//   loss = sum_{i<k} sigma_i(F_s)^2 + sum_{i<k} sigma_i(F_t)^2
// (tllib is k = 1). k is capped at min(B, C), the number of singular values.
// Singular values come from torch::linalg_svdvals; their gradient is well
// defined when the top k+1 singular values are distinct (true of real
// feature batches almost surely).
//
// BSP only penalises the dominant feature directions; it is meant as a
// regulariser of an adversarial method: list it together with dann in
// domain_adaptation (e.g. methods [dann, bsp] on the same layer, with a
// small loss_weight such as 1e-4 as in the paper).
//
// Parameters: layer (default: the first of domain_adaptation.feature_layers,
// else "encoder", like dann), k (1, >= 1), loss_weight (read by the
// framework). Logs: bsp_loss.
//
// Computed across ranks: each domain's pooled features are gathered from
// every rank (all_gather_rows, differentiable) and the SVD is of the global
// batch's [N*b, C] matrix, so the loss and the rank-averaged gradient on N
// ranks equal those of one process with the union batch (k is capped at
// min(N*b, C)).
#pragma once

#include <cstdint>

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class BatchSpectralPenalization : public Method {
 public:
  BatchSpectralPenalization(Params& params, const ModelInfo& model);
  std::string name() const override { return "bsp"; }
  std::vector<std::string> feature_layers() const override { return {layer_}; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;

 private:
  std::string layer_;
  std::int64_t k_;
};

// Feature maps [B,C,H,W] averaged over H and W to [B,C]; [B,C] unchanged.
torch::Tensor bsp_pool(const torch::Tensor& features);

// Sum of the squares of the top k singular values of a matrix [B,C].
torch::Tensor top_singular_energy(const torch::Tensor& matrix, std::int64_t k);

// BSP of pooled source and target features [B,C].
torch::Tensor bsp_loss(const torch::Tensor& source, const torch::Tensor& target, std::int64_t k);

}  // namespace da::methods
