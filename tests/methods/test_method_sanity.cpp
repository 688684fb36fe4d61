// Every method on a small problem where it is known to help. Points are
// 1x1 "images" with two bands, so the methods run unchanged on [B, C, 1, 1]
// feature maps and logits; the methods that need images (ADVENT's
// discriminator, FDA's spectra) get the same points laid out as 32x32 tiles.
// Each method, with its defaults and the same training, must recover a clear
// margin of what a network trained on the source alone loses on the target,
// on average over five initialisations (single runs of the adversarial game
// vary by 0.1 and more). AdaBN, which changes BatchNorm statistics rather
// than training, has its check with the models (tests/models/test_adabn.cpp).
//
// Rotated moons: inter-twinning moons whose target is the source rotated by
// 40 degrees (the toy shift of the DANN paper, Ganin et al. 2016, sec. 5.1);
// DANN, CDAN, MSTN, DANN + BSP, MMD, MCC, entropy minimisation, pseudo-labels
// (fixed and class-balanced thresholds) and, as tiles, ADVENT's adversarial
// variant. Second-order alignment does not undo a rotation of two moons
// (CORAL measured 0.64 against source-only's 0.66).
//
// Lit moon tiles: the target is the source with its second band brighter
// (+ 0.8), the appearance shift FDA (Yang & Soatto 2020) transfers: each
// source tile takes a target tile's low-frequency amplitude.
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
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "method_test_support.h"
#include "support/two_moons.h"

namespace da::methods {
namespace {

constexpr std::int64_t kPoints = 300;  // per domain
constexpr std::int64_t kSteps = 1000;  // full-batch Adam steps
constexpr int kSeeds = 5;              // initialisations averaged
// The accuracy of a run: the mean of the held-out target accuracy measured
// every kEvalEvery steps over the last kEvalSteps. The adversarial game still
// moves at the end of training, and the state at one step depends on where
// its oscillation stops, which differs between CPUs (their vector kernels
// round differently, and the game amplifies that); the mean over the end of
// training does not.
constexpr std::int64_t kEvalSteps = 200;
constexpr std::int64_t kEvalEvery = 10;

struct Points {
  at::Tensor x;  // [N, 2, 1, 1]
  at::Tensor y;  // [N, 1, 1] int64
};

// Labelled source, unlabelled target for training, held-out target for the
// accuracy.
struct Problem {
  Points source, target, target_test;
};

// The moons as 1x1 images: x [N, 2, 1, 1], y [N, 1, 1].
Points make_moons(double degrees, std::uint64_t seed) {
  const test::LabelledPoints p = test::two_moons(degrees, seed, kPoints);
  return {p.x.view({-1, 2, 1, 1}), p.y.view({-1, 1, 1})};
}

Problem rotated_moons() { return {make_moons(0, 1), make_moons(40, 2), make_moons(40, 3)}; }

// The moons as 4 tiles of 32x32 pixels, one point each, the second band
// brighter by `brighter` (an illumination change of one band). For the
// methods that need images: ADVENT's discriminator (five stride-2
// convolutions) and FDA's spectra.
Points make_moon_tiles(double degrees, double brighter, std::uint64_t seed) {
  const test::LabelledPoints p = test::two_moon_tiles(degrees, seed, /*tiles=*/4, /*size=*/32);
  const at::Tensor offset = at::tensor({0.0, brighter}, at::kFloat).view({1, 2, 1, 1});
  return {p.x + offset, p.y};
}

Problem rotated_moon_tiles() {
  return {make_moon_tiles(0, 0, 1), make_moon_tiles(40, 0, 2), make_moon_tiles(40, 0, 3)};
}

// Not rotated: the target is the source seen under other lighting, its second
// band brighter by 0.8 (about half the moons' height), which moves the lower moon
// onto the upper one.
Problem lit_moon_tiles() {
  return {make_moon_tiles(0, 0, 1), make_moon_tiles(0, 0.8, 2), make_moon_tiles(0, 0.8, 3)};
}

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

// One method of a recipe, with its parameters and loss weight.
struct MethodUse {
  std::string name;
  std::map<std::string, std::string> params;
  double loss_weight = 1.0;
};
using Recipe = std::vector<MethodUse>;  // empty: source only

constexpr std::int64_t kStepsPerEpoch = 100;  // epoch hooks (CBST's thresholds) every this many steps

// Target accuracy (held-out target points) after training from
// initialisation `seed` on the labelled source and the unlabelled target
// with the methods of `recipe`, as the trainer runs them: input transforms
// before the forward, the losses' weighted sum, epoch hooks; lambda follows
// the DANN paper's schedule 2 / (1 + exp(-10 p)) - 1.
double target_accuracy(const Problem& problem, bool linear_features, const Recipe& recipe, int seed) {
  torch::manual_seed(static_cast<std::uint64_t>(seed));
  PointNet net(linear_features);
  std::vector<std::unique_ptr<Method>> methods;
  std::vector<at::Tensor> parameters = net->parameters();
  for (const MethodUse& use : recipe) {
    methods.push_back(test_support::create(use.name, use.params, test_support::model_info(2, {"hidden2"}, 32)));
    if (auto module = methods.back()->module()) {
      for (const auto& p : module->parameters()) parameters.push_back(p);
    }
    methods.back()->on_fit_start();
  }
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(5e-3));
  double accuracy = 0;  // summed over the evaluations
  for (std::int64_t step = 0; step < kSteps; ++step) {
    const std::int64_t epoch = step / kStepsPerEpoch;
    if (step % kStepsPerEpoch == 0) {
      for (auto& method : methods) method->on_epoch_start(epoch);
    }
    Batch source{problem.source.x, problem.source.y};
    Batch target{problem.target.x, {}};
    for (auto& method : methods) method->transform_batches(source, target, step);
    optimizer.zero_grad();
    const at::Tensor fs = net->features(source.image);
    const at::Tensor ft = net->features(target.image);
    const at::Tensor ls = net->head(fs);
    const at::Tensor lt = net->head(ft);
    at::Tensor loss = torch::nn::functional::cross_entropy(ls, source.mask);
    const double p = static_cast<double>(step) / kSteps;
    const double lambda = 2 / (1 + std::exp(-10 * p)) - 1;
    const FeatureMap sf{{"hidden2", fs}}, tf{{"hidden2", ft}};
    for (std::size_t m = 0; m < methods.size(); ++m) {
      const StepInputs inputs{source, target, ls, lt, sf, tf, lambda, step};
      loss = loss + recipe[m].loss_weight * methods[m]->compute_da_loss(inputs).loss;
    }
    loss.backward();
    optimizer.step();
    if ((step + 1) % kStepsPerEpoch == 0) {
      for (auto& method : methods) method->on_epoch_end(epoch);
    }
    if (step + 1 > kSteps - kEvalSteps && (step + 1) % kEvalEvery == 0) {
      torch::NoGradGuard no_grad;
      const at::Tensor predicted = net->head(net->features(problem.target_test.x)).argmax(1);
      accuracy += predicted.eq(problem.target_test.y).to(at::kDouble).mean().item<double>();
    }
  }
  return accuracy / static_cast<double>(kEvalSteps / kEvalEvery);
}

// The mean over kSeeds initialisations; prints each (the README quotes them).
double mean_target_accuracy(const Problem& problem, bool linear_features, const Recipe& recipe) {
  std::string line;
  for (const MethodUse& use : recipe) {
    std::string params;
    for (const auto& [key, value] : use.params) params += (params.empty() ? "" : ", ") + key + " " + value;
    line += (line.empty() ? "" : " + ") + use.name + (params.empty() ? "" : " (" + params + ")");
  }
  line = (line.empty() ? "source only" : line) + ": target accuracy";
  double sum = 0;
  for (int seed = 0; seed < kSeeds; ++seed) {
    const double accuracy = target_accuracy(problem, linear_features, recipe, seed);
    line += " " + std::to_string(accuracy);
    sum += accuracy;
  }
  std::cout << line << ", mean " << sum / kSeeds << "\n";
  return sum / kSeeds;
}

// The problems, each with the network it trains: ReLU features, except on
// the inverted band (linear, as explained above).
enum class Shift { kRotatedMoons, kInvertedBand, kRotatedMoonTiles, kLitMoonTiles };

double accuracy_on(Shift shift, const Recipe& recipe) {
  switch (shift) {
    case Shift::kRotatedMoons:
      return mean_target_accuracy(rotated_moons(), /*linear_features=*/false, recipe);
    case Shift::kInvertedBand:
      return mean_target_accuracy(inverted_band(), /*linear_features=*/true, recipe);
    case Shift::kRotatedMoonTiles:
      return mean_target_accuracy(rotated_moon_tiles(), /*linear_features=*/false, recipe);
    case Shift::kLitMoonTiles:
      return mean_target_accuracy(lit_moon_tiles(), /*linear_features=*/false, recipe);
  }
  return 0;
}

// Source only on `shift`, trained once per process.
double source_only(Shift shift) {
  static std::map<Shift, double> done;
  if (!done.count(shift)) done[shift] = accuracy_on(shift, {});
  return done[shift];
}

// What each test asks: source-only fails (below kFails), the method recovers
// at least kMargin of the target accuracy on average. The weakest gain,
// CBST's (+0.07: its 20 % per class pseudo-labels fewer points than the
// fixed 0.9 threshold), is still five standard errors of its mean.
constexpr double kFails = 0.75;
constexpr double kMargin = 0.05;

void expect_recovers(Shift shift, const Recipe& recipe) {
  const double baseline = source_only(shift);
  EXPECT_LT(baseline, kFails) << "source only";
  EXPECT_GT(accuracy_on(shift, recipe), baseline + kMargin);
}

class MethodSanity : public ::testing::Test {
 protected:
  // One intra-op thread: the same reduction order whatever the core count.
  static void SetUpTestSuite() { at::set_num_threads(1); }
};

TEST_F(MethodSanity, DannRecoversTheRotatedMoons) {
  expect_recovers(Shift::kRotatedMoons, {{"dann", {{"hidden_size", "64"}}}});
}

TEST_F(MethodSanity, CdanRecoversTheRotatedMoons) {
  expect_recovers(Shift::kRotatedMoons, {{"cdan", {{"hidden_size", "64"}}}});
}

TEST_F(MethodSanity, MstnRecoversTheRotatedMoons) {
  expect_recovers(Shift::kRotatedMoons, {{"mstn", {{"hidden_size", "64"}}}});
}

// BSP is a regulariser of an adversarial method (the paper adds it to DANN
// with weight 1e-4): with it DANN still recovers the moons.
TEST_F(MethodSanity, DannWithBspRecoversTheRotatedMoons) {
  expect_recovers(Shift::kRotatedMoons, {{"dann", {{"hidden_size", "64"}}}, {"bsp", {}, 1e-4}});
}

// With the former default kernels [0.5, 1, 2] MMD did not recover the moons:
// too wide for this problem; DAN's 2^-3..2^1 (the default now) do.
TEST_F(MethodSanity, MmdRecoversTheRotatedMoons) { expect_recovers(Shift::kRotatedMoons, {{"mmd", {}}}); }

TEST_F(MethodSanity, MccRecoversTheRotatedMoons) { expect_recovers(Shift::kRotatedMoons, {{"mcc", {}}}); }

TEST_F(MethodSanity, EntropyRecoversTheRotatedMoons) { expect_recovers(Shift::kRotatedMoons, {{"entropy", {}}}); }

TEST_F(MethodSanity, PseudoLabelRecoversTheRotatedMoons) {
  expect_recovers(Shift::kRotatedMoons, {{"pseudo_label", {}}});
}

TEST_F(MethodSanity, CbstRecoversTheRotatedMoons) {
  expect_recovers(Shift::kRotatedMoons, {{"pseudo_label", {{"class_balanced", "true"}}}});
}

// Source-only weighs both bands, so the inverted one cancels part of the
// evidence on the target.
TEST_F(MethodSanity, CoralRecoversTheInvertedBand) { expect_recovers(Shift::kInvertedBand, {{"coral", {}}}); }

// ndf 8 instead of 64: the same architecture, 60 times less work.
TEST_F(MethodSanity, AdventAdversarialRecoversTheRotatedMoonTiles) {
  expect_recovers(Shift::kRotatedMoonTiles, {{"advent_adversarial", {{"ndf", "8"}}}});
}

TEST_F(MethodSanity, FdaRecoversTheLitMoonTiles) { expect_recovers(Shift::kLitMoonTiles, {{"fda", {}}}); }

}  // namespace
}  // namespace da::methods
