#include "tools/geotiff_fixture.h"

#include <cpl_conv.h>
#include <gtest/gtest.h>
#include <ogr_srs_api.h>

#include <vector>

namespace da::test {

void write_geotiff(const std::string& path, GDALDataType type, int bands,
                   const std::function<double(int, int, int)>& value, bool with_nodata) {
  GDALAllRegister();
  GDALDriverH driver = GDALGetDriverByName("GTiff");
  ASSERT_NE(driver, nullptr);
  GDALDatasetH dataset = GDALCreate(driver, path.c_str(), kRasterCols, kRasterRows, bands, type, nullptr);
  ASSERT_NE(dataset, nullptr);
  std::array<double, 6> transform = kTestTransform;
  GDALSetGeoTransform(dataset, transform.data());
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 32632);
  char* wkt = nullptr;
  OSRExportToWkt(srs, &wkt);
  GDALSetProjection(dataset, wkt);
  CPLFree(wkt);
  OSRDestroySpatialReference(srs);
  std::vector<double> band(kRasterRows * kRasterCols);
  for (int b = 0; b < bands; ++b) {
    GDALRasterBandH handle = GDALGetRasterBand(dataset, b + 1);
    if (with_nodata) GDALSetRasterNoDataValue(handle, 0);
    for (int r = 0; r < kRasterRows; ++r) {
      for (int c = 0; c < kRasterCols; ++c) band[r * kRasterCols + c] = value(r, c, b);
    }
    ASSERT_EQ(GDALRasterIO(handle, GF_Write, 0, 0, kRasterCols, kRasterRows, band.data(), kRasterCols, kRasterRows,
                           GDT_Float64, 0, 0),
              CE_None);
  }
  GDALClose(dataset);
}

}  // namespace da::test
