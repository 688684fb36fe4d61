// The segmentation loss (cross-entropy with ignored pixels, with and without
// Dice) and the optimizers (SGD with Nesterov momentum, AdamW, two parameter
// groups) against PyTorch's values; the learning-rate schedule scales every
// group, gradient clipping, and the schedules' values.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "config/options.h"
#include "support/python_reference.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizer_setup.h"
#include "trainer/segmentation_loss.h"
#include "trainer/trainer_reference.h"

namespace da {
namespace {

using test::det;
using test::reference;

void expect_close(const at::Tensor& actual, const std::string& name, double tol = 1e-10) {
  test::expect_close(actual, reference().at(name), name, tol);
}

at::Tensor reference_masks() {
  auto m = (at::arange(2 * 4 * 4, at::kLong) * 7).remainder(3).reshape({2, 4, 4});
  m.index_put_({0, 0, at::indexing::Slice(0, 2)}, 255);
  return m;
}

void check_segmentation_loss(const std::string& tag, double dice_weight) {
  const auto logits = det({2, 3, 4, 4}, 0.4, 2.0).requires_grad_();
  const trainer::SegmentationLoss loss_fn{255, dice_weight};
  const auto loss = loss_fn(logits, reference_masks());
  loss.backward();
  expect_close(loss, tag + ".loss");
  expect_close(logits.grad(), tag + ".grad");
}

TEST(SegmentationLoss, CrossEntropyWithIgnoreMatchesPyTorch) { check_segmentation_loss("seg_ce", 0.0); }

TEST(SegmentationLoss, WithDiceMatchesPyTorch) { check_segmentation_loss("seg_ce_dice", 0.5); }

// Two steps over two parameter groups (the second with its own rate) with
// fixed gradients: the parameters equal PyTorch's.
void check_optimizer(const std::string& tag, const config::OptimizerOptions& options, double second_lr) {
  auto a = det({3, 2}, 0.1).requires_grad_();
  auto b = det({4}, 0.9).requires_grad_();
  trainer::OptimizerSetup setup(options, {a}, {methods::ParamGroup{"disc", {b}, second_lr, std::nullopt}});
  EXPECT_EQ(setup.group_names(), (std::vector<std::string>{"model", "disc"}));
  for (int step = 0; step < 2; ++step) {
    setup.optimizer().zero_grad();
    a.mutable_grad() = det({3, 2}, 1.3 + step).clone();  // not a view: zero_grad detaches in place
    b.mutable_grad() = det({4}, 2.1 + step, 0.5).clone();
    setup.optimizer().step();
  }
  expect_close(a, tag + ".a", 1e-9);
  expect_close(b, tag + ".b", 1e-9);
}

TEST(Optimizer, SgdNesterovWithGroupsMatchesPyTorch) {
  config::OptimizerOptions o;
  o.name = "sgd";
  o.lr = 0.1;
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 0.01;
  check_optimizer("sgd", o, 0.5);
}

TEST(Optimizer, AdamWWithGroupsMatchesPyTorch) {
  config::OptimizerOptions o;
  o.name = "adamw";
  o.lr = 0.01;
  o.betas = {0.8, 0.99};
  o.eps = 1e-6;
  o.weight_decay = 0.1;
  check_optimizer("adamw", o, 0.05);
}

TEST(Optimizer, ScheduleScalesEveryGroupAndClipping) {
  config::OptimizerOptions o;
  o.lr = 0.2;
  auto a = at::ones({2}, at::kDouble).requires_grad_();
  auto b = at::ones({1}, at::kDouble).requires_grad_();
  trainer::OptimizerSetup setup(o, {a}, {methods::ParamGroup{"disc", {b}, 1.0, std::nullopt}});
  setup.apply_schedule(trainer::LrSchedule{"poly", 0, 1.0, 0.0, 10}, 5);
  EXPECT_DOUBLE_EQ(setup.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(setup.lr(1), 0.5);
  a.mutable_grad() = at::full({2}, 3.0, at::kDouble);
  b.mutable_grad() = at::full({1}, 4.0, at::kDouble);  // global norm sqrt(9+9+16) = sqrt(34)
  EXPECT_NEAR(setup.clip_gradients(0.0).item<double>(), std::sqrt(34.0), 1e-12);
  EXPECT_NEAR(setup.clip_gradients(1.0).item<double>(), std::sqrt(34.0), 1e-12);
  EXPECT_NEAR(at::cat({a.grad(), b.grad()}).norm().item<double>(), 1.0, 1e-6);
}

TEST(LrSchedule, Values) {
  trainer::LrSchedule poly{"poly", 0, 0.9, 0.0, 100};
  EXPECT_DOUBLE_EQ(poly.factor(0), 1.0);
  EXPECT_DOUBLE_EQ(poly.factor(50), std::pow(0.5, 0.9));
  EXPECT_DOUBLE_EQ(poly.factor(100), 0.0);
  trainer::LrSchedule cosine{"cosine", 10, 0.9, 0.1, 110};
  EXPECT_DOUBLE_EQ(cosine.factor(0), 1.0 / 11.0);   // warm-up
  EXPECT_DOUBLE_EQ(cosine.factor(9), 10.0 / 11.0);
  EXPECT_DOUBLE_EQ(cosine.factor(10), 1.0);
  EXPECT_DOUBLE_EQ(cosine.factor(60), 0.1 + 0.9 * 0.5);
  EXPECT_NEAR(cosine.factor(110), 0.1, 1e-15);
  EXPECT_DOUBLE_EQ((trainer::LrSchedule{"constant", 0, 0.9, 0, 10}.factor(7)), 1.0);
}

}  // namespace
}  // namespace da
