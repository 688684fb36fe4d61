// MMD: multi-kernel maximum mean discrepancy between the two domains'
// features, the adaptation loss of DAN (Long et al., "Learning Transferable
// Features with Deep Adaptation Networks", ICML 2015).
//
// One feature layer is global-average-pooled to [B,C] per domain. With
// X = concat(source, target) [n,C] and D its squared pairwise distances, the
// kernel is a sum of Gaussians as in the Transfer-Learning-Library's
// GaussianKernel: for each alpha, sigma^2 = alpha * mean(D), the mean taken
// without gradient (the bandwidth follows the batch), and
// K = sum_alpha exp(-D / (2 sigma^2)). The loss is the biased MMD^2 estimate
// mean(K_ss) + mean(K_tt) - 2 mean(K_st): it is the squared RKHS distance of
// the two batches' mean embeddings, so it is never negative, and it is defined
// for any source and target batch sizes (the unbiased estimate needs two
// samples per domain and can go negative; DAN's linear-time estimate needs
// equal batch sizes).
//
// Computed across ranks: the pooled features of both domains are gathered
// from every rank (all_gather_rows, differentiable), so the bandwidth and the
// kernel means are those of the global batch, and the loss and the
// rank-averaged gradient on N ranks equal those of one process with the
// union batch.
//
// Parameters: layer (default: the first of domain_adaptation.feature_layers,
// else "encoder"), kernel_alphas (list of bandwidth multipliers, each > 0,
// default [0.125, 0.25, 0.5, 1, 2]: the Transfer-Learning-Library's DAN
// kernels, alpha = 2^k for k = -3..1), loss_weight (read by the framework). The scheduled
// lambda is not used. Logs: mmd_loss.
#pragma once

#include <vector>

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class Mmd : public Method {
 public:
  Mmd(Params& params, const ModelInfo& model);

  std::string name() const override { return "mmd"; }
  std::vector<std::string> feature_layers() const override { return {layer_}; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;

  const std::vector<double>& kernel_alphas() const { return alphas_; }

 private:
  std::string layer_;
  std::vector<double> alphas_;
};

// Biased multi-kernel MMD^2 of pooled features source [ns,C] and target
// [nt,C] with the Gaussian kernels described above.
torch::Tensor mmd_loss(const torch::Tensor& source, const torch::Tensor& target, const std::vector<double>& alphas);

}  // namespace da::methods
