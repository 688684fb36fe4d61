// Sliding-window prediction over an image larger than the model's window,
// independent of where the pixels come from: the caller reads rows of the
// (already padded) image and receives finished rows of blended logits, so
// memory is bounded by one band of windows (window rows x image width), not
// by the image.
//
// Windows step by `window - overlap` and the last window of each row and
// column is aligned with the image's end, so every pixel is covered. Each
// window's logits are weighted by a separable sin^2 bump (largest in the
// middle, small but positive at the edges) and every pixel's logits are the
// weighted mean over the windows covering it: no seams at window borders,
// and a pixel covered by one window keeps that window's logits exactly.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace da::inference {

// Window origins along an axis of `length` (>= window): 0, stride, ..., and
// length - window last.
std::vector<std::int64_t> window_starts(std::int64_t length, std::int64_t window, std::int64_t stride);

// [window, window] float weights: w(i) w(j), w(i) = sin^2(pi (i + 0.5) / window).
at::Tensor blend_weights(std::int64_t window);

struct SlidingWindowOptions {
  std::int64_t window = 256;
  std::int64_t overlap = 32;
  std::int64_t batch = 8;  // windows per model call
};

// Rows [y, y + n) of the image, float [C, n, width].
using RowReader = std::function<at::Tensor(std::int64_t y, std::int64_t n)>;
// Windows [B, C, window, window] -> logits [B, K, window, window] (float, CPU).
using WindowModel = std::function<at::Tensor(const at::Tensor& windows)>;
// Finished rows [y, y + n) of blended logits, float [K, n, width], in order.
using RowWriter = std::function<void(std::int64_t y, const at::Tensor& logits)>;

// Runs `model` over every window of an image of `height` x `width` (both >=
// the window) and writes every row exactly once, top to bottom. Throws
// std::invalid_argument for a bad window/overlap or an image smaller than
// the window.
void predict_sliding_windows(std::int64_t height, std::int64_t width, const SlidingWindowOptions& options,
                             const RowReader& read_rows, const WindowModel& model, const RowWriter& write_rows);

}  // namespace da::inference
