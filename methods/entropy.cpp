#include "methods/entropy.h"

#include "methods/registry.h"

namespace da::methods {

torch::Tensor mean_entropy(const torch::Tensor& logits) {
  const auto log_p = torch::log_softmax(logits, 1);
  return -(log_p.exp() * log_p).sum(1).mean();
}

EntropyMinimization::EntropyMinimization(Params&, const ModelInfo&) {}

DaLossOutput EntropyMinimization::compute_da_loss(const StepInputs& step) {
  DaLossOutput out;
  out.loss = mean_entropy(step.target_logits);
  out.logs = {{"entropy_loss", out.loss}};
  return out;
}

DA_REGISTER_METHOD("entropy", EntropyMinimization);

}  // namespace da::methods
