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

// Window row r (windows starting at starts[r]) finishes the rows
// [starts[r], window_row_end(starts, r, length)): up to the next window row,
// the last one to the end of the axis. These bands partition the axis.
std::int64_t window_row_end(const std::vector<std::int64_t>& starts, std::size_t r, std::int64_t length);

// The first window row whose windows reach row starts[r]: finishing window
// rows r.. needs the windows of this one onwards, about window / stride - 1
// window rows back (one for an overlap up to half the window, none without
// overlap).
std::size_t first_window_row_needed(const std::vector<std::int64_t>& starts, std::int64_t window, std::size_t r);

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

// Window rows [begin, end) of the grid (window_starts over the height); the
// default is all of them.
struct WindowRows {
  std::size_t begin = 0;
  std::size_t end = static_cast<std::size_t>(-1);
};

// Runs `model` over the windows of an image of `height` x `width` (both >=
// the window) and writes the rows that window rows `part` finish exactly
// once, top to bottom (every row of the image by default). Only the windows
// reaching those rows are run, and each row is accumulated from the same
// windows in the same order as in a run over the whole image, so the rows of
// a part are bit-identical to the same rows of a whole run: parts can be
// computed apart (one per rank) and put together. Throws
// std::invalid_argument for a bad window/overlap or an image smaller than
// the window.
void predict_sliding_windows(std::int64_t height, std::int64_t width, const SlidingWindowOptions& options,
                             const RowReader& read_rows, const WindowModel& model, const RowWriter& write_rows,
                             WindowRows part = {});

}  // namespace da::inference
