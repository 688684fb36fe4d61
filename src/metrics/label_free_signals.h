// Model-selection signals from target validation predictions alone, for users
// whose target domain has no labels: callbacks.checkpoint.monitor and early
// stopping can watch them as they watch iou/target_val.
//   unsup/target_entropy   mean per-pixel prediction entropy over the target
//                          validation tiles, divided by log K (0..1; lower is
//                          more confident)
//   unsup/class_prior_gap  total variation distance between the target's
//                          predicted class proportions and the source
//                          validation labels' (0..1; lower is better)
//   unsup/snd              Soft Neighborhood Density (Saito et al., "Tune it
//                          the Right Way", ICCV 2021) of a fixed sample of
//                          target pixels' softmax outputs (higher is better)
// Every rank adds its own tiles into one float64 tensor; its sum over ranks
// (one all-reduce) is what one process would have, so the scores do not
// depend on the number of ranks.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace da::metrics {

// SND's temperature in the authors' code and paper (tau = 0.05).
inline constexpr double kSndTemperature = 0.05;
// SND compares every sampled pixel with every other: the sample is capped so
// that its similarity matrix stays small (4096^2 floats, 64 MiB).
inline constexpr std::int64_t kSndMaxSamples = 4096;

class LabelFreeSignals {
 public:
  // `tiles`: the size of the validation set (over all ranks); `tile_pixels`:
  // H * W of each tile. SND samples the same pixels of the same tiles however
  // the set is sharded: evenly spaced pixels (raster order) of every
  // ceil(tiles / kSndMaxSamples)-th tile, at most kSndMaxSamples in all.
  LabelFreeSignals(std::int64_t classes, std::int64_t tiles, std::int64_t tile_pixels);

  // Logits [B, K, H, W] of the validation tiles `tiles` (their indices).
  void add(const at::Tensor& logits, const std::vector<std::int64_t>& tiles);

  // Everything added so far, float64 on the CPU: all-reduce it (sum) across
  // ranks before scores().
  at::Tensor& sums() { return sums_; }

  // The signals above; `source_label_counts` [K] (the source validation
  // confusion matrix's row sums) or undefined, which leaves the prior gap out.
  std::map<std::string, double> scores(const at::Tensor& source_label_counts) const;

  std::int64_t samples_per_tile() const { return samples_per_tile_; }
  std::int64_t tile_stride() const { return tile_stride_; }

 private:
  std::int64_t classes_;
  std::int64_t tiles_;
  std::int64_t tile_pixels_;
  std::int64_t tile_stride_;       // every tile_stride_-th tile is sampled
  std::int64_t samples_per_tile_;  // pixels of each sampled tile
  // [entropy sum, pixels, predicted pixels of each class (K), sampled
  // probabilities (sampled tiles x samples_per_tile x K)]
  at::Tensor sums_;
};

// SND of N samples' class probabilities [N, K]: the mean entropy of each
// sample's softmax over its cosine similarities to the others / temperature,
// as in the authors' code (self-similarity set to -1/temperature, entropy
// with log(p + 1e-5)).
double soft_neighborhood_density(const at::Tensor& probabilities, double temperature = kSndTemperature);

}  // namespace da::metrics
