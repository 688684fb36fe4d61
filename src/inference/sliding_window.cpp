#include "inference/sliding_window.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace da::inference {

std::vector<std::int64_t> window_starts(std::int64_t length, std::int64_t window, std::int64_t stride) {
  std::vector<std::int64_t> starts;
  for (std::int64_t s = 0; s + window < length; s += stride) starts.push_back(s);
  starts.push_back(length - window);
  return starts;
}

std::int64_t window_row_end(const std::vector<std::int64_t>& starts, std::size_t r, std::int64_t length) {
  return r + 1 < starts.size() ? starts[r + 1] : length;
}

std::size_t first_window_row_needed(const std::vector<std::int64_t>& starts, std::int64_t window, std::size_t r) {
  std::size_t first = r;
  while (first > 0 && starts[first - 1] + window > starts[r]) --first;
  return first;
}

at::Tensor blend_weights(std::int64_t window) {
  const auto i = at::arange(window, at::kDouble);
  const auto w = at::sin(M_PI * (i + 0.5) / static_cast<double>(window)).pow(2);
  return at::outer(w, w).to(at::kFloat);
}

void predict_sliding_windows(std::int64_t height, std::int64_t width, const SlidingWindowOptions& options,
                             const RowReader& read_rows, const WindowModel& model, const RowWriter& write_rows,
                             WindowRows part) {
  const std::int64_t window = options.window;
  if (window < 1 || options.overlap < 0 || options.overlap >= window || options.batch < 1) {
    throw std::invalid_argument("sliding window: need window >= 1, 0 <= overlap < window and batch >= 1, got window " +
                                std::to_string(window) + ", overlap " + std::to_string(options.overlap));
  }
  if (height < window || width < window) {
    throw std::invalid_argument("sliding window: the (padded) image of " + std::to_string(height) + "x" +
                                std::to_string(width) + " is smaller than the window " + std::to_string(window));
  }
  const std::int64_t stride = window - options.overlap;
  const auto rows = window_starts(height, window, stride);
  const auto cols = window_starts(width, window, stride);
  const at::Tensor weight = blend_weights(window);
  const std::size_t end = std::min(part.end, rows.size());
  if (part.begin >= end) return;
  const std::size_t first = first_window_row_needed(rows, window, part.begin);

  // The band of rows [band_y, band_y + window) that windows still add to.
  at::Tensor sum, weight_sum;
  std::int64_t band_y = 0;
  for (std::size_t r = first; r < end; ++r) {
    const std::int64_t y = rows[r];
    const at::Tensor strip = read_rows(y, window);  // [C, window, width]
    for (std::size_t c0 = 0; c0 < cols.size(); c0 += static_cast<std::size_t>(options.batch)) {
      const std::size_t c1 = std::min(cols.size(), c0 + static_cast<std::size_t>(options.batch));
      std::vector<at::Tensor> windows;
      for (std::size_t c = c0; c < c1; ++c) windows.push_back(strip.narrow(2, cols[c], window));
      const at::Tensor logits = model(at::stack(windows));
      if (!sum.defined()) {
        sum = at::zeros({logits.size(1), window, width}, at::kFloat);
        weight_sum = at::zeros({window, width}, at::kFloat);
      }
      if (r == first && c0 == 0) band_y = y;
      for (std::size_t c = c0; c < c1; ++c) {
        const std::int64_t shift = y - band_y;  // rows of this window below the band's top
        sum.narrow(1, shift, window).narrow(2, cols[c], window) += logits[c - c0] * weight;
        weight_sum.narrow(0, shift, window).narrow(1, cols[c], window) += weight;
      }
    }
    // Rows above the next window row are final: write them (those of the
    // part; the window rows before it only contribute) and move the band down.
    const std::int64_t next = window_row_end(rows, r, height);
    const std::int64_t done = next - band_y;
    if (r >= part.begin) write_rows(band_y, sum.narrow(1, 0, done) / weight_sum.narrow(0, 0, done));
    if (r + 1 < end) {
      // Keep the unfinished rows at the top of a zeroed band (the band holds window rows).
      const std::int64_t keep = window - done;
      at::Tensor next_sum = at::zeros_like(sum);
      at::Tensor next_weight = at::zeros_like(weight_sum);
      next_sum.narrow(1, 0, keep).copy_(sum.narrow(1, done, keep));
      next_weight.narrow(0, 0, keep).copy_(weight_sum.narrow(0, done, keep));
      sum = next_sum;
      weight_sum = next_weight;
      band_y = next;
    }
  }
}

}  // namespace da::inference
