// da_tiles make on GeoTIFFs written here with GDAL: uint8 with labels
// (pixels, origins, geotransforms, CRS, tiles skipped for nodata and
// ignored labels), uint16 with an overlapping stride, several rasters with
// source ids, float32 NaN as nodata, and its errors (absurd blocks included).
#include <cpl_string.h>
#include <gdal.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "io/tile_archive.h"
#include "support/process.h"
#include "tools/geotiff_fixture.h"
#include "tools/tiles_fixture.h"

namespace {

using da::io::TileArchive;
using da::test::da_tiles;
using da::test::ProcessResult;
using da::test::TempDir;
using da::test::write_geotiff;

constexpr int kTile = 32;

// Pixel value of band `b` at (r, c): never 0, which is the nodata value.
double pixel_value(int r, int c, int b, bool wide) {
  return wide ? 1 + (r * 131 + c * 17 + b * 1000) % 60000 : 1 + (r * 7 + c * 3 + b * 50) % 250;
}

bool in_nodata_region(int r, int c) { return r < kTile && c < kTile; }                  // covers tile (0, 0)
bool in_ignore_region(int r, int c) { return r >= 32 && r < 64 && c >= 32 && c < 64; }  // tile (32, 32)
uint8_t label_value(int r, int c) { return in_ignore_region(r, c) ? 255 : static_cast<uint8_t>((r / 8 + c / 8) % 3); }

TEST(DaTilesMake, Uint8WithLabelsSkipsNodataAndIgnoreAndKeepsGeoreference) {
  TempDir dir;
  write_geotiff(
      dir / "scene.tif", GDT_Byte, 3,
      [](int r, int c, int b) { return in_nodata_region(r, c) ? 0.0 : pixel_value(r, c, b, false); }, true);
  write_geotiff(
      dir / "labels.tif", GDT_Byte, 1, [](int r, int c, int) { return label_value(r, c); }, false);
  const ProcessResult result =
      da_tiles({"make", "--image", dir / "scene.tif", "--labels", dir / "labels.tif", "--out", dir / "out.h5",
                "--tile-size", "32", "--max-nodata", "0.1", "--max-ignore", "0.5", "--classes", "a,b,c"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("skipped 1 for nodata"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(", 1 for ignore"), std::string::npos) << result.out;

  const TileArchive archive(dir / "out.h5");
  const auto& info = archive.info();
  // Windows at rows 0, 32, 64 and columns 0, 32, 64 (96 + 32 > 120); (0, 0) is nodata, (32, 32) ignore.
  ASSERT_EQ(archive.size(), 7);
  EXPECT_EQ(info.pixel_type, da::io::PixelType::kUint8);
  // GTiff marks a 3-band byte raster as RGB, and the names follow GDAL's colour interpretation.
  EXPECT_EQ(info.bands, (std::vector<std::string>{"red", "green", "blue"}));
  EXPECT_EQ(info.classes, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(info.domain, "out");
  EXPECT_EQ(info.sources, (std::vector<std::string>{"scene.tif"}));
  EXPECT_NE(info.crs.find("32632"), std::string::npos) << info.crs;
  ASSERT_TRUE(info.has_origin && info.has_source_id && info.has_geotransform && info.band_mean);
  std::vector<uint8_t> image(archive.image_bytes()), mask(archive.mask_bytes());
  std::vector<std::array<int64_t, 2>> origins;
  for (int64_t t = 0; t < archive.size(); ++t) {
    const auto origin = archive.read_origin(t);
    origins.push_back(origin);
    EXPECT_EQ(archive.read_source_id(t), 0);
    const auto transform = archive.read_geotransform(t);
    EXPECT_DOUBLE_EQ(transform[0], 500000.0 + 0.5 * origin[1]);
    EXPECT_DOUBLE_EQ(transform[3], 5300000.0 - 0.5 * origin[0]);
    EXPECT_DOUBLE_EQ(transform[1], 0.5);
    EXPECT_DOUBLE_EQ(transform[5], -0.5);
    archive.read_image(t, image.data());
    archive.read_mask(t, mask.data());
    for (int b = 0; b < 3; ++b) {
      for (int y = 0; y < kTile; ++y) {
        for (int x = 0; x < kTile; ++x) {
          const int r = static_cast<int>(origin[0]) + y, c = static_cast<int>(origin[1]) + x;
          ASSERT_EQ(image[(b * kTile + y) * kTile + x], pixel_value(r, c, b, false)) << "tile " << t;
          if (b == 0) {
            ASSERT_EQ(mask[y * kTile + x], label_value(r, c)) << "tile " << t;
          }
        }
      }
    }
  }
  const std::vector<std::array<int64_t, 2>> expected{{0, 32}, {0, 64}, {32, 0}, {32, 64}, {64, 0}, {64, 32}, {64, 64}};
  EXPECT_EQ(origins, expected);
}

TEST(DaTilesMake, Uint16WithoutLabelsOverlappingStride) {
  TempDir dir;
  write_geotiff(
      dir / "wide.tif", GDT_UInt16, 2, [](int r, int c, int b) { return pixel_value(r, c, b, true); }, true);
  const ProcessResult result = da_tiles({"make", "--image", dir / "wide.tif", "--out", dir / "wide.h5", "--tile-size",
                                         "32", "--stride", "16", "--domain", "rural", "--bands", "nir,swir"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const TileArchive archive(dir / "wide.h5");
  // Rows 0..64 and columns 0..80 every 16 pixels: 5 x 6 windows.
  ASSERT_EQ(archive.size(), 30);
  EXPECT_EQ(archive.info().pixel_type, da::io::PixelType::kUint16);
  EXPECT_EQ(archive.info().domain, "rural");
  EXPECT_EQ(archive.info().bands, (std::vector<std::string>{"nir", "swir"}));
  EXPECT_FALSE(archive.info().has_masks);
  std::vector<uint16_t> image(archive.image_bytes() / 2);
  for (int64_t t = 0; t < archive.size(); ++t) {
    const auto origin = archive.read_origin(t);
    archive.read_image(t, image.data());
    for (int b = 0; b < 2; ++b) {
      for (int y = 0; y < kTile; ++y) {
        for (int x = 0; x < kTile; ++x) {
          ASSERT_EQ(image[(b * kTile + y) * kTile + x],
                    pixel_value(static_cast<int>(origin[0]) + y, static_cast<int>(origin[1]) + x, b, true));
        }
      }
    }
  }
}

TEST(DaTilesMake, SeveralRastersGetSourceIds) {
  TempDir dir;
  for (const char* name : {"north.tif", "south.tif"}) {
    write_geotiff(
        dir / name, GDT_UInt16, 2, [](int r, int c, int b) { return pixel_value(r, c, b, true); }, true);
  }
  const ProcessResult result = da_tiles({"make", "--image", dir / "north.tif", "--image", dir / "south.tif", "--out",
                                         dir / "both.h5", "--tile-size", "32"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const TileArchive archive(dir / "both.h5");
  EXPECT_EQ(archive.info().sources, (std::vector<std::string>{"north.tif", "south.tif"}));
  ASSERT_EQ(archive.size(), 18);  // 3 x 3 windows per raster
  for (int64_t t = 0; t < archive.size(); ++t) EXPECT_EQ(archive.read_source_id(t), t < 9 ? 0 : 1);
}

TEST(DaTilesMake, Float32NaNCountsAsNodata) {
  TempDir dir;
  // NaN over tile (0, 0) only; no nodata value is set.
  write_geotiff(
      dir / "float.tif", GDT_Float32, 1,
      [](int r, int c, int) { return in_nodata_region(r, c) ? std::nan("") : 0.25 * r - c; }, false);
  const ProcessResult result =
      da_tiles({"make", "--image", dir / "float.tif", "--out", dir / "float.h5", "--tile-size", "32"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const TileArchive archive(dir / "float.h5");
  EXPECT_EQ(archive.info().pixel_type, da::io::PixelType::kFloat32);
  ASSERT_EQ(archive.size(), 8);
  std::vector<float> image(kTile * kTile);
  archive.read_image(0, image.data());
  const auto origin = archive.read_origin(0);
  EXPECT_EQ(origin, (std::array<int64_t, 2>{0, 32}));
  EXPECT_FLOAT_EQ(image[kTile + 2], 0.25f * 1 - 34);  // row 1, column 32 + 2
}

TEST(DaTilesMake, ErrorsAreOneLineWithUsageAndRuntimeStatus) {
  TempDir dir;
  ProcessResult result = da_tiles({"make", "--image", dir / "x.tif", "--out", dir / "x.h5"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--tile-size"), std::string::npos) << result.err;
  result = da_tiles({"make", "--image", dir / "missing.tif", "--out", dir / "x.h5", "--tile-size", "16"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("missing.tif"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << result.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.h5"));
  EXPECT_EQ(da_tiles({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(da_tiles({"synth", "--tiles", "3"}).exit_code, 2);
  EXPECT_EQ(da_tiles({"synth", "--out", dir.path(), "--tiles", "-1"}).exit_code, 2);
}

// A header may claim blocks of any size: a sparse GeoTIFF of a few hundred
// bytes whose strips are rows of 2^31 - 1 pixels (6 GB each, which GDAL
// would decode whole for any window) is refused before anything is read.
TEST(DaTilesMake, RastersWithAbsurdBlocksAreRefused) {
  TempDir dir;
  const std::string raster = dir / "wide.tif";
  GDALAllRegister();
  char** creation = CSLSetNameValue(nullptr, "SPARSE_OK", "TRUE");
  creation = CSLSetNameValue(creation, "BIGTIFF", "YES");
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), raster.c_str(), 2147483647, 4, 3, GDT_Byte, creation);
  CSLDestroy(creation);
  ASSERT_NE(ds, nullptr);
  GDALClose(ds);
  const ProcessResult result = da_tiles({"make", "--image", raster, "--out", dir / "x.h5", "--tile-size", "16"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(raster + ": its blocks of 2147483647 x 1 pixels are over 1024 MiB: rewrite it tiled "
                                     "(gdal_translate -co TILED=YES)"),
            std::string::npos)
      << result.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.h5"));
}

}  // namespace
