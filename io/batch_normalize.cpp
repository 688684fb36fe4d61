#include "io/batch_normalize.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace da::io {

at::Tensor stored_pixels_as_float(const at::Tensor& image) {
  if (image.scalar_type() == at::kShort) return image.to(at::kInt).bitwise_and(0xFFFF).to(at::kFloat);
  return image.to(at::kFloat);
}

namespace {

void check_image(const at::Tensor& image, std::int64_t channels) {
  if (image.dim() != 4 || image.size(1) != channels) {
    throw std::invalid_argument("normalize_image: expected an image batch [B, " + std::to_string(channels) +
                                ", H, W], got " + std::to_string(image.dim()) + " dimensions");
  }
}

// One band statistic as [1, C, 1, 1] float32 on `device`; to a GPU from
// page-locked memory without blocking, so the host never waits for the GPU.
at::Tensor per_band(const std::vector<float>& values, c10::Device device) {
  const auto channels = static_cast<std::int64_t>(values.size());
  const at::Tensor host = at::tensor(values, at::kFloat).view({1, channels, 1, 1});
  if (device.is_cpu()) return host;
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace

at::Tensor normalize_image(const at::Tensor& image, const BandNormalization& normalization) {
  check_image(image, static_cast<std::int64_t>(normalization.mean.size()));
  return (stored_pixels_as_float(image) - per_band(normalization.mean, image.device())) /
         per_band(normalization.std, image.device());
}

void BatchNormalizer::operator()(Batch& batch) {
  check_image(batch.image, static_cast<std::int64_t>(normalization_.mean.size()));
  if (!mean_.defined() || mean_.device() != batch.image.device()) {
    mean_ = per_band(normalization_.mean, batch.image.device());
    std_ = per_band(normalization_.std, batch.image.device());
  }
  batch.image = (stored_pixels_as_float(batch.image) - mean_) / std_;
  if (batch.mask.defined()) batch.mask = batch.mask.to(at::kLong);
}

}  // namespace da::io
