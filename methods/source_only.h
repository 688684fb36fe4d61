// The baseline: no adaptation. Its DA loss is zero and it needs nothing from
// the target domain, so a source-only run makes no target forward.
#pragma once

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class SourceOnly : public Method {
 public:
  SourceOnly(Params& params, const ModelInfo& model);
  std::string name() const override { return "source_only"; }
  bool uses_target_batch() const override { return false; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;
};

}  // namespace da::methods
