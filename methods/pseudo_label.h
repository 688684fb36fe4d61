// Self-training with confidence-thresholded pseudo-labels: target pixels
// whose top softmax probability exceeds `threshold` (0.9) are supervised with
// their arg-max class by cross-entropy (mean over those pixels). Logs
// pseudo_label_loss and pseudo_label_ratio (share of target pixels used).
// When no pixel passes, the loss is an exact zero that still belongs to the
// graph (no NaN, no missing gradient).
#pragma once

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class PseudoLabel : public Method {
 public:
  PseudoLabel(Params& params, const ModelInfo& model);
  std::string name() const override { return "pseudo_label"; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;

 private:
  double threshold_;
};

}  // namespace da::methods
