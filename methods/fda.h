// FDA, Fourier Domain Adaptation (Yang & Soatto, CVPR 2020): each source
// image takes the low-frequency amplitude spectrum of a random target image
// and keeps its own phase, so it looks like the target's "style" (colour,
// illumination, sensor response) with the source's content; the model then
// trains on these images with the source labels. This changes inputs, not
// losses: it is the interface's transform_batches() hook.
//
// The swap follows the authors' low_freq_mutate_np: 2-D FFT per band, the
// centred square of half-width floor(beta * min(H, W)) around the (shifted)
// zero frequency replaced, inverse FFT, real part. It runs on the images as
// the loader delivers them (normalised per band), not on raw pixel values.
//
// Parameters: beta (0.01; in (0, 0.5]), seed (0: the target image each
// source image takes is drawn from (seed, global step)), entropy_weight (0:
// with w > 0 the loss is w * the mean entropy of the target predictions, the
// paper's self-supervised term without its Charbonnier penalty). Logs:
// entropy_loss when entropy_weight > 0.
#pragma once

#include <cstdint>

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

// Source images [B,C,H,W] with the low-frequency amplitude of `targets`
// (same shape: targets[i] for source i).
torch::Tensor fda_swap(const torch::Tensor& sources, const torch::Tensor& targets, double beta);

// For each of `sources` source images, the index of its target image among
// `targets`: uniform draws from a CPU generator seeded by (seed, step).
torch::Tensor fda_target_indices(std::int64_t sources, std::int64_t targets, std::int64_t seed, std::int64_t step);

class Fda : public Method {
 public:
  Fda(Params& params, const ModelInfo& model);

  std::string name() const override { return "fda"; }
  void transform_batches(Batch& source, Batch& target, std::int64_t global_step) override;
  DaLossOutput compute_da_loss(const StepInputs& step) override;

 private:
  double beta_;
  std::int64_t seed_;
  double entropy_weight_;
};

}  // namespace da::methods
