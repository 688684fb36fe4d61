#include "raster_source.h"

#include <cpl_conv.h>
#include <gdal.h>

#include <cctype>
#include <stdexcept>

namespace da::tiles {
namespace {

std::string gdal_message() {
  const char* message = CPLGetLastErrorMsg();
  return message != nullptr && *message != '\0' ? message : "unknown GDAL error";
}

}  // namespace

void limit_gdal_cache(int64_t bytes) {
  if (CPLGetConfigOption("GDAL_CACHEMAX", nullptr) == nullptr) GDALSetCacheMax64(bytes);
}

RasterSource::RasterSource(const std::string& path) : path_(path) {
  GDALAllRegister();
  // Errors are reported through our own messages, not printed by GDAL.
  CPLSetErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
  dataset_ = GDALOpen(path.c_str(), GA_ReadOnly);
  if (dataset_ == nullptr) throw std::runtime_error(path + ": cannot open raster: " + gdal_message());
  width_ = GDALGetRasterXSize(dataset_);
  height_ = GDALGetRasterYSize(dataset_);
  bands_ = GDALGetRasterCount(dataset_);
  if (bands_ == 0) {
    GDALClose(dataset_);
    throw std::runtime_error(path + ": raster has no bands");
  }
  // GDAL decodes a whole block to read any window of it, and a header can
  // claim blocks of any size (one strip of a 2^31-column raster: 6 GB read
  // for a 16 x 16 window).
  int block_cols = 0, block_rows = 0;
  GDALGetBlockSize(GDALGetRasterBand(dataset_, 1), &block_cols, &block_rows);
  const int64_t block_bytes = int64_t{block_cols} * block_rows * bands_ *
                              GDALGetDataTypeSizeBytes(GDALGetRasterDataType(GDALGetRasterBand(dataset_, 1)));
  if (block_bytes > kMaxBlockBytes) {
    GDALClose(dataset_);
    throw std::runtime_error(path + ": its blocks of " + std::to_string(block_cols) + " x " +
                             std::to_string(block_rows) + " pixels are over " + std::to_string(kMaxBlockBytes >> 20) +
                             " MiB: rewrite it tiled (gdal_translate -co TILED=YES)");
  }
}

RasterSource::~RasterSource() { GDALClose(dataset_); }

io::PixelType RasterSource::pixel_type() const {
  const GDALDataType type = GDALGetRasterDataType(GDALGetRasterBand(dataset_, 1));
  for (int64_t band = 2; band <= bands_; ++band) {
    if (GDALGetRasterDataType(GDALGetRasterBand(dataset_, static_cast<int>(band))) != type) {
      throw std::runtime_error(path_ + ": bands have different data types");
    }
  }
  switch (type) {
    case GDT_Byte:
      return io::PixelType::kUint8;
    case GDT_UInt16:
      return io::PixelType::kUint16;
    case GDT_Float32:
      return io::PixelType::kFloat32;
    default:
      throw std::runtime_error(path_ + ": data type " + GDALGetDataTypeName(type) +
                               " is not one an archive holds (uint8, uint16, float32)");
  }
}

std::vector<std::string> RasterSource::band_names() const {
  std::vector<std::string> names;
  for (int64_t band = 1; band <= bands_; ++band) {
    const GDALColorInterp interp =
        GDALGetRasterColorInterpretation(GDALGetRasterBand(dataset_, static_cast<int>(band)));
    std::string name;
    if (interp == GCI_RedBand || interp == GCI_GreenBand || interp == GCI_BlueBand || interp == GCI_AlphaBand) {
      name = GDALGetColorInterpretationName(interp);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      name = "band" + std::to_string(band);
    }
    names.push_back(name);
  }
  return names;
}

std::vector<std::optional<double>> RasterSource::nodata() const {
  std::vector<std::optional<double>> values;
  for (int64_t band = 1; band <= bands_; ++band) {
    int has = 0;
    const double value = GDALGetRasterNoDataValue(GDALGetRasterBand(dataset_, static_cast<int>(band)), &has);
    values.push_back(has ? std::optional<double>(value) : std::nullopt);
  }
  return values;
}

std::optional<std::array<double, 6>> RasterSource::geotransform() const {
  std::array<double, 6> transform{};
  if (GDALGetGeoTransform(dataset_, transform.data()) != CE_None) return std::nullopt;
  return transform;
}

std::string RasterSource::crs_wkt() const {
  const char* wkt = GDALGetProjectionRef(dataset_);
  return wkt != nullptr ? wkt : "";
}

void RasterSource::read(int64_t row, int64_t col, int64_t rows, int64_t cols, io::PixelType type, void* out) const {
  const GDALDataType gdal_type = type == io::PixelType::kUint8    ? GDT_Byte
                                 : type == io::PixelType::kUint16 ? GDT_UInt16
                                                                  : GDT_Float32;
  CPLErrorReset();
  if (GDALDatasetRasterIO(dataset_, GF_Read, static_cast<int>(col), static_cast<int>(row), static_cast<int>(cols),
                          static_cast<int>(rows), out, static_cast<int>(cols), static_cast<int>(rows), gdal_type,
                          static_cast<int>(bands_), nullptr, 0, 0, 0) != CE_None) {
    throw std::runtime_error(path_ + ": cannot read window at row " + std::to_string(row) + ", column " +
                             std::to_string(col) + ": " + gdal_message());
  }
}

void RasterSource::read_labels(int64_t row, int64_t col, int64_t rows, int64_t cols, int32_t* out) const {
  CPLErrorReset();
  if (GDALRasterIO(GDALGetRasterBand(dataset_, 1), GF_Read, static_cast<int>(col), static_cast<int>(row),
                   static_cast<int>(cols), static_cast<int>(rows), out, static_cast<int>(cols), static_cast<int>(rows),
                   GDT_Int32, 0, 0) != CE_None) {
    throw std::runtime_error(path_ + ": cannot read labels at row " + std::to_string(row) + ", column " +
                             std::to_string(col) + ": " + gdal_message());
  }
}

}  // namespace da::tiles
