// Seed GeoTIFFs for fuzz_raster, written by GDAL: the pixel types and
// layouts rasters come in (strips and tiles, pixel and band interleaving,
// the usual compressions and predictors, BigTIFF, nodata, georeferencing),
// plus a type an archive cannot hold and a sparse file whose header claims
// 2^31 - 1 columns. Small: a few kilobytes each.
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <vector>

#include "fuzz_seeds.h"

namespace da::fuzz {
namespace {

struct RasterSeed {
  const char* name;
  GDALDataType type;
  int bands, width, height;
  std::vector<const char*> creation_options;
  std::optional<double> nodata;
  bool georeferenced;
  bool sparse = false;  // no pixels written (SPARSE_OK): a header claiming any size
};

void write_raster(const std::string& path, const RasterSeed& seed) {
  GDALDriverH driver = GDALGetDriverByName("GTiff");
  char** options = nullptr;
  for (const char* option : seed.creation_options) options = CSLAddString(options, option);
  GDALDatasetH dataset = GDALCreate(driver, path.c_str(), seed.width, seed.height, seed.bands, seed.type, options);
  CSLDestroy(options);
  if (dataset == nullptr) throw std::runtime_error(path + ": GDAL cannot create it: " + CPLGetLastErrorMsg());
  if (seed.georeferenced) {
    std::array<double, 6> transform{500000.0, 10.0, 0.0, 5300000.0, 0.0, -10.0};
    GDALSetGeoTransform(dataset, transform.data());
    OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
    OSRImportFromEPSG(srs, 32632);
    char* wkt = nullptr;
    OSRExportToWkt(srs, &wkt);
    GDALSetProjection(dataset, wkt);
    CPLFree(wkt);
    OSRDestroySpatialReference(srs);
  }
  if (seed.sparse) {
    GDALClose(dataset);
    return;
  }
  std::vector<double> values(static_cast<size_t>(seed.width) * seed.height);
  for (int b = 0; b < seed.bands; ++b) {
    GDALRasterBandH band = GDALGetRasterBand(dataset, b + 1);
    if (seed.nodata) GDALSetRasterNoDataValue(band, *seed.nodata);
    // Three regions (label-like values 0-2 in band 1) with texture in the others.
    for (int r = 0; r < seed.height; ++r) {
      for (int c = 0; c < seed.width; ++c) {
        const int region = (r * 3 / seed.height + c * 2 / seed.width) % 3;
        values[static_cast<size_t>(r) * seed.width + c] = b == 0 ? region : region * 60 + (r * 7 + c * 13 + b) % 50;
      }
    }
    if (seed.nodata) values[0] = *seed.nodata;
    if (GDALRasterIO(band, GF_Write, 0, 0, seed.width, seed.height, values.data(), seed.width, seed.height,
                     GDT_Float64, 0, 0) != CE_None) {
      throw std::runtime_error(path + ": GDAL cannot write it: " + CPLGetLastErrorMsg());
    }
  }
  GDALClose(dataset);
}

}  // namespace

void write_raster_seeds(const std::string& out_dir) {
  GDALAllRegister();
  const RasterSeed seeds[] = {
      {"uint8_rgb_strips", GDT_Byte, 3, 40, 30, {"PHOTOMETRIC=RGB"}, std::nullopt, true},
      {"uint8_labels_packbits", GDT_Byte, 1, 70, 50, {"COMPRESS=PACKBITS"}, 255.0, true},
      {"uint16_tiled_deflate_predictor", GDT_UInt16, 4, 48, 48,
       {"TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16", "COMPRESS=DEFLATE", "PREDICTOR=2"}, 0.0, true},
      {"float32_lzw_float_predictor", GDT_Float32, 1, 33, 17, {"COMPRESS=LZW", "PREDICTOR=3"}, -9999.0, true},
      {"uint8_band_interleaved_bigtiff", GDT_Byte, 2, 20, 20,
       {"INTERLEAVE=BAND", "BIGTIFF=YES", "TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"}, std::nullopt, false},
      {"uint8_jpeg_ycbcr", GDT_Byte, 3, 32, 32, {"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR"}, std::nullopt, true},
      {"int16_unsupported_type", GDT_Int16, 2, 16, 16, {}, std::nullopt, false},
      {"uint8_sparse_2147483647_columns", GDT_Byte, 3, 2147483647, 4, {"SPARSE_OK=TRUE", "BIGTIFF=YES"},
       std::nullopt, false, true},
  };
  for (const RasterSeed& seed : seeds) write_raster(out_dir + "/" + seed.name + ".tif", seed);
}

}  // namespace da::fuzz
