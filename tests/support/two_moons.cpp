#include "support/two_moons.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace da::test {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Class 0 on the upper half circle, class 1 on the lower one, at angles `t`
// in [0, pi); `noise` [N, 2] added; rotated by `degrees` about the centre.
at::Tensor place_on_moons(const at::Tensor& t, const at::Tensor& lower, const at::Tensor& noise, double degrees) {
  const at::Tensor upper_xy = at::stack({t.cos(), t.sin()}, 1);
  const at::Tensor lower_xy = at::stack({1 - t.cos(), 0.5 - t.sin()}, 1);
  const at::Tensor x = at::where(lower.unsqueeze(1), lower_xy, upper_xy) + noise;
  const double a = degrees * kPi / 180;
  const at::Tensor rotation = at::tensor({std::cos(a), -std::sin(a), std::sin(a), std::cos(a)}, at::kDouble).view({2, 2});
  const at::Tensor centre = at::tensor({0.5, 0.25}, at::kDouble);
  return ((x - centre).mm(rotation.t()) + centre).to(at::kFloat);
}

}  // namespace

LabelledPoints two_moons(double degrees, std::uint64_t seed, std::int64_t points) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::int64_t half = points / 2;
  const at::Tensor t = at::rand({half}, gen, at::kDouble) * kPi;
  const at::Tensor noise = 0.1 * at::randn({2 * half, 2}, gen, at::kDouble);
  const at::Tensor y = at::cat({at::zeros({half}, at::kLong), at::ones({half}, at::kLong)});
  return {place_on_moons(at::cat({t, t}), y.to(at::kBool), noise, degrees), y};
}

LabelledPoints two_moon_tiles(double degrees, std::uint64_t seed, std::int64_t tiles, std::int64_t size,
                              std::int64_t block) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::int64_t blocks = size / block;
  const at::Tensor y = at::rand({tiles, blocks, blocks}, gen, at::kDouble)
                           .lt(0.5)
                           .repeat_interleave(block, 1)
                           .repeat_interleave(block, 2)
                           .to(at::kLong);
  const std::int64_t n = tiles * size * size;
  const at::Tensor t = at::rand({n}, gen, at::kDouble) * kPi;
  const at::Tensor noise = 0.1 * at::randn({n, 2}, gen, at::kDouble);
  const at::Tensor x = place_on_moons(t, y.flatten().to(at::kBool), noise, degrees);
  return {x.view({tiles, size, size, 2}).permute({0, 3, 1, 2}).contiguous(), y};
}

}  // namespace da::test
