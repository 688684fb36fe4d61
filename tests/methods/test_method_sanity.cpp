// Feature-alignment methods on a small problem where they are known to help:
// inter-twinning moons whose target domain is the source rotated by 40
// degrees (the toy shift of the DANN paper, Ganin et al. 2016, sec. 5.1).
// Points are 1x1 "images" with two bands, so the methods run unchanged on
// [B, C, 1, 1] feature maps and logits. A network trained on the source
// alone misclassifies a third of the rotated target; each method, with its
// defaults and the same training, must recover a clear margin of it, on
// average over three initialisations (single runs of the adversarial game
// vary by 0.1 and more). CORAL is not here: second-order alignment does not
// undo a rotation of two moons (measured: 0.64 against source-only's 0.66).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/optim/adam.h>

#include <cmath>
#include <map>
#include <string>

#include "method_test_support.h"

namespace da::methods {
namespace {

constexpr std::int64_t kPoints = 300;  // per domain
constexpr std::int64_t kSteps = 1000;  // full-batch Adam steps
constexpr int kSeeds = 3;             // initialisations averaged
constexpr double kPi = 3.14159265358979323846;

struct Moons {
  at::Tensor x;  // [N, 2, 1, 1]
  at::Tensor y;  // [N, 1, 1] int64
};

// Two half circles with Gaussian noise (sklearn's make_moons layout), rotated
// by `degrees` about their centre.
Moons make_moons(double degrees, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::int64_t half = kPoints / 2;
  const at::Tensor t = at::rand({half}, gen, at::kDouble) * kPi;
  const at::Tensor upper = at::stack({t.cos(), t.sin()}, 1);
  const at::Tensor lower = at::stack({1 - t.cos(), 0.5 - t.sin()}, 1);
  at::Tensor x = at::cat({upper, lower}) + 0.1 * at::randn({2 * half, 2}, gen, at::kDouble);
  const double a = degrees * kPi / 180;
  const at::Tensor rotation = at::tensor({std::cos(a), -std::sin(a), std::sin(a), std::cos(a)}, at::kDouble).view({2, 2});
  const at::Tensor centre = at::tensor({0.5, 0.25}, at::kDouble);
  x = (x - centre).mm(rotation.t()) + centre;
  const at::Tensor y = at::cat({at::zeros({half}, at::kLong), at::ones({half}, at::kLong)});
  return {x.to(at::kFloat).view({-1, 2, 1, 1}), y.view({-1, 1, 1})};
}

struct MoonNetImpl : torch::nn::Module {
  torch::nn::Conv2d hidden1{nullptr}, hidden2{nullptr}, head{nullptr};
  MoonNetImpl() {
    hidden1 = register_module("hidden1", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 32, 1)));
    hidden2 = register_module("hidden2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 32, 1)));
    head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 2, 1)));
  }
  at::Tensor features(const at::Tensor& x) { return torch::relu(hidden2(torch::relu(hidden1(x)))); }
};
TORCH_MODULE(MoonNet);

// Target accuracy (held-out target points) after training from
// initialisation `seed` on labelled source moons and unlabelled rotated ones,
// with `method` (empty: source only) at loss weight 1; lambda follows the
// DANN paper's schedule 2 / (1 + exp(-10 p)) - 1.
double target_accuracy(const std::string& method_name, std::map<std::string, std::string> params, int seed) {
  torch::manual_seed(static_cast<std::uint64_t>(seed));
  const Moons source = make_moons(0, 1);
  const Moons target = make_moons(40, 2);
  const Moons target_test = make_moons(40, 3);
  MoonNet net;
  std::unique_ptr<Method> method;
  std::vector<at::Tensor> parameters = net->parameters();
  if (!method_name.empty()) {
    method = test_support::create(method_name, std::move(params), test_support::model_info(2, {"hidden2"}, 32));
    if (auto module = method->module()) {
      for (const auto& p : module->parameters()) parameters.push_back(p);
    }
  }
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(5e-3));
  const Batch source_batch{source.x, source.y};
  const Batch target_batch{target.x, {}};
  for (std::int64_t step = 0; step < kSteps; ++step) {
    optimizer.zero_grad();
    const at::Tensor fs = net->features(source.x);
    const at::Tensor ft = net->features(target.x);
    const at::Tensor ls = net->head(fs);
    const at::Tensor lt = net->head(ft);
    at::Tensor loss = torch::nn::functional::cross_entropy(ls, source.y);
    if (method) {
      const double p = static_cast<double>(step) / kSteps;
      const FeatureMap sf{{"hidden2", fs}}, tf{{"hidden2", ft}};
      const double lambda = 2 / (1 + std::exp(-10 * p)) - 1;
      loss = loss + method->compute_da_loss(StepInputs{source_batch, target_batch, ls, lt, sf, tf, lambda, step}).loss;
    }
    loss.backward();
    optimizer.step();
  }
  torch::NoGradGuard no_grad;
  const at::Tensor predicted = net->head(net->features(target_test.x)).argmax(1);
  return predicted.eq(target_test.y).to(at::kDouble).mean().item<double>();
}

double mean_target_accuracy(const std::string& method_name, const std::map<std::string, std::string>& params = {}) {
  double sum = 0;
  for (int seed = 0; seed < kSeeds; ++seed) sum += target_accuracy(method_name, params, seed);
  return sum / kSeeds;
}

class MethodSanity : public ::testing::Test {
 protected:
  // One intra-op thread: the same reduction order, so the same trajectories,
  // whatever the machine's core count.
  static void SetUpTestSuite() {
    at::set_num_threads(1);
    source_only_ = mean_target_accuracy("");
  }
  static double source_only_;
};
double MethodSanity::source_only_ = 0;

TEST_F(MethodSanity, SourceOnlyFailsOnTheRotatedMoons) { EXPECT_LT(source_only_, 0.75); }

TEST_F(MethodSanity, DannRecoversTheRotatedMoons) {
  EXPECT_GT(mean_target_accuracy("dann", {{"hidden_size", "64"}}), source_only_ + 0.08);
}

// With the former default kernels [0.5, 1, 2] the mean was 0.73: too wide
// for this problem; DAN's 2^-3..2^1 (the default now) gives 0.89.
TEST_F(MethodSanity, MmdRecoversTheRotatedMoons) { EXPECT_GT(mean_target_accuracy("mmd"), source_only_ + 0.08); }

TEST_F(MethodSanity, MccRecoversTheRotatedMoons) { EXPECT_GT(mean_target_accuracy("mcc"), source_only_ + 0.08); }

}  // namespace
}  // namespace da::methods
