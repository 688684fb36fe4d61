// da_tiles as a process: synth output read back with the io reader (counts,
// masks, determinism, a measurable domain shift), make on GeoTIFFs written
// here with GDAL (pixels, origins, geotransforms, CRS, skipped tiles), and
// inspect / inspect --verify output and exit status.
#include <cpl_conv.h>
#include <gdal.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <ogr_srs_api.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/tile_archive.h"
#include "support/process.h"

namespace {

using da::io::TileArchive;
using da::test::ProcessResult;

ProcessResult da_tiles(const std::vector<std::string>& args) {
  return da::test::run_process(da::test::binary_path("tools/da_tiles/da_tiles"), args, {}, 240);
}

class TempDir {
 public:
  TempDir() : path_(da::test::make_temp_dir("da_tiles_test")) {}
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<uint8_t> all_images(const TileArchive& archive) {
  std::vector<uint8_t> bytes(archive.image_bytes() * archive.size());
  for (int64_t t = 0; t < archive.size(); ++t) archive.read_image(t, bytes.data() + t * archive.image_bytes());
  return bytes;
}

std::vector<uint8_t> all_masks(const TileArchive& archive) {
  std::vector<uint8_t> bytes(archive.mask_bytes() * archive.size());
  for (int64_t t = 0; t < archive.size(); ++t) archive.read_mask(t, bytes.data() + t * archive.mask_bytes());
  return bytes;
}

// Synthetic data set in `dir`: 40 train and 12 val tiles per domain, 32x32.
void synth(const std::string& dir, int seed) {
  const ProcessResult result = da_tiles(
      {"synth", "--out", dir, "--tiles", "40", "--val-tiles", "12", "--size", "32", "--seed", std::to_string(seed)});
  ASSERT_EQ(result.exit_code, 0) << result.err;
}

TEST(DaTilesSynth, WritesRequestedCountsWithValidMasksAndStats) {
  TempDir dir;
  synth(dir.path(), 1);
  for (const auto& [name, count] : std::vector<std::pair<std::string, int64_t>>{
           {"source_train.h5", 40}, {"source_val.h5", 12}, {"target_train.h5", 40}, {"target_val.h5", 12}}) {
    const TileArchive archive(dir / name);
    const auto& info = archive.info();
    EXPECT_EQ(archive.size(), count) << name;
    EXPECT_EQ(info.height, 32);
    EXPECT_EQ(info.width, 32);
    EXPECT_EQ(info.pixel_type, da::io::PixelType::kUint8);
    EXPECT_EQ(info.bands, (std::vector<std::string>{"red", "green", "blue"}));
    EXPECT_EQ(info.classes, (std::vector<std::string>{"background", "building", "road", "water"}));
    EXPECT_EQ(info.domain, name.rfind("source", 0) == 0 ? "source" : "target");
    ASSERT_TRUE(info.has_masks);
    ASSERT_TRUE(info.band_mean && info.band_std);
    std::array<int64_t, 4> seen{};
    for (uint8_t value : all_masks(archive)) {
      ASSERT_LT(value, 4) << name;
      ++seen[value];
    }
    for (int k = 0; k < 4; ++k) EXPECT_GT(seen[k], 0) << name << " class " << k;
    // The stored statistics are those of the stored pixels.
    const std::vector<uint8_t> images = all_images(archive);
    const size_t band_pixels = 32 * 32;
    double sum = 0;
    for (int64_t t = 0; t < count; ++t) {
      for (size_t i = 0; i < band_pixels; ++i) sum += images[t * archive.image_bytes() + i];  // red
    }
    EXPECT_NEAR((*info.band_mean)[0], sum / (count * band_pixels), 1e-6);
  }
}

TEST(DaTilesSynth, SameSeedGivesIdenticalTilesAndOtherSeedDiffers) {
  TempDir first, second, third;
  synth(first.path(), 7);
  synth(second.path(), 7);
  synth(third.path(), 8);
  for (const char* name : {"source_train.h5", "target_val.h5"}) {
    const TileArchive a(first / name), b(second / name), c(third / name);
    EXPECT_EQ(all_images(a), all_images(b)) << name;
    EXPECT_EQ(all_masks(a), all_masks(b)) << name;
    EXPECT_NE(all_images(a), all_images(c)) << name;
  }
}

// Per-class mean colour of every labelled pixel in an archive.
std::array<std::array<double, 3>, 4> class_means(const TileArchive& archive) {
  const std::vector<uint8_t> images = all_images(archive), masks = all_masks(archive);
  const size_t pixels = archive.mask_bytes();
  std::array<std::array<double, 3>, 4> sums{};
  std::array<double, 4> counts{};
  for (int64_t t = 0; t < archive.size(); ++t) {
    for (size_t i = 0; i < pixels; ++i) {
      const uint8_t k = masks[t * pixels + i];
      for (int b = 0; b < 3; ++b) sums[k][b] += images[t * archive.image_bytes() + b * pixels + i];
      ++counts[k];
    }
  }
  for (int k = 0; k < 4; ++k) {
    for (int b = 0; b < 3; ++b) sums[k][b] /= counts[k];
  }
  return sums;
}

// Pixel accuracy of the nearest-class-mean-colour classifier with `means`.
double nearest_mean_accuracy(const TileArchive& archive, const std::array<std::array<double, 3>, 4>& means) {
  const std::vector<uint8_t> images = all_images(archive), masks = all_masks(archive);
  const size_t pixels = archive.mask_bytes();
  int64_t correct = 0;
  for (int64_t t = 0; t < archive.size(); ++t) {
    for (size_t i = 0; i < pixels; ++i) {
      int best = 0;
      double best_distance = 1e300;
      for (int k = 0; k < 4; ++k) {
        double distance = 0;
        for (int b = 0; b < 3; ++b) {
          const double d = images[t * archive.image_bytes() + b * pixels + i] - means[k][b];
          distance += d * d;
        }
        if (distance < best_distance) best_distance = distance, best = k;
      }
      correct += best == masks[t * pixels + i];
    }
  }
  return static_cast<double>(correct) / static_cast<double>(archive.size() * pixels);
}

TEST(DaTilesSynth, TargetIsShiftedPerClassAndSourceClassifierLosesAccuracy) {
  TempDir dir;
  synth(dir.path(), 3);
  const TileArchive source_train(dir / "source_train.h5"), source_val(dir / "source_val.h5");
  const TileArchive target_val(dir / "target_val.h5");
  const auto source_means = class_means(source_train);
  const auto target_means = class_means(target_val);
  std::array<double, 3> shift_first{};
  for (int k = 0; k < 4; ++k) {
    double distance = 0;
    std::array<double, 3> shift{};
    for (int b = 0; b < 3; ++b) {
      shift[b] = target_means[k][b] - source_means[k][b];
      distance += shift[b] * shift[b];
    }
    EXPECT_GT(std::sqrt(distance), 20.0) << "class " << k;
    // Not one constant offset: some class moves differently from class 0.
    if (k == 0) shift_first = shift;
  }
  double spread = 0;
  for (int k = 1; k < 4; ++k) {
    for (int b = 0; b < 3; ++b) {
      spread = std::max(spread, std::abs((target_means[k][b] - source_means[k][b]) - shift_first[b]));
    }
  }
  EXPECT_GT(spread, 20.0);
  const double on_source = nearest_mean_accuracy(source_val, source_means);
  const double on_target = nearest_mean_accuracy(target_val, source_means);
  EXPECT_GT(on_source, 0.9);
  EXPECT_LT(on_target, on_source - 0.3) << "source " << on_source << ", target " << on_target;
  // The target stays learnable: its own class means classify it well.
  EXPECT_GT(nearest_mean_accuracy(target_val, target_means), 0.7);
}

// --- make -------------------------------------------------------------------

constexpr int kRows = 100, kCols = 120, kTile = 32;
constexpr std::array<double, 6> kTransform{500000.0, 0.5, 0.0, 5300000.0, 0.0, -0.5};

// Pixel value of band `b` at (r, c): never 0, which is the nodata value.
double pixel_value(int r, int c, int b, bool wide) {
  return wide ? 1 + (r * 131 + c * 17 + b * 1000) % 60000 : 1 + (r * 7 + c * 3 + b * 50) % 250;
}

bool in_nodata_region(int r, int c) { return r < kTile && c < kTile; }                  // covers tile (0, 0)
bool in_ignore_region(int r, int c) { return r >= 32 && r < 64 && c >= 32 && c < 64; }  // tile (32, 32)
uint8_t label_value(int r, int c) { return in_ignore_region(r, c) ? 255 : static_cast<uint8_t>((r / 8 + c / 8) % 3); }

// A georeferenced GeoTIFF (EPSG:32632) with `bands` bands of pixel_value and nodata 0 over in_nodata_region.
void write_geotiff(const std::string& path, GDALDataType type, int bands,
                   const std::function<double(int, int, int)>& value, bool with_nodata) {
  GDALAllRegister();
  GDALDriverH driver = GDALGetDriverByName("GTiff");
  ASSERT_NE(driver, nullptr);
  GDALDatasetH dataset = GDALCreate(driver, path.c_str(), kCols, kRows, bands, type, nullptr);
  ASSERT_NE(dataset, nullptr);
  std::array<double, 6> transform = kTransform;
  GDALSetGeoTransform(dataset, transform.data());
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 32632);
  char* wkt = nullptr;
  OSRExportToWkt(srs, &wkt);
  GDALSetProjection(dataset, wkt);
  CPLFree(wkt);
  OSRDestroySpatialReference(srs);
  std::vector<double> band(kRows * kCols);
  for (int b = 0; b < bands; ++b) {
    GDALRasterBandH handle = GDALGetRasterBand(dataset, b + 1);
    if (with_nodata) GDALSetRasterNoDataValue(handle, 0);
    for (int r = 0; r < kRows; ++r) {
      for (int c = 0; c < kCols; ++c) band[r * kCols + c] = value(r, c, b);
    }
    ASSERT_EQ(GDALRasterIO(handle, GF_Write, 0, 0, kCols, kRows, band.data(), kCols, kRows, GDT_Float64, 0, 0),
              CE_None);
  }
  GDALClose(dataset);
}

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

// --- the command line ---------------------------------------------------------

// Every command answers --help on stdout, with exit status 0, listing its own
// options and not another command's.
TEST(DaTilesCommandLine, EveryCommandAnswersHelpWithItsOptions) {
  const std::map<std::string, std::vector<std::string>> options = {
      {"synth", {"--out", "--tiles", "--val-tiles", "--size", "--seed"}},
      {"inspect", {"FILE", "--verify"}},
      {"make",
       {"--image", "--labels", "--out", "--tile-size", "--stride", "--max-nodata", "--max-ignore", "--deflate",
        "--domain", "--classes", "--bands", "--ignore-index"}}};
  for (const auto& [command, names] : options) {
    const ProcessResult result = da_tiles({command, "--help"});
    EXPECT_EQ(result.exit_code, 0) << command << ": " << result.err;
    EXPECT_EQ(result.err, "") << command;
    EXPECT_NE(result.out.find("Usage: da_tiles " + command + " [OPTIONS]"), std::string::npos) << result.out;
    for (const std::string& name : names) {
      EXPECT_NE(result.out.find("  " + name + " "), std::string::npos) << command << " " << name << "\n" << result.out;
    }
  }
  EXPECT_EQ(da_tiles({"inspect", "--help"}).out.find("--tile-size"), std::string::npos);
  // Without a command: every command with its options.
  const ProcessResult all = da_tiles({"--help"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  for (const char* text : {"synth", "inspect", "make", "--tile-size", "--verify", "--val-tiles"}) {
    EXPECT_NE(all.out.find(text), std::string::npos) << text << "\n" << all.out;
  }
}

// Usage errors: exit status 2 and one line on stderr, nothing on stdout.
TEST(DaTilesCommandLine, UsageErrorsAreOneLineWithStatusTwo) {
  TempDir dir;
  const auto expect_usage = [](const std::vector<std::string>& args, const std::string& message) {
    const ProcessResult result = da_tiles(args);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_EQ(result.err, "da_tiles: " + message + "\n");
    EXPECT_EQ(result.out, "");
  };
  expect_usage({"synth", "--outt", dir.path()},
               "unknown option '--outt' for synth, did you mean '--out'? (see --help)");
  expect_usage({"inspect", "--verfy", "a.h5"},
               "unknown option '--verfy' for inspect, did you mean '--verify'? (see --help)");
  expect_usage({"make", "--image", "a.tif", "--out", "a.h5", "--tile-size", "16", "--strid", "8"},
               "unknown option '--strid' for make, did you mean '--stride'? (see --help)");
  expect_usage({"synht", "--out", dir.path()}, "unknown command 'synht', did you mean 'synth'?");
  expect_usage({"frobnicate"}, "unknown command 'frobnicate'; commands are 'synth', 'inspect' or 'make'");
  expect_usage({}, "a command is required: 'synth', 'inspect' or 'make' (see --help)");
  expect_usage({"synth", "--out", dir.path(), "--tiles", "many"},
               "--tiles: expected an integer in [1, 1000000], got 'many'");
  expect_usage({"synth", "--out", dir.path(), "--size", "8"}, "--size: expected an integer in [16, 4096], got '8'");
  expect_usage({"make", "--image", "a.tif", "--out", "a.h5", "--tile-size", "16", "--max-nodata", "1.5"},
               "--max-nodata: expected a number in [0, 1], got '1.5'");
  expect_usage({"synth", "--out"}, "--out needs a value");
  expect_usage({"synth", "--out", dir.path(), "--out", dir.path()}, "--out given more than once");
  expect_usage({"inspect", "--verify=yes", "a.h5"}, "--verify takes no value");
  expect_usage({"synth", "--out", dir.path(), "extra"}, "unexpected argument 'extra' for synth (see --help)");
  expect_usage({"inspect"}, "FILE is required");
  // Checks after parsing name the command, as runtime errors do.
  const ProcessResult result =
      da_tiles({"make", "--image", "a.tif", "--labels", "l.tif", "--out", "a.h5", "--tile-size", "16"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(result.err, "da_tiles make: --labels needs --classes\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "source_train.h5"));
}

// --- inspect ----------------------------------------------------------------

TEST(DaTilesInspect, PrintsCountsShapeAndHistogram) {
  TempDir dir;
  synth(dir.path(), 2);
  const TileArchive archive(dir / "source_val.h5");
  std::array<int64_t, 4> histogram{};
  for (uint8_t value : all_masks(archive)) ++histogram[value];
  const ProcessResult result = da_tiles({"inspect", dir / "source_val.h5"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("tiles: 12  shape: [12, 3, 32, 32]  dtype: uint8"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("bands: red, green, blue"), std::string::npos) << result.out;
  const char* names[] = {"background", "building", "road", "water"};
  for (int k = 0; k < 4; ++k) {
    const std::string line = std::to_string(k) + " " + names[k] + ": " + std::to_string(histogram[k]) + " pixels";
    EXPECT_NE(result.out.find(line), std::string::npos) << line << "\n" << result.out;
  }
  EXPECT_NE(result.out.find("ignore: 0 pixels (0.00%)"), std::string::npos) << result.out;
}

// Overwrites one mask pixel of tile `tile` with `value`, behind the writer's back.
void corrupt_mask(const std::string& path, hsize_t tile, uint8_t value) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hid_t dataset = H5Dopen2(file, "/masks", H5P_DEFAULT);
  const hid_t space = H5Dget_space(dataset);
  const hsize_t start[3] = {tile, 5, 5}, count[3] = {1, 1, 1};
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
  const hid_t memory = H5Screate_simple(3, count, nullptr);
  EXPECT_GE(H5Dwrite(dataset, H5T_NATIVE_UINT8, memory, space, H5P_DEFAULT, &value), 0);
  H5Sclose(memory);
  H5Sclose(space);
  H5Dclose(dataset);
  H5Fclose(file);
}

TEST(DaTilesInspect, VerifyReportsEveryBadMaskWithTileIndex) {
  TempDir dir;
  synth(dir.path(), 4);
  const std::string bad = dir / "source_val.h5";
  corrupt_mask(bad, 3, 9);
  corrupt_mask(bad, 7, 200);
  ProcessResult result = da_tiles({"inspect", "--verify", dir / "source_train.h5", bad});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.out.find("/masks tile 3: value 9"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("/masks tile 7: value 200"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("verify: 2 problems in 2 files"), std::string::npos) << result.out;
  // Without --verify the first problem stops the run, also with status 1.
  result = da_tiles({"inspect", bad});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("/masks tile 3"), std::string::npos) << result.err;
  result = da_tiles({"inspect", "--verify", dir / "target_val.h5"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("verify: 0 problems in 1 file"), std::string::npos) << result.out;
}

}  // namespace
