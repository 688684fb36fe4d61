#include "trainer/optimizer_setup.h"

#include <ATen/ATen.h>
#include <torch/utils.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

namespace da::trainer {
namespace {

template <class Options>
std::unique_ptr<Options> group_options(const Options& defaults, double lr, double weight_decay) {
  auto options = std::make_unique<Options>(defaults);
  options->lr(lr);
  options->weight_decay(weight_decay);
  return options;
}

}  // namespace

OptimizerSetup::OptimizerSetup(const config::OptimizerOptions& o, std::vector<torch::Tensor> model_params,
                               const std::vector<methods::ParamGroup>& extra_groups)
    : is_sgd_(o.name == "sgd") {
  struct Group {
    std::string name;
    std::vector<torch::Tensor> params;
    double lr, weight_decay;
  };
  std::vector<Group> groups{{"model", std::move(model_params), o.lr, o.weight_decay}};
  for (const auto& g : extra_groups) {
    groups.push_back({g.name, g.params, g.lr.value_or(o.lr), g.weight_decay.value_or(o.weight_decay)});
  }
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  if (is_sgd_) {
    const auto defaults = torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov);
    for (auto& g : groups) torch_groups.emplace_back(g.params, group_options(defaults, g.lr, g.weight_decay));
    optimizer_ = std::make_unique<torch::optim::SGD>(torch_groups, defaults);
  } else {
    const auto defaults =
        torch::optim::AdamWOptions(o.lr).betas({o.betas.at(0), o.betas.at(1)}).eps(o.eps).weight_decay(o.weight_decay);
    for (auto& g : groups) torch_groups.emplace_back(g.params, group_options(defaults, g.lr, g.weight_decay));
    optimizer_ = std::make_unique<torch::optim::AdamW>(torch_groups, defaults);
  }
  for (const auto& g : groups) {
    names_.push_back(g.name);
    base_lrs_.push_back(g.lr);
  }
}

void OptimizerSetup::apply_schedule(const LrSchedule& schedule, std::int64_t step) {
  const double factor = schedule.factor(step);
  auto& groups = optimizer_->param_groups();
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (is_sgd_) {
      static_cast<torch::optim::SGDOptions&>(groups[i].options()).lr(base_lrs_[i] * factor);
    } else {
      static_cast<torch::optim::AdamWOptions&>(groups[i].options()).lr(base_lrs_[i] * factor);
    }
  }
}

double OptimizerSetup::lr(std::size_t group) const {
  const auto& options = optimizer_->param_groups().at(group).options();
  return is_sgd_ ? static_cast<const torch::optim::SGDOptions&>(options).lr()
                 : static_cast<const torch::optim::AdamWOptions&>(options).lr();
}

torch::Tensor OptimizerSetup::clip_gradients(double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& g : optimizer_->param_groups()) {
    for (const auto& p : g.params()) {
      if (p.grad().defined()) grads.push_back(p.grad());
    }
  }
  if (grads.empty()) return torch::zeros({});
  // Libtorch's clip_grad_norm_ returns a double, i.e. reads the norm on the
  // host every step; this keeps it on the device.
  std::vector<torch::Tensor> norms;
  norms.reserve(grads.size());
  for (const auto& grad : grads) norms.push_back(grad.norm(2).to(grads.front().scalar_type()));
  const torch::Tensor total = torch::stack(norms).norm(2);
  if (max_norm > 0) {
    const torch::Tensor factor = (max_norm / (total + 1e-6)).clamp_max(1.0);
    for (auto& grad : grads) grad.mul_(factor.to(grad.scalar_type()));
  }
  return total;
}

}  // namespace da::trainer
