// An example user method compiled into its own shared library: a confidence
// penalty (mean max-probability gap) on target predictions. It registers
// itself when da_dist loads the library from the config's `plugins:` list.
#include <ATen/ATen.h>

#include "methods/registry.h"

namespace example {

class MaxProbabilityGap : public da::methods::Method {
 public:
  MaxProbabilityGap(da::methods::Params& params, const da::methods::ModelInfo&)
      : margin_(params.number("margin", 1.0,
                              {"top-class probability below which a target pixel is penalised",
                               "ours: penalise every pixel not predicted with certainty"},
                              da::methods::Range::at_least(0.0))) {}

  std::string name() const override { return "example_max_prob_gap"; }

  da::methods::DaLossOutput compute_da_loss(const da::methods::StepInputs& step) override {
    const auto top = at::softmax(step.target_logits, 1).amax(1);
    da::methods::DaLossOutput out;
    out.loss = (margin_ - top).clamp_min(0).mean();
    out.logs = {{"gap", out.loss}};  // a tensor: read once per log interval, not each step
    return out;
  }

 private:
  double margin_;
};

DA_REGISTER_METHOD("example_max_prob_gap", MaxProbabilityGap);

}  // namespace example
