#include "tile_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace da::tiles {

BandAccumulator::BandAccumulator(int64_t channels)
    : sum_(channels, 0),
      sum_squares_(channels, 0),
      count_(channels, 0),
      min_(channels, std::numeric_limits<double>::infinity()),
      max_(channels, -std::numeric_limits<double>::infinity()) {}

void BandAccumulator::add(const void* tile, io::PixelType type, int64_t pixels, const uint8_t* valid) {
  switch (type) {
    case io::PixelType::kUint8:
      add_typed(static_cast<const uint8_t*>(tile), pixels, valid);
      break;
    case io::PixelType::kUint16:
      add_typed(static_cast<const uint16_t*>(tile), pixels, valid);
      break;
    case io::PixelType::kFloat32:
      add_typed(static_cast<const float*>(tile), pixels, valid);
      break;
  }
}

template <typename T>
void BandAccumulator::add_typed(const T* tile, int64_t pixels, const uint8_t* valid) {
  for (int64_t band = 0; band < channels(); ++band) {
    const T* values = tile + band * pixels;
    if constexpr (std::is_integral_v<T>) {
      // Integers: exact 64-bit sums over blocks of pixels (a block's squares
      // stay far below 2^64), without branches, so the loop vectorises;
      // only the block totals go into the long double sums.
      constexpr int64_t kBlock = 1 << 16;
      for (int64_t start = 0; start < pixels; start += kBlock) {
        const int64_t end = std::min(pixels, start + kBlock);
        uint64_t sum = 0, squares = 0, count = 0;
        T low = std::numeric_limits<T>::max(), high = 0;
        for (int64_t i = start; i < end; ++i) {
          const uint64_t keep = valid == nullptr || valid[i] != 0;
          const uint64_t value = values[i] * keep;
          sum += value;
          squares += value * value;
          count += keep;
          low = keep ? std::min(low, values[i]) : low;
          high = keep ? std::max(high, values[i]) : high;
        }
        sum_[band] += sum;
        sum_squares_[band] += squares;
        count_[band] += static_cast<int64_t>(count);
        if (count > 0) {
          min_[band] = std::min(min_[band], static_cast<double>(low));
          max_[band] = std::max(max_[band], static_cast<double>(high));
        }
      }
    } else {
      for (int64_t i = 0; i < pixels; ++i) {
        const double value = static_cast<double>(values[i]);
        if ((valid != nullptr && valid[i] == 0) || !std::isfinite(value)) continue;
        sum_[band] += value;
        sum_squares_[band] += static_cast<long double>(value) * value;
        ++count_[band];
        min_[band] = std::min(min_[band], value);
        max_[band] = std::max(max_[band], value);
      }
    }
  }
}

std::vector<double> BandAccumulator::mean() const {
  std::vector<double> result(channels(), 0.0);
  for (int64_t band = 0; band < channels(); ++band) {
    if (count_[band] > 0) result[band] = static_cast<double>(sum_[band] / count_[band]);
  }
  return result;
}

std::vector<double> BandAccumulator::std() const {
  std::vector<double> result(channels(), 0.0);
  for (int64_t band = 0; band < channels(); ++band) {
    if (count_[band] == 0) continue;
    const long double mean = sum_[band] / count_[band];
    const long double variance = sum_squares_[band] / count_[band] - mean * mean;
    result[band] = static_cast<double>(std::sqrt(std::max<long double>(variance, 0)));
  }
  return result;
}

}  // namespace da::tiles
