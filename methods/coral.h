// Deep CORAL (Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep
// Domain Adaptation", ECCV 2016 workshops): aligns the second-order
// statistics of the two domains' features.
//
// One feature layer is global-average-pooled to [B,C] per domain; with C_s
// and C_t the feature covariances (the unbiased (n-1) denominator) and d = C
// the number of channels, loss = ||C_s - C_t||_F^2 / (4 d^2). A covariance
// needs at least 2 samples, so each domain's global batch must hold 2 or more
// samples (an error otherwise).
//
// Computed across ranks: the pooled features of both domains are gathered
// from every rank (all_gather_rows, differentiable) and the covariances are
// those of the global batch, so the loss and the rank-averaged gradient on N
// ranks equal those of one process with the union batch (and a per-rank
// batch of 1 is enough on 2 or more ranks).
//
// Parameters: layer (default: the first of domain_adaptation.feature_layers,
// else "encoder"), loss_weight (read by the framework). The scheduled lambda
// is not used. Logs: coral_loss.
#pragma once

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class Coral : public Method {
 public:
  Coral(Params& params, const ModelInfo& model);

  std::string name() const override { return "coral"; }
  std::vector<std::string> feature_layers() const override { return {layer_}; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;

 private:
  std::string layer_;
};

// CORAL loss of pooled features source [ns,C] and target [nt,C], ns, nt >= 2.
torch::Tensor coral_loss(const torch::Tensor& source, const torch::Tensor& target);

}  // namespace da::methods
