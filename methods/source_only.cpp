#include "methods/source_only.h"

#include "methods/registry.h"

namespace da::methods {

SourceOnly::SourceOnly(Params&, const ModelInfo&) {}

DaLossOutput SourceOnly::compute_da_loss(const StepInputs& step) {
  DaLossOutput out;
  out.loss = torch::zeros({}, step.source_logits.options());
  return out;
}

DA_REGISTER_METHOD("source_only", SourceOnly);

}  // namespace da::methods
