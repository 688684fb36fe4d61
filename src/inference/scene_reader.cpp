#include "inference/scene_reader.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>

#include "inference/gdal_util.h"
#include "inference/training_input.h"
#include "io/pixel_type.h"

namespace da::inference {
namespace {

// Index into [0, n) of position i of the reflection-padded axis (period 2n - 2).
std::int64_t reflect(std::int64_t i, std::int64_t n) {
  if (n == 1) return 0;
  const std::int64_t period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

std::optional<io::PixelType> pixel_type_of(GDALDataType type) {
  switch (type) {
    case GDT_Byte: return io::PixelType::kUint8;
    case GDT_UInt16: return io::PixelType::kUint16;
    case GDT_Float32: return io::PixelType::kFloat32;
    default: return std::nullopt;
  }
}

}  // namespace

SceneReader::SceneReader(const std::string& scene, const CheckpointModel& model, models::Domain domain,
                         const SlidingWindowOptions& window)
    : scene_(scene) {
  dataset_ = GDALOpen(scene.c_str(), GA_ReadOnly);
  if (dataset_ == nullptr) throw std::runtime_error(scene + ": cannot open the raster" + gdal_message());
  try {
    width_ = GDALGetRasterXSize(dataset_);
    height_ = GDALGetRasterYSize(dataset_);
    bands_ = GDALGetRasterCount(dataset_);
    if (bands_ != model.spec.in_channels) {
      throw std::runtime_error(scene + ": the model expects " + std::to_string(model.spec.in_channels) +
                               " bands, the scene has " + std::to_string(bands_));
    }
    // Normalisation and pixel type from the domain's training archives.
    const TrainingInput training = [&] {
      try {
        return training_input(model, domain);
      } catch (const std::exception& e) {
        throw std::runtime_error(scene + ": " + e.what());
      }
    }();
    const auto type = GDALGetRasterDataType(GDALGetRasterBand(dataset_, 1));
    const auto pixel_type = pixel_type_of(type);
    for (std::int64_t b = 2; b <= bands_; ++b) {
      if (GDALGetRasterDataType(GDALGetRasterBand(dataset_, static_cast<int>(b))) != type) {
        throw std::runtime_error(scene + ": band " + std::to_string(b) + " has another data type than band 1");
      }
    }
    if (!pixel_type || *pixel_type != training.info.pixel_type) {
      throw std::runtime_error(scene + ": the model was trained on " +
                               std::string(io::pixel_type_name(training.info.pixel_type)) + " pixels, the scene has " +
                               GDALGetDataTypeName(type));
    }
    mean_ = at::tensor(training.normalization.mean).view({bands_, 1, 1});
    std_ = at::tensor(training.normalization.std).view({bands_, 1, 1});
    nodata_.resize(static_cast<std::size_t>(bands_));
    for (std::int64_t b = 0; b < bands_; ++b) {
      int has = 0;
      const double v = GDALGetRasterNoDataValue(GDALGetRasterBand(dataset_, static_cast<int>(b + 1)), &has);
      if (has) nodata_[static_cast<std::size_t>(b)] = v, has_nodata_ = true;
    }
    georeferenced_ = GDALGetGeoTransform(dataset_, transform_.data()) == CE_None;
    if (GDALGetProjectionRef(dataset_) != nullptr) crs_ = GDALGetProjectionRef(dataset_);

    // The padded scene: overlap/2 on every side, and at least one window.
    margin_ = window.overlap / 2;
    padded_height_ = std::max(height_ + 2 * margin_, window.window);
    padded_width_ = std::max(width_ + 2 * margin_, window.window);
    // Reads go a strip of whole rows at a time: a header can claim any width
    // (a sparse TIFF of a few kilobytes, 2^31 columns), which would otherwise
    // be allocated before anything is read.
    if (bands_ * padded_width_ * static_cast<std::int64_t>(sizeof(float)) > kMaxRowBytes) {
      throw std::runtime_error(scene + ": a row of " + std::to_string(width_) + " pixels x " + std::to_string(bands_) +
                               " bands is over " + std::to_string(kMaxRowBytes >> 20) +
                               " MiB as float: split the scene (e.g. gdal_translate -srcwin)");
    }
    // GDAL decodes whole blocks: one strip or tile may not claim more.
    int block_cols = 0, block_rows = 0;
    GDALGetBlockSize(GDALGetRasterBand(dataset_, 1), &block_cols, &block_rows);
    if (std::int64_t{block_cols} * block_rows * bands_ * GDALGetDataTypeSizeBytes(type) > kMaxRowBytes) {
      throw std::runtime_error(scene + ": its blocks of " + std::to_string(block_cols) + " x " +
                               std::to_string(block_rows) + " pixels are over " + std::to_string(kMaxRowBytes >> 20) +
                               " MiB: rewrite it tiled (gdal_translate -co TILED=YES)");
    }
    columns_ = at::empty({padded_width_}, at::kLong);
    auto* column = columns_.data_ptr<std::int64_t>();
    for (std::int64_t x = 0; x < padded_width_; ++x) column[x] = reflect(x - margin_, width_);
  } catch (...) {
    GDALClose(dataset_);  // the destructor does not run for a constructor that throws
    throw;
  }
}

SceneReader::~SceneReader() { GDALClose(dataset_); }

at::Tensor SceneReader::scene_rows(std::int64_t y, std::int64_t n) {
  at::Tensor rows = at::empty({bands_, n, width_}, at::kFloat);
  const CPLErr rc = GDALDatasetRasterIO(dataset_, GF_Read, 0, static_cast<int>(y), static_cast<int>(width_),
                                        static_cast<int>(n), rows.data_ptr<float>(), static_cast<int>(width_),
                                        static_cast<int>(n), GDT_Float32, static_cast<int>(bands_), nullptr, 0, 0, 0);
  if (rc != CE_None) {
    throw std::runtime_error(scene_ + ": cannot read rows " + std::to_string(y) + ".." + std::to_string(y + n - 1) +
                             gdal_message());
  }
  return rows;
}

at::Tensor SceneReader::padded_rows(std::int64_t y, std::int64_t n) {
  // Each scene row read once per call, reflected into place.
  std::vector<std::int64_t> source_rows(static_cast<std::size_t>(n));
  std::int64_t lo = height_, hi = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    source_rows[static_cast<std::size_t>(i)] = reflect(y + i - margin_, height_);
    lo = std::min(lo, source_rows[static_cast<std::size_t>(i)]);
    hi = std::max(hi, source_rows[static_cast<std::size_t>(i)]);
  }
  const at::Tensor block = scene_rows(lo, hi - lo + 1);
  const at::Tensor index = at::tensor(source_rows) - lo;
  const at::Tensor rows = block.index_select(1, index).index_select(2, columns_);
  return ((rows - mean_) / std_).contiguous();
}

at::Tensor SceneReader::nodata_mask(std::int64_t y, std::int64_t n) {
  at::Tensor missing = at::zeros({n, width_}, at::kBool);
  if (!has_nodata_) return missing;
  const at::Tensor pixels = scene_rows(y, n);
  for (std::int64_t b = 0; b < bands_; ++b) {
    if (nodata_[static_cast<std::size_t>(b)]) missing |= pixels[b].eq(*nodata_[static_cast<std::size_t>(b)]);
  }
  return missing;
}

}  // namespace da::inference
