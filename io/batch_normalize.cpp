#include "io/batch_normalize.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

namespace da::io {

at::Tensor stored_pixels_as_float(const at::Tensor& image) {
  if (image.scalar_type() == at::kShort) return image.to(at::kInt).bitwise_and(0xFFFF).to(at::kFloat);
  return image.to(at::kFloat);
}

at::Tensor normalize_image(const at::Tensor& image, const BandNormalization& normalization) {
  const int64_t channels = static_cast<int64_t>(normalization.mean.size());
  if (image.dim() != 4 || image.size(1) != channels) {
    throw std::invalid_argument("normalize_image: expected an image batch [B, " + std::to_string(channels) +
                                ", H, W], got " + std::to_string(image.dim()) + " dimensions");
  }
  const auto options = at::TensorOptions().dtype(at::kFloat).device(image.device());
  const at::Tensor mean = at::tensor(normalization.mean, at::kFloat).to(options).view({1, channels, 1, 1});
  const at::Tensor std = at::tensor(normalization.std, at::kFloat).to(options).view({1, channels, 1, 1});
  return (stored_pixels_as_float(image) - mean) / std;
}

void normalize_batch(Batch& batch, const BandNormalization& normalization) {
  batch.image = normalize_image(batch.image, normalization);
  if (batch.mask.defined()) batch.mask = batch.mask.to(at::kLong);
}

}  // namespace da::io
