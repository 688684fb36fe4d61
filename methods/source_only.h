// The baseline: no adaptation. Its DA loss is zero and it needs nothing from
// the target domain but the forward pass the trainer always makes for
// validation statistics.
#pragma once

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class SourceOnly : public Method {
 public:
  SourceOnly(Params& params, const ModelInfo& model);
  std::string name() const override { return "source_only"; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;
};

}  // namespace da::methods
