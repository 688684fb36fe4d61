// Entropy minimisation on target predictions (ADVENT's direct variant, Vu et
// al., 2019): the mean over target pixels of the Shannon entropy of the
// softmax, -sum_k p_k log p_k. No parameters besides loss_weight. Pushes the
// model to confident target predictions; pair it with DANN for the
// combination the source documents recommend.
#pragma once

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class EntropyMinimization : public Method {
 public:
  EntropyMinimization(Params& params, const ModelInfo& model);
  std::string name() const override { return "entropy"; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;
};

// Mean per-pixel entropy of logits [B,K,H,W] (log-softmax, so no epsilon).
torch::Tensor mean_entropy(const torch::Tensor& logits);

}  // namespace da::methods
