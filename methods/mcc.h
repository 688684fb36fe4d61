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
// drawn without replacement from a CPU generator per image seeded from
// (seed, global_step, the image's index in the global batch) so the sample is
// reproducible and does not depend on the number of ranks; seed (0, >= 0);
// loss_weight (read by the framework). All target pixels are candidates (the
// target is unlabelled, nothing is ignored).
// Logs: mcc_loss.
//
// Computed across ranks: every rank's sampled pixels are gathered
// (all_gather_rows, differentiable), so the entropy weights are normalised
// and the class confusion matrix summed over the global batch, and the loss
// and the rank-averaged gradient on N ranks with batch b equal those of one
// process with batch N*b. Image i of rank r is image i*N + r of the global
// batch, as io's DistributedSampler deals the tiles (strided), so both runs
// sample the same pixels of the same tiles.
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

// The seed of one image's pixel sample: splitmix64 of
// mcc_sample_seed(seed, global_step) + 0x9E3779B97F4A7C15 * (image + 1)
// (mod 2^64), `image` being the index in the global batch.
std::uint64_t mcc_image_seed(std::int64_t seed, std::int64_t global_step, std::int64_t image);

// Pixel positions (flat indices into H*W) sampled for each of this rank's
// `batch` images: [batch, per_image] int64 on the CPU, image b's row being the
// first per_image entries of torch::randperm(pixels) drawn from a CPU
// generator seeded with mcc_image_seed(seed, global_step, b * world_size +
// rank). Requires 0 < per_image <= pixels and 0 <= rank < world_size.
torch::Tensor mcc_sample_pixels(std::int64_t batch, std::int64_t pixels, std::int64_t per_image, std::int64_t seed,
                                std::int64_t global_step, int rank = 0, int world_size = 1);

// This rank's target logits [B,K,H,W] as samples [N,K]: every pixel when
// per_image is 0 or >= H*W, else the pixels of mcc_sample_pixels (image by
// image, in the sampled order).
torch::Tensor mcc_pixel_samples(const torch::Tensor& logits, std::int64_t per_image, std::int64_t seed,
                                std::int64_t global_step, int rank = 0, int world_size = 1);

}  // namespace da::methods
