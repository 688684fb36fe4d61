// Two inter-twinning half circles with Gaussian noise (sklearn's make_moons
// layout), the toy shift of the DANN paper (Ganin et al. 2016, sec. 5.1)
// when the target is rotated: the sanity checks of the methods and of AdaBN
// train on them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace da::test {

struct LabelledPoints {
  at::Tensor x;  // float
  at::Tensor y;  // int64 classes 0 / 1
};

// `points` points (half of each class) rotated by `degrees` about the moons'
// centre: x [N, 2], y [N].
LabelledPoints two_moons(double degrees, std::uint64_t seed, std::int64_t points);

// Moons as `tiles` images of size x size pixels: the classes fill squares of
// block x block pixels (each square's class drawn with probability 1/2), and
// each pixel is a point of its class: x [tiles, 2, size, size],
// y [tiles, size, size]. size must be a multiple of block.
LabelledPoints two_moon_tiles(double degrees, std::uint64_t seed, std::int64_t tiles, std::int64_t size,
                              std::int64_t block = 1);

}  // namespace da::test
