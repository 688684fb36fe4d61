// Alignment methods on small problems where they are known to help. Points
// are 1x1 "images" with two bands, so the methods run unchanged on
// [B, C, 1, 1] feature maps and logits. Each method, with its defaults and
// the same training, must recover a clear margin of what a network trained
// on the source alone loses on the target, on average over three
// initialisations (single runs of the adversarial game vary by 0.1 and more).
//
// Rotated moons: inter-twinning moons whose target is the source rotated by
// 40 degrees (the toy shift of the DANN paper, Ganin et al. 2016, sec. 5.1);
// DANN, MMD and MCC. Second-order alignment does not undo a rotation of two
// moons (CORAL measured 0.64 against source-only's 0.66).
//
// Inverted band: two redundant noisy bands that both carry the class; the
// target's sensor inverts the second one. Each band's marginal distribution
// is unchanged (it is symmetric), only the bands' correlation changes sign:
// a purely second-order shift, the one CORAL (Sun & Saenko 2016) aligns. As
// in Deep CORAL, whose loss is on fc8, a linear layer's output, the aligned
// features are linear in the input; the only features whose covariance is
// the same in both domains then ignore one band, and the classification
// loss keeps the clearer first one.
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

struct Points {
  at::Tensor x;  // [N, 2, 1, 1]
  at::Tensor y;  // [N, 1, 1] int64
};

// Labelled source, unlabelled target for training, held-out target for the
// accuracy.
struct Problem {
  Points source, target, target_test;
};

// Two half circles with Gaussian noise (sklearn's make_moons layout), rotated
// by `degrees` about their centre.
Points make_moons(double degrees, std::uint64_t seed) {
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

Problem rotated_moons() { return {make_moons(0, 1), make_moons(40, 2), make_moons(40, 3)}; }

// Class c in {-1, +1}: band 1 = c + N(0, 0.5^2), band 2 = c + N(0, 0.7^2),
// band 2 negated when `inverted`.
Points make_bands(bool inverted, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::int64_t half = kPoints / 2;
  const at::Tensor y = at::cat({at::zeros({half}, at::kLong), at::ones({half}, at::kLong)});
  const at::Tensor sign = 2 * y.to(at::kDouble) - 1;
  const at::Tensor band1 = sign + 0.5 * at::randn({2 * half}, gen, at::kDouble);
  at::Tensor band2 = sign + 0.7 * at::randn({2 * half}, gen, at::kDouble);
  if (inverted) band2 = -band2;
  return {at::stack({band1, band2}, 1).to(at::kFloat).view({-1, 2, 1, 1}), y.view({-1, 1, 1})};
}

Problem inverted_band() { return {make_bands(false, 1), make_bands(true, 2), make_bands(true, 3)}; }

// Two hidden 1x1 convolutions, ReLU after each unless `linear`.
struct PointNetImpl : torch::nn::Module {
  torch::nn::Conv2d hidden1{nullptr}, hidden2{nullptr}, head{nullptr};
  bool linear;
  explicit PointNetImpl(bool linear_features) : linear(linear_features) {
    hidden1 = register_module("hidden1", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 32, 1)));
    hidden2 = register_module("hidden2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 32, 1)));
    head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 2, 1)));
  }
  at::Tensor features(const at::Tensor& x) {
    return linear ? hidden2(hidden1(x)) : torch::relu(hidden2(torch::relu(hidden1(x))));
  }
};
TORCH_MODULE(PointNet);

// Target accuracy (held-out target points) after training from
// initialisation `seed` on the labelled source and the unlabelled target,
// with `method` (empty: source only) at loss weight 1; lambda follows the
// DANN paper's schedule 2 / (1 + exp(-10 p)) - 1.
double target_accuracy(const Problem& problem, bool linear_features, const std::string& method_name,
                       std::map<std::string, std::string> params, int seed) {
  torch::manual_seed(static_cast<std::uint64_t>(seed));
  const Points& source = problem.source;
  const Points& target = problem.target;
  PointNet net(linear_features);
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
  const at::Tensor predicted = net->head(net->features(problem.target_test.x)).argmax(1);
  return predicted.eq(problem.target_test.y).to(at::kDouble).mean().item<double>();
}

double mean_target_accuracy(const Problem& problem, bool linear_features, const std::string& method_name,
                            const std::map<std::string, std::string>& params = {}) {
  double sum = 0;
  for (int seed = 0; seed < kSeeds; ++seed) sum += target_accuracy(problem, linear_features, method_name, params, seed);
  return sum / kSeeds;
}

double rotated_moons_accuracy(const std::string& method_name, const std::map<std::string, std::string>& params = {}) {
  return mean_target_accuracy(rotated_moons(), /*linear_features=*/false, method_name, params);
}

double inverted_band_accuracy(const std::string& method_name) {
  return mean_target_accuracy(inverted_band(), /*linear_features=*/true, method_name);
}

class MethodSanity : public ::testing::Test {
 protected:
  // One intra-op thread: the same reduction order, so the same trajectories,
  // whatever the machine's core count.
  static void SetUpTestSuite() {
    at::set_num_threads(1);
    source_only_moons_ = rotated_moons_accuracy("");
    source_only_bands_ = inverted_band_accuracy("");
  }
  static double source_only_moons_, source_only_bands_;
};
double MethodSanity::source_only_moons_ = 0;
double MethodSanity::source_only_bands_ = 0;

TEST_F(MethodSanity, SourceOnlyFailsOnTheRotatedMoons) { EXPECT_LT(source_only_moons_, 0.75); }

TEST_F(MethodSanity, DannRecoversTheRotatedMoons) {
  EXPECT_GT(rotated_moons_accuracy("dann", {{"hidden_size", "64"}}), source_only_moons_ + 0.08);
}

// With the former default kernels [0.5, 1, 2] the mean was 0.73: too wide
// for this problem; DAN's 2^-3..2^1 (the default now) gives 0.89.
TEST_F(MethodSanity, MmdRecoversTheRotatedMoons) { EXPECT_GT(rotated_moons_accuracy("mmd"), source_only_moons_ + 0.08); }

TEST_F(MethodSanity, MccRecoversTheRotatedMoons) { EXPECT_GT(rotated_moons_accuracy("mcc"), source_only_moons_ + 0.08); }

// Source-only weighs both bands, so the inverted one cancels part of the
// evidence on the target.
TEST_F(MethodSanity, SourceOnlyFailsOnTheInvertedBand) { EXPECT_LT(source_only_bands_, 0.75); }

TEST_F(MethodSanity, CoralRecoversTheInvertedBand) {
  EXPECT_GT(inverted_band_accuracy("coral"), source_only_bands_ + 0.08);
}

}  // namespace
}  // namespace da::methods
