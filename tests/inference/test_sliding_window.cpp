// The sliding window of scene maps: window starts cover an axis, blending
// weights are smooth bumps, a pointwise model stitches to the whole-image
// pass, strips of window rows computed apart are bit-identical to the whole
// run; and how scenes and strips of one scene are shared across ranks.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "inference/scene_split.h"
#include "inference/sliding_window.h"

namespace da::test {
namespace {

TEST(SlidingWindow, StartsCoverTheAxisAndWeightsAreSmoothBumps) {
  EXPECT_EQ(inference::window_starts(70, 16, 10), (std::vector<std::int64_t>{0, 10, 20, 30, 40, 50, 54}));
  EXPECT_EQ(inference::window_starts(16, 16, 10), (std::vector<std::int64_t>{0}));
  const at::Tensor w = inference::blend_weights(8);
  EXPECT_GT(w.min().item<float>(), 0.0F);
  EXPECT_TRUE(at::allclose(w, w.t()));
  EXPECT_TRUE(at::allclose(w, w.flip({0})));
  EXPECT_FLOAT_EQ(w.max().item<float>(), w[3][3].item<float>());
}

// A model without spatial context (a 1x1 convolution): every window gives
// each pixel the same logits, so the blended result must equal one pass
// over the whole image exactly, whatever the window, overlap and batch.
TEST(SlidingWindow, PointwiseModelStitchesToTheWholeImagePass) {
  torch::manual_seed(3);
  const at::Tensor image = at::rand({3, 70, 53});
  const at::Tensor weight = at::randn({4, 3, 1, 1});
  const auto model = [&](const at::Tensor& x) { return at::conv2d(x, weight); };
  const at::Tensor expected = model(image.unsqueeze(0))[0];
  for (const auto& [window, overlap, batch] :
       std::vector<std::array<std::int64_t, 3>>{{16, 6, 3}, {16, 0, 8}, {53, 10, 1}, {20, 19, 2}}) {
    at::Tensor out = at::full({4, 70, 53}, std::nan(""));
    std::int64_t next_row = 0;
    inference::predict_sliding_windows(
        70, 53, {window, overlap, batch}, [&](std::int64_t y, std::int64_t n) { return image.narrow(1, y, n); },
        model,
        [&](std::int64_t y, const at::Tensor& logits) {
          EXPECT_EQ(y, next_row);  // every row once, in order
          next_row = y + logits.size(1);
          out.narrow(1, y, logits.size(1)).copy_(logits);
        });
    EXPECT_EQ(next_row, 70);
    EXPECT_LT((out - expected).abs().max().item<double>(), 1e-5) << window << " " << overlap;
  }
  EXPECT_THROW(inference::predict_sliding_windows(10, 53, {16, 6, 3}, nullptr, nullptr, nullptr), std::invalid_argument);
}

// The rows that window rows [begin, end) finish, computed apart, are
// bit-identical to the same rows of a whole run (what lets ranks compute
// strips of one scene), with a model whose windows see their borders (a
// zero-padded 3x3 convolution), overlaps up to more than half the window
// (windows of two earlier window rows reach a row) and any cut into strips.
TEST(SlidingWindow, PartsOfTheGridAreBitIdenticalToTheWholeRun) {
  torch::manual_seed(5);
  const at::Tensor image = at::rand({3, 70, 53});
  const at::Tensor weight = at::randn({4, 3, 3, 3});
  const auto model = [&](const at::Tensor& x) { return at::conv2d(x, weight, {}, 1, 1); };
  const auto read = [&](std::int64_t y, std::int64_t n) { return image.narrow(1, y, n); };
  for (const auto& [window, overlap, batch] :
       std::vector<std::array<std::int64_t, 3>>{{16, 6, 3}, {16, 0, 2}, {20, 13, 2}, {32, 30, 4}}) {
    at::Tensor whole = at::empty({4, 70, 53});
    const auto keep = [&](std::int64_t y, const at::Tensor& l) { whole.narrow(1, y, l.size(1)).copy_(l); };
    inference::predict_sliding_windows(70, 53, {window, overlap, batch}, read, model, keep);
    const auto starts = inference::window_starts(70, window, window - overlap);
    for (const auto& [ranks, max_rows] : std::vector<std::pair<int, std::size_t>>{{2, 1}, {2, 3}, {3, 2}, {4, 100}}) {
      at::Tensor parts = at::full({4, 70, 53}, std::nan(""));
      for (const inference::Strip& strip : inference::plan_strips(starts.size(), ranks, max_rows)) {
        std::int64_t next = starts[strip.begin];
        inference::predict_sliding_windows(
            70, 53, {window, overlap, batch}, read, model,
            [&](std::int64_t y, const at::Tensor& l) {
              EXPECT_EQ(y, next);
              next = y + l.size(1);
              parts.narrow(1, y, l.size(1)).copy_(l);
            },
            {strip.begin, strip.end});
        EXPECT_EQ(next, inference::window_row_end(starts, strip.end - 1, 70));
      }
      EXPECT_TRUE(at::equal(parts, whole)) << window << " " << overlap << " " << ranks << " " << max_rows;
    }
  }
}

// The windows a part needs are exactly those reaching its first row.
TEST(SlidingWindow, FirstWindowRowNeededIsTheFirstThatReachesTheRow) {
  for (const auto& [length, window, stride] :
       std::vector<std::array<std::int64_t, 3>>{{70, 16, 10}, {70, 16, 16}, {70, 20, 7}, {64, 32, 2}, {16, 16, 4}}) {
    const auto starts = inference::window_starts(length, window, stride);
    for (std::size_t r = 0; r < starts.size(); ++r) {
      const std::size_t first = inference::first_window_row_needed(starts, window, r);
      for (std::size_t j = 0; j <= r; ++j) EXPECT_EQ(starts[j] + window > starts[r], j >= first) << j << " " << r;
    }
  }
}

// Whole scenes round-robin; the ones left over from whole rounds split
// across all ranks; strips cover every window row once, in balanced whole
// rounds of one strip per rank, none longer than asked.
TEST(SceneSplit, EveryRowIsOwnedByExactlyOneRank) {
  auto shares = inference::share_scenes(5, 2);
  ASSERT_EQ(shares.size(), 5U);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(shares[i].scene, i);
    EXPECT_EQ(shares[i].writer, static_cast<int>(i % 2));
    EXPECT_EQ(shares[i].split, i == 4);
  }
  shares = inference::share_scenes(1, 3);
  ASSERT_EQ(shares.size(), 1U);
  EXPECT_TRUE(shares[0].split);
  EXPECT_EQ(shares[0].writer, 0);
  for (const auto& share : inference::share_scenes(3, 1)) EXPECT_FALSE(share.split);

  EXPECT_EQ(inference::plan_strips(10, 2, 2).size(), 6U);  // 5 strips of 2 rows would leave a round half empty
  EXPECT_EQ(inference::plan_strips(10, 2, 100).size(), 2U);
  EXPECT_EQ(inference::plan_strips(3, 4, 1).size(), 3U);   // one window row each, a rank idle
  for (std::size_t rows = 1; rows <= 25; ++rows) {
    for (int ranks = 1; ranks <= 4; ++ranks) {
      for (std::size_t max_rows = 1; max_rows <= 7; ++max_rows) {
        const auto strips = inference::plan_strips(rows, ranks, max_rows);
        std::size_t next = 0, shortest = rows, longest = 0;
        for (std::size_t i = 0; i < strips.size(); ++i) {
          EXPECT_EQ(strips[i].begin, next);
          EXPECT_GT(strips[i].end, strips[i].begin);
          EXPECT_EQ(strips[i].rank, static_cast<int>(i % static_cast<std::size_t>(ranks)));
          shortest = std::min(shortest, strips[i].end - strips[i].begin);
          longest = std::max(longest, strips[i].end - strips[i].begin);
          next = strips[i].end;
        }
        EXPECT_EQ(next, rows);
        EXPECT_LE(longest, max_rows);
        EXPECT_LE(longest - shortest, 1U);
        EXPECT_TRUE(strips.size() % static_cast<std::size_t>(ranks) == 0 || strips.size() == rows);
      }
    }
  }
}

}  // namespace
}  // namespace da::test
