// A user's own method, built as a plug-in against the installed da_dist:
// penalises the squared mean of the target logits (a toy regulariser; what
// matters here is that da_dist loads and runs it without being rebuilt).
#include <ATen/ATen.h>

#include "methods/registry.h"

namespace consumer {

class LogitMeanPenalty : public da::methods::Method {
 public:
  LogitMeanPenalty(da::methods::Params& params, const da::methods::ModelInfo&)
      : scale_(params.number("scale", 1.0, 0.0)) {}
  std::string name() const override { return "consumer_logit_mean"; }
  da::methods::DaLossOutput compute_da_loss(const da::methods::StepInputs& step) override {
    da::methods::DaLossOutput out;
    out.loss = scale_ * step.target_logits.mean().pow(2);
    out.logs = {{"penalty", out.loss.item<double>()}};
    return out;
  }

 private:
  double scale_;
};

DA_REGISTER_METHOD("consumer_logit_mean", LogitMeanPenalty);

}  // namespace consumer
