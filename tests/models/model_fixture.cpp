#include "models/model_fixture.h"

#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/utils.h>

namespace da::test {

models::StateDict state_of(torch::nn::Module& model) {
  models::StateDict state;
  for (const auto& item : model.named_parameters()) state[item.key()] = item.value().detach().clone();
  for (const auto& item : model.named_buffers()) state[item.key()] = item.value().detach().clone();
  return state;
}

bool is_target_key(const std::string& name) { return name.find(".target.") != std::string::npos; }

void copy_by_name(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto params = to.named_parameters();
  auto buffers = to.named_buffers();
  for (const auto& item : from.named_parameters()) {
    ASSERT_TRUE(params.contains(item.key())) << item.key();
    params[item.key()].copy_(item.value());
  }
  for (const auto& item : from.named_buffers()) {
    ASSERT_TRUE(buffers.contains(item.key())) << item.key();
    buffers[item.key()].copy_(item.value());
  }
}

void randomise_bns(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (auto* bn = item.value()->as<torch::nn::BatchNorm2d>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.5, 0.5);
      bn->running_mean.uniform_(-0.5, 0.5);
      bn->running_var.uniform_(0.5, 1.5);
      bn->num_batches_tracked.fill_(3);
    }
  }
}

}  // namespace da::test
