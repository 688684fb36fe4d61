// Per-band statistics (mean, std, min, max) accumulated over [C, H, W] tiles
// of any archive pixel type.
#pragma once

#include <cstdint>
#include <vector>

#include "io/pixel_type.h"

namespace da::tiles {

class BandAccumulator {
 public:
  explicit BandAccumulator(int64_t channels);

  // Adds one tile of `pixels` values per band. With `valid` ([pixels]), only
  // pixels whose entry is non-zero count; NaN and infinite values never do.
  void add(const void* tile, io::PixelType type, int64_t pixels, const uint8_t* valid = nullptr);

  int64_t channels() const { return static_cast<int64_t>(sum_.size()); }
  int64_t count(int64_t band) const { return count_[band]; }
  std::vector<double> mean() const;
  std::vector<double> std() const;  // population standard deviation
  double min(int64_t band) const { return min_[band]; }
  double max(int64_t band) const { return max_[band]; }

 private:
  template <typename T>
  void add_typed(const T* tile, int64_t pixels, const uint8_t* valid);

  // Sums in long double: a few hundred million uint16 squares stay exact enough.
  std::vector<long double> sum_;
  std::vector<long double> sum_squares_;
  std::vector<int64_t> count_;
  std::vector<double> min_;
  std::vector<double> max_;
};

}  // namespace da::tiles
