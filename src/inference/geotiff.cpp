#include "inference/geotiff.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "inference/gdal_util.h"
#include "io/atomic_file.h"

namespace da::inference {

std::string geotiff_name(std::int64_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "tile_%06lld.tif", static_cast<long long>(index));
  return name;
}

void write_class_geotiff(const std::string& path, const std::uint8_t* classes, std::int64_t height, std::int64_t width,
                         const std::array<double, 6>& geotransform, const std::string& crs, std::optional<int> nodata) {
  const QuietGdal quiet;
  GDALDriverH driver = GDALGetDriverByName("GTiff");
  if (driver == nullptr) throw std::runtime_error(path + ": GDAL has no GTiff driver");
  const std::string temporary = io::temporary_path_for(path);
  char** options = CSLSetNameValue(nullptr, "COMPRESS", "LZW");
  GDALDatasetH dataset =
      GDALCreate(driver, temporary.c_str(), static_cast<int>(width), static_cast<int>(height), 1, GDT_Byte, options);
  CSLDestroy(options);
  if (dataset == nullptr) throw std::runtime_error(path + ": cannot create the GeoTIFF" + gdal_message());
  bool ok = true;
  std::string failed;
  std::array<double, 6> transform = geotransform;
  if (GDALSetGeoTransform(dataset, transform.data()) != CE_None) ok = false, failed = "geotransform";
  if (ok && !crs.empty() && GDALSetProjection(dataset, crs.c_str()) != CE_None) ok = false, failed = "CRS";
  GDALRasterBandH band = GDALGetRasterBand(dataset, 1);
  if (ok && nodata && GDALSetRasterNoDataValue(band, *nodata) != CE_None) ok = false, failed = "nodata value";
  if (ok && GDALRasterIO(band, GF_Write, 0, 0, static_cast<int>(width), static_cast<int>(height),
                         const_cast<std::uint8_t*>(classes), static_cast<int>(width), static_cast<int>(height),
                         GDT_Byte, 0, 0) != CE_None) {
    ok = false, failed = "pixels";
  }
  const std::string message = ok ? std::string() : gdal_message();
  GDALClose(dataset);  // flushes; GDAL reports a failed flush through CPLError
  if (ok && CPLGetLastErrorType() >= CE_Failure) ok = false, failed = "file";
  if (!ok) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw std::runtime_error(path + ": cannot write the " + failed + (message.empty() ? gdal_message() : message));
  }
  io::publish_temporary(temporary, path);
}

}  // namespace da::inference
