// Test-time augmentation: the mean softmax over the flips or the eight
// symmetries of the square, against the same mean written out here with
// another parametrisation of the group, on a model whose logits depend on
// position; a model that treats every pixel alike gives the same
// probabilities with and without it.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "inference/inference_fixture.h"
#include "inference/sliding_window.h"
#include "inference/tta.h"

namespace da::test {
namespace {

// Windows [2, 3, 12, 12] and a model whose logits depend on where a pixel
// is (a ramp along x and y with per-class slopes), so that every symmetry
// of the window changes them.
at::Tensor tta_windows() {
  torch::manual_seed(11);
  return at::rand({2, 3, 12, 12});
}

at::Tensor positional_model(const at::Tensor& x) {
  const at::Tensor weight = at::tensor({0.5F, -1.0F, 2.0F, 1.5F, 0.3F, -0.7F, -2.0F, 1.0F, 0.2F}).view({3, 3, 1, 1});
  const at::Tensor ramp_x = at::linspace(0, 1, x.size(3)).view({1, 1, 1, -1});
  const at::Tensor ramp_y = at::linspace(0, 1, x.size(2)).view({1, 1, -1, 1});
  const at::Tensor slope_x = at::tensor({3.0F, -1.0F, 0.0F}).view({1, 3, 1, 1});
  const at::Tensor slope_y = at::tensor({0.0F, 2.0F, -2.5F}).view({1, 3, 1, 1});
  return at::conv2d(x, weight) + slope_x * ramp_x + slope_y * (ramp_y * ramp_y);
}

// The mean softmax over the symmetries, written out here with another
// parametrisation of the same group: an optional transpose, then flips.
at::Tensor mean_probability(const at::Tensor& x, bool with_transpose) {
  at::Tensor sum = at::zeros({x.size(0), 3, x.size(2), x.size(3)});
  int count = 0;
  for (const bool transpose : {false, true}) {
    if (transpose && !with_transpose) continue;
    for (const std::vector<std::int64_t>& flip : std::vector<std::vector<std::int64_t>>{{}, {2}, {3}, {2, 3}}) {
      at::Tensor t = transpose ? x.transpose(2, 3) : x;
      if (!flip.empty()) t = t.flip(flip);
      at::Tensor y = positional_model(t.contiguous());
      if (!flip.empty()) y = y.flip(flip);
      if (transpose) y = y.transpose(2, 3);
      sum += at::softmax(y, 1);
      ++count;
    }
  }
  return sum / count;
}

TEST(Tta, AveragesTheSoftmaxOverTheSymmetries) {
  const at::Tensor x = tta_windows();
  EXPECT_TRUE(at::equal(inference::with_tta(positional_model, inference::Tta::kNone)(x), positional_model(x)));
  const at::Tensor d4 = inference::with_tta(positional_model, inference::Tta::kD4)(x);
  const at::Tensor flips = inference::with_tta(positional_model, inference::Tta::kFlips)(x);
  EXPECT_LT((d4.exp() - mean_probability(x, true)).abs().max().item<double>(), 1e-6);
  EXPECT_LT((flips.exp() - mean_probability(x, false)).abs().max().item<double>(), 1e-6);
  // The augmentation matters for this model: the mean is not the plain softmax.
  EXPECT_GT((d4.exp() - at::softmax(positional_model(x), 1)).abs().max().item<double>(), 0.05);
  EXPECT_GT((d4 - flips).abs().max().item<double>(), 0.01);
  EXPECT_EQ(inference::parse_tta("d4"), inference::Tta::kD4);
  EXPECT_EQ(error_of([] { inference::parse_tta("d8"); }),
            "unknown test-time augmentation 'd8', valid ones are 'none', 'flips' or 'd4'");
}

// A model that treats every pixel alike (a 1x1 convolution) commutes with
// the symmetries: with augmentation the sliding window's probabilities are
// those without.
TEST(Tta, EquivariantModelGivesTheSameProbabilities) {
  torch::manual_seed(3);
  const at::Tensor image = at::rand({3, 40, 37});
  const at::Tensor weight = at::randn({4, 3, 1, 1});
  const inference::WindowModel model = [&](const at::Tensor& x) { return at::conv2d(x, weight); };
  auto probabilities = [&](const inference::WindowModel& m) {
    at::Tensor out = at::empty({4, 40, 37});
    inference::predict_sliding_windows(
        40, 37, {16, 6, 3}, [&](std::int64_t y, std::int64_t n) { return image.narrow(1, y, n); }, m,
        [&](std::int64_t y, const at::Tensor& l) { out.narrow(1, y, l.size(1)).copy_(l); });
    return at::softmax(out, 0);
  };
  const at::Tensor plain = probabilities(model);
  for (const auto tta : {inference::Tta::kFlips, inference::Tta::kD4}) {
    EXPECT_LT((probabilities(inference::with_tta(model, tta)) - plain).abs().max().item<double>(), 1e-6);
  }
}

}  // namespace
}  // namespace da::test
