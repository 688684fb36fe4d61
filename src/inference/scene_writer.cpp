#include "inference/scene_writer.h"

#include <ATen/ATen.h>
#include <cpl_error.h>
#include <cpl_string.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "inference/gdal_util.h"
#include "io/atomic_file.h"

namespace da::inference {
namespace fs = std::filesystem;
namespace {

// Creates `path` (a temporary name) as a tiled, deflate-compressed GeoTIFF.
GDALDatasetH create_geotiff(const std::string& path, const SceneReader& scene, GDALDataType type,
                            std::optional<double> nodata) {
  GDALDriverH driver = GDALGetDriverByName("GTiff");
  char** options = CSLSetNameValue(nullptr, "TILED", "YES");
  options = CSLSetNameValue(options, "COMPRESS", "DEFLATE");
  options = CSLSetNameValue(options, "BIGTIFF", "IF_SAFER");
  GDALDatasetH out = driver == nullptr ? nullptr
                                       : GDALCreate(driver, path.c_str(), static_cast<int>(scene.width()),
                                                    static_cast<int>(scene.height()), 1, type, options);
  CSLDestroy(options);
  if (out == nullptr) throw std::runtime_error(path + ": cannot create the GeoTIFF" + gdal_message());
  std::array<double, 6> t = scene.transform();
  GDALSetGeoTransform(out, t.data());
  if (!scene.crs().empty()) GDALSetProjection(out, scene.crs().c_str());
  if (nodata) GDALSetRasterNoDataValue(GDALGetRasterBand(out, 1), *nodata);
  return out;
}

}  // namespace

std::string scene_output_path(const std::string& output_dir, const std::string& scene, const std::string& suffix) {
  return (fs::path(output_dir) / (fs::path(scene).stem().string() + "_" + suffix + ".tif")).string();
}

SceneWriter::SceneWriter(const SceneReader& scene, const std::string& output_dir, bool confidence)
    : height_(scene.height()),
      width_(scene.width()),
      classes_path_(scene_output_path(output_dir, scene.path(), "classes")),
      confidence_path_(scene_output_path(output_dir, scene.path(), "confidence")),
      classes_tmp_(io::temporary_path_for(classes_path_)),
      confidence_tmp_(io::temporary_path_for(confidence_path_)) {
  try {
    classes_ = create_geotiff(classes_tmp_, scene, GDT_Byte,
                              scene.has_nodata() ? std::optional<double>(kSceneNodata) : std::nullopt);
    if (confidence) {
      confidence_ = create_geotiff(confidence_tmp_, scene, GDT_Float32,
                                   scene.has_nodata() ? std::optional<double>(-1.0) : std::nullopt);
    }
  } catch (...) {
    close();
    throw;
  }
  int block_x = 0, block_y = 0;
  GDALGetBlockSize(GDALGetRasterBand(classes_, 1), &block_x, &block_y);
  tile_rows_ = std::max(block_y, 1);
  classes_buffer_ = at::empty({tile_rows_, width_}, at::kByte);
  if (confidence_ != nullptr) confidence_buffer_ = at::empty({tile_rows_, width_}, at::kFloat);
}

SceneWriter::~SceneWriter() {
  if (!published_) close();
}

void SceneWriter::close() {
  if (classes_ != nullptr) GDALClose(classes_), classes_ = nullptr;
  if (confidence_ != nullptr) GDALClose(confidence_), confidence_ = nullptr;
  if (!published_) {
    std::error_code ignored;
    fs::remove(classes_tmp_, ignored);
    fs::remove(confidence_tmp_, ignored);
  }
}

void SceneWriter::write(std::int64_t y, const at::Tensor& classes, const at::Tensor& confidence) {
  if (y != buffer_y_ + buffered_) {
    throw std::logic_error(classes_path_ + ": rows written out of order (" + std::to_string(y) + " after " +
                           std::to_string(buffer_y_ + buffered_) + ")");
  }
  for (std::int64_t done = 0; done < classes.size(0);) {
    const std::int64_t n = std::min(classes.size(0) - done, tile_rows_ - buffered_);
    classes_buffer_.narrow(0, buffered_, n).copy_(classes.narrow(0, done, n));
    if (confidence_ != nullptr) confidence_buffer_.narrow(0, buffered_, n).copy_(confidence.narrow(0, done, n));
    buffered_ += n;
    done += n;
    if (buffered_ == tile_rows_) flush();
  }
}

void SceneWriter::flush() {
  if (buffered_ == 0) return;
  const int row = static_cast<int>(buffer_y_), n = static_cast<int>(buffered_), w = static_cast<int>(width_);
  if (GDALRasterIO(GDALGetRasterBand(classes_, 1), GF_Write, 0, row, w, n, classes_buffer_.data_ptr<std::uint8_t>(), w,
                   n, GDT_Byte, 0, 0) != CE_None ||
      (confidence_ != nullptr &&
       GDALRasterIO(GDALGetRasterBand(confidence_, 1), GF_Write, 0, row, w, n, confidence_buffer_.data_ptr<float>(), w,
                    n, GDT_Float32, 0, 0) != CE_None)) {
    throw std::runtime_error(classes_path_ + ": cannot write rows" + gdal_message());
  }
  buffer_y_ += buffered_;
  buffered_ = 0;
}

void SceneWriter::publish() {
  flush();
  if (buffer_y_ != height_) {
    throw std::logic_error(classes_path_ + ": " + std::to_string(buffer_y_) + " of " + std::to_string(height_) +
                           " rows written");
  }
  const bool with_confidence = confidence_ != nullptr;
  CPLErrorReset();  // closing flushes the last tiles: its errors are the ones to report
  GDALClose(classes_);
  classes_ = nullptr;
  if (confidence_ != nullptr) GDALClose(confidence_), confidence_ = nullptr;
  if (CPLGetLastErrorType() >= CE_Failure) throw std::runtime_error(classes_path_ + ": cannot write" + gdal_message());
  io::publish_temporary(classes_tmp_, classes_path_);
  if (with_confidence) io::publish_temporary(confidence_tmp_, confidence_path_);
  published_ = true;
}

}  // namespace da::inference
