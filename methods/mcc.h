// Minimum Class Confusion (Jin et al., "Minimum Class Confusion for Versatile
// Domain Adaptation", ECCV 2020), applied to target pixels as samples.
//
// Follows the Transfer-Learning-Library (tllib) MinimumClassConfusionLoss
// exactly: for target logits z [N,K] (N target pixels),
//   p = softmax(z / T)
//   H = -sum_k p_k log(p_k + 1e-5), detached (tllib's entropy(), epsilon included)
//   w = 1 + exp(-H);  w = N * w / sum(w)
//   C = (p * w[:,None])^T p                            [K,K]
//   C = C / C.sum(dim=1)   (tllib's broadcasting: column j divided by row-sum j;
//                           C is symmetric, so the loss equals the row-normalised one)
//   loss = (sum(C) - trace(C)) / K
//
// Parameters: temperature (2.5, > 0); pixels_per_image (1024, >= 0; 0 = all
// pixels): a random sample of that many pixel positions per target image,
// drawn without replacement from a CPU generator seeded from (seed,
// global_step) so the sample is reproducible; seed (0, >= 0); loss_weight
// (read by the framework). All target pixels are candidates (the target is
// unlabelled, nothing is ignored).
// Logs: mcc_loss.
//
// The class confusion matrix is computed on each rank's batch only: a
// per-rank statistic, not one over the global batch. Every rank draws its
// pixel positions from the same (seed, global_step), i.e. the same positions
// in its own images.
#pragma once

#include <cstdint>

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class MinimumClassConfusion : public Method {
 public:
  MinimumClassConfusion(Params& params, const ModelInfo& model);
  std::string name() const override { return "mcc"; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;

 private:
  double temperature_;
  std::int64_t pixels_per_image_;
  std::int64_t seed_;
};

// tllib's MinimumClassConfusionLoss on logits [N,K].
torch::Tensor mcc_loss(const torch::Tensor& logits, double temperature);

// The seed of the pixel sample of one step: splitmix64 of
// seed + 0x9E3779B97F4A7C15 * (global_step + 1) (mod 2^64).
std::uint64_t mcc_sample_seed(std::int64_t seed, std::int64_t global_step);

// Pixel positions (flat indices into H*W) sampled for each of `batch` images:
// [batch, per_image] int64 on the CPU, image b's row being the first
// per_image entries of torch::randperm(pixels) drawn for b = 0, 1, ... in
// turn from one CPU generator seeded with mcc_sample_seed(seed, global_step).
// Requires 0 < per_image <= pixels.
torch::Tensor mcc_sample_pixels(std::int64_t batch, std::int64_t pixels, std::int64_t per_image, std::int64_t seed,
                                std::int64_t global_step);

// Target logits [B,K,H,W] as samples [N,K]: every pixel when per_image is 0
// or >= H*W, else the pixels of mcc_sample_pixels (image by image, in the
// sampled order).
torch::Tensor mcc_pixel_samples(const torch::Tensor& logits, std::int64_t per_image, std::int64_t seed,
                                std::int64_t global_step);

}  // namespace da::methods
