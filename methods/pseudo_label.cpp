#include "methods/pseudo_label.h"

#include <torch/nn/functional/loss.h>

#include "methods/registry.h"

namespace da::methods {

PseudoLabel::PseudoLabel(Params& params, const ModelInfo&) : threshold_(params.number("threshold", 0.9, 0.0, 1.0)) {}

DaLossOutput PseudoLabel::compute_da_loss(const StepInputs& step) {
  const auto& logits = step.target_logits;
  torch::Tensor labels, selected;
  {
    torch::NoGradGuard no_grad;
    const auto [confidence, argmax] = torch::softmax(logits, 1).max(1);
    selected = confidence.gt(threshold_);
    labels = argmax;
  }
  const double ratio = selected.to(torch::kFloat).mean().item<double>();
  DaLossOutput out;
  if (ratio == 0.0) {
    out.loss = logits.sum() * 0.0;
  } else {
    // Unselected pixels get the ignore label: cross-entropy averages over
    // the selected ones only.
    const auto targets = labels.masked_fill(selected.logical_not(), -100);
    out.loss = torch::nn::functional::cross_entropy(logits, targets,
                                                    torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
  }
  out.logs = {{"pseudo_label_loss", out.loss.item<double>()}, {"pseudo_label_ratio", ratio}};
  return out;
}

DA_REGISTER_METHOD("pseudo_label", PseudoLabel);

}  // namespace da::methods
