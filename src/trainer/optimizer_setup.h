// The optimizer of a run: SGD (momentum, Nesterov) or AdamW over parameter
// groups — the model first, then each group a method adds (e.g. a
// discriminator with its own learning rate) — with the LR schedule applied
// to every group's own base rate, and global-norm gradient clipping.
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

#include "config/options.h"
#include "methods/method.h"
#include "trainer/lr_schedule.h"

namespace da::trainer {

class OptimizerSetup {
 public:
  OptimizerSetup(const config::OptimizerOptions& options, std::vector<torch::Tensor> model_params,
                 const std::vector<methods::ParamGroup>& extra_groups);

  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  const std::vector<std::string>& group_names() const { return names_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  // Sets every group's rate to base * schedule.factor(step).
  void apply_schedule(const LrSchedule& schedule, std::int64_t step);
  double lr(std::size_t group) const;

  // Scales all gradients so their global L2 norm is at most max_norm
  // (no-op for max_norm <= 0), as torch.nn.utils.clip_grad_norm_. Returns
  // the norm before clipping as a scalar tensor on the gradients' device:
  // computed and applied there, so the host does not wait for it.
  torch::Tensor clip_gradients(double max_norm);

 private:
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<std::string> names_;
  std::vector<double> base_lrs_;
  bool is_sgd_;
};

}  // namespace da::trainer
