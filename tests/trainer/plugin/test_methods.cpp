// Plug-in methods for tests of the training loop's failure paths. Both add
// nothing to the loss.
//   test_fail_at:    throws on one rank at one global step (as a bad tile, a
//                    NaN loss or an out-of-memory error would)
//   test_preempt_at: raises SIGUSR1 at one global step, as Slurm's --signal would
#include <ATen/ATen.h>

#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "methods/registry.h"

namespace failing {

class FailAt : public da::methods::Method {
 public:
  FailAt(da::methods::Params& params, const da::methods::ModelInfo&)
      : step_(static_cast<std::int64_t>(params.number("step", 3.0, 0.0))),
        rank_(static_cast<int>(params.number("rank", 1.0, 0.0))) {}

  std::string name() const override { return "test_fail_at"; }
  bool uses_target_batch() const override { return false; }

  da::methods::DaLossOutput compute_da_loss(const da::methods::StepInputs& step) override {
    const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
    if (step.global_step == step_ && (rank ? std::atoi(rank) : 0) == rank_) {
      throw std::runtime_error("test_fail_at: injected failure at step " + std::to_string(step_));
    }
    return {at::zeros({}, step.source_logits.options()), {}, {}};
  }

 private:
  std::int64_t step_;
  int rank_;
};

DA_REGISTER_METHOD("test_fail_at", FailAt);

class PreemptAt : public da::methods::Method {
 public:
  PreemptAt(da::methods::Params& params, const da::methods::ModelInfo&)
      : step_(static_cast<std::int64_t>(params.number("step", -1.0, -1.0))) {}
  std::string name() const override { return "test_preempt_at"; }
  bool uses_target_batch() const override { return false; }
  da::methods::DaLossOutput compute_da_loss(const da::methods::StepInputs& step) override {
    if (step.global_step == step_) std::raise(SIGUSR1);
    return {at::zeros({}, step.source_logits.options()), {}, {}};
  }

 private:
  std::int64_t step_;
};

DA_REGISTER_METHOD("test_preempt_at", PreemptAt);

}  // namespace failing
