// predict --scene: maps of whole GeoTIFF scenes by sliding window. One
// window equals the model's one pass and keeps the scene's georeference,
// small overlapping windows leave no seams, scenes that do not fit the model
// are refused, --tta maps are the mean probability of the symmetries, and
// two ranks under mpirun write what one rank writes.
#include <ATen/ATen.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gtest/gtest.h>
#include <ogr_srs_api.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "dist/local_communicator.h"
#include "inference/inference_fixture.h"
#include "inference/scene_predict.h"
#include "models/segmentation_model.h"
#include "support/process.h"

namespace da::test {
namespace {

namespace fs = std::filesystem;

// A 3-band uint8 GeoTIFF scene with a geotransform, a CRS and nodata 0 in
// its top-left corner.
void write_scene(const std::string& path, std::int64_t height, std::int64_t width, int bands = 3) {
  GDALAllRegister();
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path.c_str(), static_cast<int>(width),
                               static_cast<int>(height), bands, GDT_Byte, nullptr);
  ASSERT_NE(ds, nullptr);
  std::array<double, 6> gt{500000.0, 0.5, 0.0, 4200000.0, 0.0, -0.5};
  GDALSetGeoTransform(ds, gt.data());
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 32633);
  char* wkt = nullptr;
  OSRExportToWkt(srs, &wkt);
  GDALSetProjection(ds, wkt);
  CPLFree(wkt);
  OSRDestroySpatialReference(srs);
  for (int b = 1; b <= bands; ++b) {
    std::vector<std::uint8_t> pixels(static_cast<std::size_t>(height * width));
    for (std::int64_t y = 0; y < height; ++y) {
      for (std::int64_t x = 0; x < width; ++x) {
        pixels[static_cast<std::size_t>(y * width + x)] =
            (y < 5 && x < 7) ? 0 : static_cast<std::uint8_t>(1 + (y / 9 * 37 + x / 13 * 59 + b * 71 + (x * y) % 17) % 250);
      }
    }
    GDALRasterBandH band = GDALGetRasterBand(ds, b);
    GDALSetRasterNoDataValue(band, 0);
    ASSERT_EQ(GDALRasterIO(band, GF_Write, 0, 0, static_cast<int>(width), static_cast<int>(height), pixels.data(),
                           static_cast<int>(width), static_cast<int>(height), GDT_Byte, 0, 0),
              CE_None);
  }
  GDALClose(ds);
}

at::Tensor read_band(const std::string& path, GDALDataType type, double* nodata = nullptr) {
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  EXPECT_NE(ds, nullptr) << path;
  const int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
  at::Tensor out = at::empty({h, w}, type == GDT_Byte ? at::kByte : at::kFloat);
  GDALRasterBandH band = GDALGetRasterBand(ds, 1);
  EXPECT_EQ(GDALRasterIO(band, GF_Read, 0, 0, w, h, out.data_ptr(), w, h, type, 0, 0), CE_None);
  if (nodata != nullptr) *nodata = GDALGetRasterNoDataValue(band, nullptr);
  GDALClose(ds);
  return out;
}

class ScenePrediction : public Inference {
 protected:
  // Maps `scene` with `window`/`overlap`; returns classes and confidence.
  std::pair<at::Tensor, at::Tensor> map_scene(const std::string& scene, std::int64_t window, std::int64_t overlap) {
    inference::ScenePredictOptions options;
    options.checkpoint = checkpoint_;
    options.scenes = {scene};
    options.output_dir = dir_ + "/maps" + std::to_string(window) + "_" + std::to_string(overlap);
    options.confidence = true;
    options.window = {window, overlap, 4};
    dist::LocalCommunicator local;
    EXPECT_EQ(inference::predict_scenes(options, local), 1);
    const std::string stem = options.output_dir + "/" + fs::path(scene).stem().string();
    double nodata = 0;
    const at::Tensor classes = read_band(stem + "_classes.tif", GDT_Byte, &nodata);
    EXPECT_EQ(nodata, 255.0);
    return {classes, read_band(stem + "_confidence.tif", GDT_Float32)};
  }

  // The error predicting `scene` ends with; no map of it may be written.
  std::string refusal_of(const std::string& scene) {
    inference::ScenePredictOptions options;
    options.checkpoint = checkpoint_;
    options.scenes = {scene};
    options.output_dir = dir_ + "/maps";
    dist::LocalCommunicator local;
    const std::string error = error_of([&] { inference::predict_scenes(options, local); });
    EXPECT_FALSE(fs::exists(options.output_dir + "/" + fs::path(scene).stem().string() + "_classes.tif"));
    return error;
  }

  // The model's one-pass logits [K, H, W] of a whole scene, normalised by
  // dtype as the checkpoint says.
  at::Tensor one_pass(const std::string& scene) {
    GDALDatasetH ds = GDALOpen(scene.c_str(), GA_ReadOnly);
    const int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
    at::Tensor pixels = at::empty({3, h, w}, at::kFloat);
    EXPECT_EQ(GDALDatasetRasterIO(ds, GF_Read, 0, 0, w, h, pixels.data_ptr(), w, h, GDT_Float32, 3, nullptr, 0, 0, 0),
              CE_None);
    GDALClose(ds);
    return logits_of(model_, (pixels / 255.0).unsqueeze(0), models::Domain::kSource)[0];
  }
};

// One window covering the whole scene: the map is exactly the model's
// one-pass argmax and softmax maximum (nodata pixels aside), and the
// geotransform, CRS, nodata, tiling and compression are the scene's/ours.
TEST_F(ScenePrediction, OneWindowEqualsOnePassAndKeepsTheGeoreference) {
  const std::string scene = dir_ + "/scene.tif";
  write_scene(scene, 128, 128);
  const auto [classes, confidence] = map_scene(scene, 128, 0);
  const at::Tensor logits = one_pass(scene);
  at::Tensor expected = logits.argmax(0).to(at::kByte);
  at::Tensor expected_confidence = std::get<0>(at::softmax(logits, 0).max(0));
  expected.narrow(0, 0, 5).narrow(1, 0, 7).fill_(255);
  expected_confidence.narrow(0, 0, 5).narrow(1, 0, 7).fill_(-1.0);
  EXPECT_TRUE(at::equal(classes, expected));
  EXPECT_LT((confidence - expected_confidence).abs().max().item<double>(), 1e-5);

  GDALDatasetH in = GDALOpen(scene.c_str(), GA_ReadOnly);
  GDALDatasetH out = GDALOpen((dir_ + "/maps128_0/scene_classes.tif").c_str(), GA_ReadOnly);
  std::array<double, 6> in_gt{}, out_gt{};
  GDALGetGeoTransform(in, in_gt.data());
  ASSERT_EQ(GDALGetGeoTransform(out, out_gt.data()), CE_None);
  EXPECT_EQ(out_gt, in_gt);
  OGRSpatialReferenceH a = OSRNewSpatialReference(GDALGetProjectionRef(in));
  OGRSpatialReferenceH b = OSRNewSpatialReference(GDALGetProjectionRef(out));
  EXPECT_TRUE(OSRIsSame(a, b));
  OSRDestroySpatialReference(a);
  OSRDestroySpatialReference(b);
  EXPECT_STREQ(GDALGetMetadataItem(out, "COMPRESSION", "IMAGE_STRUCTURE"), "DEFLATE");
  int block_x = 0, block_y = 0;
  GDALGetBlockSize(GDALGetRasterBand(out, 1), &block_x, &block_y);
  EXPECT_EQ(block_x, 256);  // tiled, not strips
  GDALClose(out);
  GDALClose(in);
}

// Small overlapping windows: the tiny U-Net's receptive field spans a whole
// window, so its stitched map differs from the one-pass map where context
// matters (about 20% of the pixels of this untrained model); what blending
// must guarantee is that the window grid lines agree no worse than the
// pixels between them (no seams).
TEST_F(ScenePrediction, NoSeamsAlongTheWindowGrid) {
  const std::int64_t h = 96, w = 128;
  const std::string scene = dir_ + "/scene.tif";
  write_scene(scene, h, w);
  const auto [classes, confidence] = map_scene(scene, 32, 16);
  EXPECT_TRUE((classes.narrow(0, 0, 5).narrow(1, 0, 7) == 255).all().item<bool>());
  EXPECT_TRUE((confidence.narrow(0, 0, 5).narrow(1, 0, 7) == -1.0F).all().item<bool>());
  const at::Tensor expected = one_pass(scene).argmax(0).to(at::kByte);
  at::Tensor valid = at::ones({h, w}, at::kBool);
  valid.narrow(0, 0, 5).narrow(1, 0, 7).fill_(false);
  // Window borders of the padded scene every 16 pixels, shifted by the 8-pixel margin.
  at::Tensor grid = at::zeros({h, w}, at::kBool);
  for (std::int64_t p = 8; p < std::max(h, w) + 8; p += 16) {
    if (p - 8 < h) grid.narrow(0, p - 8, 1).fill_(true);
    if (p - 8 < w) grid.narrow(1, p - 8, 1).fill_(true);
  }
  auto agreement = [&](const at::Tensor& where) {
    return (classes.eq(expected) & where).sum().item<double>() / where.sum().item<double>();
  };
  const double on_grid = agreement(grid & valid), off_grid = agreement(~grid & valid);
  EXPECT_GT(off_grid, 0.5);
  EXPECT_GT(on_grid, off_grid - 0.05) << "seams: " << on_grid << " on the grid vs " << off_grid << " elsewhere";
}

TEST_F(ScenePrediction, ScenesThatDoNotFitTheModelAreRefused) {
  const std::string scene = dir_ + "/four.tif";
  write_scene(scene, 40, 40, 4);
  EXPECT_EQ(refusal_of(scene), scene + ": the model expects 3 bands, the scene has 4");
}

// A header may claim any size: a sparse GeoTIFF of a few hundred bytes
// that says it has 2^31 - 1 columns is refused before a row is allocated.
TEST_F(ScenePrediction, ScenesClaimingAbsurdWidthsAreRefused) {
  const std::string scene = dir_ + "/wide.tif";
  GDALAllRegister();
  char** creation = CSLSetNameValue(nullptr, "SPARSE_OK", "TRUE");
  creation = CSLSetNameValue(creation, "BIGTIFF", "YES");
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), scene.c_str(), 2147483647, 4, 3, GDT_Byte, creation);
  CSLDestroy(creation);
  ASSERT_NE(ds, nullptr);
  GDALClose(ds);
  EXPECT_EQ(refusal_of(scene), scene + ": a row of 2147483647 pixels x 3 bands is over 1024 MiB as float: split the "
                                       "scene (e.g. gdal_translate -srcwin)");
}

// --tta d4 with one window over the whole scene: the confidence is the
// mean over the 8 symmetries of the softmax of the model's one-pass logits
// (computed here with another parametrisation of the group), the classes
// its argmax; an unknown mode is a usage error naming the valid ones.
TEST_F(ScenePrediction, TtaMapsAreTheMeanProbabilityOfTheSymmetries) {
  const std::string scene = dir_ + "/scene.tif";
  write_scene(scene, 64, 64);
  const auto r = da_dist({"predict", "--checkpoint", checkpoint_, "--scene", scene, "--output-dir", dir_ + "/tta",
                          "--window", "64", "--overlap", "0", "--tta", "d4", "--confidence", "--domain", "source"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  GDALDatasetH ds = GDALOpen(scene.c_str(), GA_ReadOnly);
  at::Tensor pixels = at::empty({3, 64, 64}, at::kFloat);
  ASSERT_EQ(GDALDatasetRasterIO(ds, GF_Read, 0, 0, 64, 64, pixels.data_ptr(), 64, 64, GDT_Float32, 3, nullptr, 0, 0, 0),
            CE_None);
  GDALClose(ds);
  const at::Tensor x = (pixels / 255.0).unsqueeze(0);
  at::Tensor mean = at::zeros({kClasses, 64, 64});
  for (const bool transpose : {false, true}) {
    for (const std::vector<std::int64_t>& flip : std::vector<std::vector<std::int64_t>>{{}, {2}, {3}, {2, 3}}) {
      at::Tensor t = transpose ? x.transpose(2, 3) : x;
      if (!flip.empty()) t = t.flip(flip);
      at::Tensor y = logits_of(model_, t.contiguous(), models::Domain::kSource);
      if (!flip.empty()) y = y.flip(flip);
      if (transpose) y = y.transpose(2, 3);
      mean += at::softmax(y[0], 0) / 8.0;
    }
  }
  auto [expected_confidence, expected] = mean.max(0);
  expected = expected.to(at::kByte);
  expected.narrow(0, 0, 5).narrow(1, 0, 7).fill_(255);
  expected_confidence.narrow(0, 0, 5).narrow(1, 0, 7).fill_(-1.0);
  EXPECT_TRUE(at::equal(read_band(dir_ + "/tta/scene_classes.tif", GDT_Byte), expected));
  const at::Tensor confidence = read_band(dir_ + "/tta/scene_confidence.tif", GDT_Float32);
  EXPECT_LT((confidence - expected_confidence).abs().max().item<double>(), 1e-5);
  // Not the plain model's map: the augmentation changed the probabilities.
  EXPECT_GT((confidence - std::get<0>(at::softmax(logits_of(model_, x, models::Domain::kSource)[0], 0).max(0)))
                .abs().max().item<double>(), 1e-3);

  const auto bad = da_dist({"predict", "--checkpoint", checkpoint_, "--scene", scene, "--output-dir", dir_ + "/tta",
                            "--tta", "d8"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "da_dist: usage error: --tta: unknown mode 'd8', valid modes are 'none', 'flips' or 'd4'\n");
  const auto archive = da_dist({"predict", "--checkpoint", checkpoint_, "--input", geo_, "--output", dir_ + "/o.h5",
                                "--tta", "d4"});
  EXPECT_EQ(archive.exit_code, 2);
  EXPECT_EQ(archive.err, "da_dist: usage error: predict: --tta and --strip-rows apply to --scene RASTER... only\n");
}

// Under mpirun the scenes are shared across the ranks: here two whole scenes,
// one each, and a tall one left over, split across both ranks in strips of
// two window rows (three rounds), with an overlap larger than a third of the
// window and test-time augmentation. The files, classes and confidence, are
// byte-identical to those of one process. A scene that cannot be read ends
// the job with its message instead of hanging the other rank.
TEST_F(ScenePrediction, TwoRanksWriteWhatOneRankWrites) {
  std::vector<std::string> scenes;
  for (int i = 0; i < 3; ++i) {
    scenes.push_back(dir_ + "/s" + std::to_string(i) + ".tif");
    write_scene(scenes.back(), i == 2 ? 200 : 40 + 8 * i, 50);
  }
  auto args = [&](const std::string& out, const std::vector<std::string>& rasters) {
    std::vector<std::string> a{"predict", "--checkpoint", checkpoint_, "--output-dir", out, "--window", "32",
                               "--overlap", "12", "--strip-rows", "40", "--tta", "flips", "--confidence", "--scene"};
    a.insert(a.end(), rasters.begin(), rasters.end());
    return a;
  };
  auto mpirun = [&](const std::vector<std::string>& da_dist_args) {
    std::vector<std::string> mpi{"-np", "2", "--oversubscribe", "-x", "OMP_NUM_THREADS=1",
                                 test::binary_path("src/da_dist")};
    mpi.insert(mpi.end(), da_dist_args.begin(), da_dist_args.end());
    return test::run_process("mpirun", mpi, test::mpirun_env(), 120);
  };
  const auto one =
      test::run_process(test::binary_path("src/da_dist"), args(dir_ + "/one", scenes), {"OMP_NUM_THREADS=1"}, 120);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const auto two = mpirun(args(dir_ + "/two", scenes));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.err.find("s2.tif: 50x200 pixels in 6 strips over 2 ranks"), std::string::npos) << two.err;
  for (int i = 0; i < 3; ++i) {
    for (const std::string suffix : {"_classes.tif", "_confidence.tif"}) {
      const std::string name = "/s" + std::to_string(i) + suffix;
      ASSERT_TRUE(fs::exists(dir_ + "/two" + name)) << name;
      EXPECT_EQ(read_text(dir_ + "/one" + name), read_text(dir_ + "/two" + name)) << name;
    }
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ + "/two"), fs::directory_iterator()), 6);  // no temporaries

  const auto missing = mpirun(args(dir_ + "/none", {dir_ + "/none.tif"}));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find(dir_ + "/none.tif: cannot open the raster"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace da::test
