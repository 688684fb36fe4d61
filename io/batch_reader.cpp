#include "io/batch_reader.h"

#include <ATen/ATen.h>

#include <cstring>

#include "io/augmentation.h"
#include "io/normalization.h"

namespace da::io {

BatchReader::BatchReader(const std::vector<std::string>& paths, const LoaderOptions& options)
    : archives_(paths), options_(options) {
  const BandNormalization normalization = resolve_normalization(options_.normalization, archives_);
  const ArchiveInfo& info = archives_.info();
  if (options_.load_masks && !info.has_masks) {
    throw ArchiveError(archives_.shard(0).path(), "/masks", "masks requested but the archive has none");
  }
  check_augmentation(options_.augmentation, info.height, info.width);
  const int64_t channels = info.channels();
  mean_ = at::tensor(normalization.mean, at::kFloat).view({channels, 1, 1});
  std_ = at::tensor(normalization.std, at::kFloat).view({channels, 1, 1});
  buffer_.resize(archives_.shard(0).image_bytes());
}

at::Tensor BatchReader::read_image(int64_t index) const {
  const ArchiveInfo& info = archives_.info();
  const NonFinite policy = options_.skip_non_finite ? NonFinite::kReport : NonFinite::kRefuse;
  if (archives_.read_image(index, buffer_.data(), policy) > 0) return {};
  const int64_t count = info.channels() * info.height * info.width;
  at::Tensor image = at::empty({info.channels(), info.height, info.width}, at::kFloat);
  float* out = image.data_ptr<float>();
  switch (info.pixel_type) {
    case PixelType::kUint8: {
      const auto* in = reinterpret_cast<const uint8_t*>(buffer_.data());
      for (int64_t i = 0; i < count; ++i) out[i] = in[i];
      break;
    }
    case PixelType::kUint16: {
      const auto* in = reinterpret_cast<const uint16_t*>(buffer_.data());
      for (int64_t i = 0; i < count; ++i) out[i] = in[i];
      break;
    }
    case PixelType::kFloat32:
      std::memcpy(out, buffer_.data(), count * sizeof(float));
      break;
  }
  return (image - mean_) / std_;
}

Batch BatchReader::read(const std::vector<int64_t>& indices, int64_t epoch) const {
  const ArchiveInfo& info = archives_.info();
  const int64_t height = options_.augmentation.crop_size > 0 ? options_.augmentation.crop_size : info.height;
  const int64_t width = options_.augmentation.crop_size > 0 ? options_.augmentation.crop_size : info.width;
  std::vector<at::Tensor> images;
  std::vector<at::Tensor> masks;
  Batch batch;
  for (const int64_t index : indices) {
    at::Tensor image = read_image(index);
    if (!image.defined()) {
      ++batch.skipped;
      continue;
    }
    const TileTransform transform =
        draw_transform(options_.augmentation, options_.seed, epoch, index, info.height, info.width);
    images.push_back(apply_transform(image, transform));
    if (options_.load_masks) {
      at::Tensor mask = at::empty({info.height, info.width}, at::kByte);
      archives_.read_mask(index, mask.data_ptr<uint8_t>());
      masks.push_back(apply_transform(mask.to(at::kLong), transform));
    }
    batch.indices.push_back(index);
  }
  // at::stack refuses an empty list; a batch whose tiles were all skipped keeps its shape.
  batch.image = images.empty() ? at::empty({0, info.channels(), height, width}, at::kFloat) : at::stack(images);
  if (options_.load_masks) batch.mask = masks.empty() ? at::empty({0, height, width}, at::kLong) : at::stack(masks);
  return batch;
}

}  // namespace da::io
