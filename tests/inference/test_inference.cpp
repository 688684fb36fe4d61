// predict and evaluate: predictions equal the argmax of the model's logits
// computed here on the normalised images, probabilities its softmax, the
// output archive reads back through the io reader, GeoTIFFs carry each
// tile's geotransform and CRS, evaluation equals a confusion matrix built
// here; bad inputs are refused with messages naming the file; the da_dist
// commands' exit codes and usage errors.
#include <ATen/ATen.h>
#include <cpl_conv.h>
#include <gdal.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <ogr_srs_api.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "config/loader.h"
#include "dist/local_communicator.h"
#include "inference/checkpoint_model.h"
#include "inference/evaluate.h"
#include "inference/export.h"
#include "inference/geotiff.h"
#include "inference/predict.h"
#include "inference/scene_predict.h"
#include "inference/scene_split.h"
#include "inference/sliding_window.h"
#include "inference/tta.h"
#include "io/archive_fixtures.h"
#include "io/archive_set.h"
#include "io/tile_archive_writer.h"
#include "metrics/confusion_matrix.h"
#include "models/segmentation_model.h"
#include "setup/checkpoint.h"
#include "support/process.h"

namespace da::test {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kSize = 32;
constexpr std::int64_t kBands = 3;
constexpr std::int64_t kClasses = 3;
const std::vector<std::string> kClassNames = {"background", "building", "road"};

std::string utm32_wkt() {
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, 32632);
  char* wkt = nullptr;
  OSRExportToWkt(srs, &wkt);
  std::string text = wkt;
  CPLFree(wkt);
  OSRDestroySpatialReference(srs);
  return text;
}

std::array<double, 6> geotransform_of(std::int64_t n) {
  return {500000.0 + 64.0 * static_cast<double>(n), 0.5, 0.0, 5700000.0 - 16.0 * static_cast<double>(n), 0.0, -0.5};
}

// Pseudo-random but reproducible pixels with some structure, so a random
// model does not predict one class everywhere.
std::uint8_t pixel(std::int64_t seed, std::int64_t n, std::int64_t c, std::int64_t y, std::int64_t x) {
  std::uint32_t h = static_cast<std::uint32_t>(seed * 1000003 + n * 7919 + c * 104729 + y * 613 + x * 31);
  h ^= h >> 13;
  h *= 0x5bd1e995u;
  h ^= h >> 15;
  const int smooth = static_cast<int>((x * (c + 1) * 9 + y * (3 - c) * 5 + n * 40) % 256);
  return static_cast<std::uint8_t>((smooth + static_cast<int>(h % 64)) % 256);
}

std::uint8_t label(std::int64_t n, std::int64_t y, std::int64_t x) {
  if (y == 0 && x < 3) return 255;  // ignored pixels
  return static_cast<std::uint8_t>(((y / 8) + (x / 11) + n) % kClasses);
}

struct ArchiveSpec {
  std::int64_t tiles = 4;
  std::int64_t bands = kBands;
  std::int64_t seed = 0;
  bool masks = true;
  bool geo = false;
};

void write_archive(const std::string& path, const ArchiveSpec& spec) {
  io::TileArchiveLayout layout;
  layout.domain = "rural";
  for (std::int64_t c = 0; c < spec.bands; ++c) layout.bands.push_back("band" + std::to_string(c));
  layout.height = kSize;
  layout.width = kSize;
  layout.with_masks = spec.masks;
  if (spec.masks) layout.classes = kClassNames;
  layout.with_origin = true;
  layout.with_source_id = true;
  layout.sources = {"scene_" + std::to_string(spec.seed) + "_a.tif", "scene_" + std::to_string(spec.seed) + "_b.tif"};
  layout.with_geotransform = spec.geo;
  if (spec.geo) layout.crs = utm32_wkt();
  io::TileArchiveWriter writer(path, layout);
  for (std::int64_t n = 0; n < spec.tiles; ++n) {
    std::vector<std::uint8_t> image(static_cast<std::size_t>(spec.bands * kSize * kSize));
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(kSize * kSize));
    for (std::int64_t c = 0; c < spec.bands; ++c) {
      for (std::int64_t y = 0; y < kSize; ++y) {
        for (std::int64_t x = 0; x < kSize; ++x) image[(c * kSize + y) * kSize + x] = pixel(spec.seed, n, c, y, x);
      }
    }
    for (std::int64_t y = 0; y < kSize; ++y) {
      for (std::int64_t x = 0; x < kSize; ++x) mask[y * kSize + x] = label(n, y, x);
    }
    io::TileMeta meta;
    meta.origin = {n * kSize, 3 * n};
    meta.source_id = static_cast<std::int32_t>(n % 2);
    if (spec.geo) meta.geotransform = geotransform_of(n);
    writer.append(image.data(), spec.masks ? mask.data() : nullptr, meta);
  }
  std::vector<double> mean(static_cast<std::size_t>(spec.bands), 120.0), std(static_cast<std::size_t>(spec.bands));
  for (std::size_t c = 0; c < std.size(); ++c) std[c] = 50.0 + static_cast<double>(c);
  writer.set_band_stats(mean, std);
  writer.close();
}

// A tiny model whose BN running statistics are not the defaults (and differ
// between the DSBN branches), saved as a training checkpoint.
models::SegmentationModel make_model(bool dsbn) {
  torch::manual_seed(7);
  models::SegmentationModel model = models::make_segmentation_model({"tiny", kBands, kClasses, dsbn, nullptr});
  model->train();
  torch::NoGradGuard no_grad;
  model->set_domain(models::Domain::kSource);
  for (int i = 0; i < 3; ++i) model->forward(at::rand({2, kBands, kSize, kSize}) * 0.8);
  if (dsbn) {
    model->set_domain(models::Domain::kTarget);
    for (int i = 0; i < 3; ++i) model->forward(at::rand({2, kBands, kSize, kSize}) * 0.3 + 0.6);
  }
  model->eval();
  model->set_domain(models::Domain::kSource);
  return model;
}

void save_checkpoint(const std::string& path, models::SegmentationModel& model, const std::string& source, bool dsbn,
                     const std::string& normalize = "dtype") {
  config::Config cfg;
  cfg.model.encoder = "tiny";
  cfg.model.in_channels = kBands;
  cfg.model.classes = kClasses;
  cfg.model.bn_mode = dsbn ? "dsbn" : "joint";
  cfg.data.source.train = {source};
  cfg.data.val_batch_size = 3;
  cfg.data.workers = 1;
  cfg.data.normalize.mode = normalize;
  cfg.run.device = "cpu";
  std::vector<setup::WeightedMethod> methods;
  setup::save_checkpoint(path, setup::CheckpointParts{*model, methods, nullptr}, setup::TrainingProgress{},
                           config::to_yaml(cfg));
}

// The images of `paths` as raw uint8 [N, C, H, W].
at::Tensor raw_images(const io::ArchiveSet& set) {
  const io::ArchiveInfo& info = set.info();
  at::Tensor images = at::empty({set.size(), info.channels(), info.height, info.width}, at::kByte);
  for (std::int64_t n = 0; n < set.size(); ++n) set.read_image(n, images[n].data_ptr());
  return images;
}

at::Tensor masks_of(const io::ArchiveSet& set) {
  at::Tensor masks = at::empty({set.size(), set.info().height, set.info().width}, at::kByte);
  for (std::int64_t n = 0; n < set.size(); ++n) set.read_mask(n, masks[n].data_ptr<std::uint8_t>());
  return masks;
}

at::Tensor logits_of(models::SegmentationModel& model, const at::Tensor& normalised, models::Domain domain) {
  torch::NoGradGuard no_grad;
  model->eval();
  model->set_domain(domain);
  return model->forward(normalised).logits;
}

// The message of the exception `action` throws, or "no error".
template <class Action>
std::string error_of(Action&& action) {
  try {
    action();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

class Inference : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("da-inference");
    geo_ = dir_ + "/geo.h5";
    plain_ = dir_ + "/plain.h5";
    write_archive(geo_, {5, kBands, 1, true, true});
    write_archive(plain_, {3, kBands, 2, true, false});
    model_ = make_model(false);
    checkpoint_ = dir_ + "/model.ckpt";
    save_checkpoint(checkpoint_, model_, geo_, false);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_, geo_, plain_, checkpoint_;
  models::SegmentationModel model_{nullptr};
};

TEST_F(Inference, CheckpointModelTakesBandsAndClassesFromTheWeights) {
  const inference::CheckpointModel m = inference::load_checkpoint_model(checkpoint_, c10::Device(c10::kCPU));
  EXPECT_EQ(m.spec.encoder, "tiny");
  EXPECT_EQ(m.spec.in_channels, kBands);
  EXPECT_EQ(m.spec.classes, kClasses);
  EXPECT_FALSE(m.spec.domain_specific_bn);
  EXPECT_EQ(m.config.data.val_batch_size, 3);
}

TEST_F(Inference, PredictedMasksAreTheArgmaxOfTheLogits) {
  inference::PredictOptions options;
  options.checkpoint = checkpoint_;
  options.inputs = {geo_, plain_};
  options.output = dir_ + "/out/pred.h5";
  options.probabilities = true;
  options.batch_size = 3;  // 8 tiles: the last batch is padded
  const auto summary = inference::predict(options);
  EXPECT_EQ(summary.tiles, 8);
  EXPECT_EQ(summary.geotiffs, 0);
  EXPECT_EQ(summary.classes, kClassNames);

  const io::ArchiveSet input({geo_, plain_});
  const io::ArchiveSet output({options.output});  // the reader accepts it (and ignores /probabilities)
  const io::ArchiveInfo& info = output.info();
  EXPECT_EQ(output.size(), 8);
  EXPECT_EQ(info.bands, input.info().bands);
  EXPECT_EQ(info.classes, kClassNames);
  EXPECT_EQ(info.domain, "rural");
  EXPECT_EQ(info.pixel_type, io::PixelType::kUint8);
  EXPECT_TRUE(info.has_masks);
  EXPECT_TRUE(info.has_origin);
  EXPECT_TRUE(info.has_source_id);
  EXPECT_FALSE(info.has_geotransform);  // only one of the two shards has one
  ASSERT_TRUE(output.band_stats().has_value());
  EXPECT_EQ(output.band_stats()->mean, input.band_stats()->mean);

  const at::Tensor raw = raw_images(input);
  EXPECT_TRUE(raw_images(output).equal(raw));
  const at::Tensor logits = logits_of(model_, raw.to(at::kFloat) / 255.0, models::Domain::kTarget);
  const at::Tensor expected = logits.argmax(1).to(at::kByte);
  const at::Tensor predicted = masks_of(output);
  EXPECT_TRUE(predicted.equal(expected));
  EXPECT_GT(std::get<0>(at::_unique(expected)).numel(), 1) << "a model predicting one class tests little";

  // origin kept; source_id remapped into the union of the shards' sources
  EXPECT_EQ(output.shard(0).info().sources.size(), 4u);
  for (std::int64_t n = 0; n < 8; ++n) {
    const auto where = input.locate(n);
    EXPECT_EQ(output.shard(0).read_origin(n), input.shard(where.shard).read_origin(where.index));
    const auto& in_sources = input.shard(where.shard).info().sources;
    EXPECT_EQ(output.shard(0).info().sources.at(output.shard(0).read_source_id(n)),
              in_sources.at(input.shard(where.shard).read_source_id(where.index)));
  }

  // /probabilities: [N, K, H, W] float32, one tile per chunk, the softmax
  const hid_t file = H5Fopen(options.output.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hid_t dataset = H5Dopen2(file, "/probabilities", H5P_DEFAULT);
  ASSERT_GE(dataset, 0);
  const hid_t space = H5Dget_space(dataset);
  hsize_t dims[4] = {};
  ASSERT_EQ(H5Sget_simple_extent_ndims(space), 4);
  H5Sget_simple_extent_dims(space, dims, nullptr);
  EXPECT_EQ(std::vector<hsize_t>(dims, dims + 4), (std::vector<hsize_t>{8, kClasses, kSize, kSize}));
  const hid_t plist = H5Dget_create_plist(dataset);
  hsize_t chunk[4] = {};
  ASSERT_EQ(H5Pget_chunk(plist, 4, chunk), 4);
  EXPECT_EQ(std::vector<hsize_t>(chunk, chunk + 4), (std::vector<hsize_t>{1, kClasses, kSize, kSize}));
  const hid_t type = H5Dget_type(dataset);
  EXPECT_EQ(H5Tget_class(type), H5T_FLOAT);
  EXPECT_EQ(H5Tget_size(type), 4u);
  at::Tensor probabilities = at::empty({8, kClasses, kSize, kSize}, at::kFloat);
  ASSERT_GE(H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, probabilities.data_ptr<float>()), 0);
  H5Tclose(type);
  H5Pclose(plist);
  H5Sclose(space);
  H5Dclose(dataset);
  H5Fclose(file);
  EXPECT_TRUE(at::allclose(probabilities.sum(1), at::ones({8, kSize, kSize}), 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(probabilities, logits.softmax(1), 1e-5, 1e-6));
  // no temporary files are left next to the output
  for (const auto& entry : fs::directory_iterator(dir_ + "/out")) EXPECT_EQ(entry.path().filename(), "pred.h5");
}

TEST_F(Inference, NormalisationFollowsTheCheckpoint) {
  // normalize: archive -> (raw - band_mean) / band_std of the input archive
  const std::string checkpoint = dir_ + "/archive-norm.ckpt";
  save_checkpoint(checkpoint, model_, geo_, false, "archive");
  inference::PredictOptions options;
  options.checkpoint = checkpoint;
  options.inputs = {geo_};
  options.output = dir_ + "/norm.h5";
  inference::predict(options);
  const io::ArchiveSet input({geo_});
  const auto stats = *input.band_stats();
  const at::Tensor mean = at::tensor(stats.mean, at::kDouble).to(at::kFloat).view({1, kBands, 1, 1});
  const at::Tensor std = at::tensor(stats.std, at::kDouble).to(at::kFloat).view({1, kBands, 1, 1});
  const at::Tensor normalised = (raw_images(input).to(at::kFloat) - mean) / std;
  const at::Tensor expected = logits_of(model_, normalised, models::Domain::kTarget).argmax(1).to(at::kByte);
  EXPECT_TRUE(masks_of(io::ArchiveSet({options.output})).equal(expected));
}

TEST_F(Inference, GeoTiffsCarryTheTilesGeotransformAndCrs) {
  inference::PredictOptions options;
  options.checkpoint = checkpoint_;
  options.inputs = {geo_, plain_};
  options.output = dir_ + "/pred.h5";
  options.geotiff_dir = dir_ + "/tifs";
  const auto summary = inference::predict(options);
  EXPECT_EQ(summary.geotiffs, 5);  // the 5 tiles of geo.h5; plain.h5 has no geotransform
  const io::ArchiveSet output({options.output});
  const at::Tensor masks = masks_of(output);
  GDALAllRegister();
  OGRSpatialReferenceH expected_srs = OSRNewSpatialReference(utm32_wkt().c_str());
  for (std::int64_t n = 0; n < 8; ++n) {
    const std::string path = options.geotiff_dir + "/" + inference::geotiff_name(n);
    if (n >= 5) {
      EXPECT_FALSE(fs::exists(path)) << path;
      continue;
    }
    GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
    ASSERT_NE(ds, nullptr) << path;
    EXPECT_EQ(GDALGetRasterXSize(ds), kSize);
    EXPECT_EQ(GDALGetRasterYSize(ds), kSize);
    EXPECT_EQ(GDALGetRasterCount(ds), 1);
    std::array<double, 6> gt{};
    ASSERT_EQ(GDALGetGeoTransform(ds, gt.data()), CE_None);
    EXPECT_EQ(gt, geotransform_of(n));
    OGRSpatialReferenceH srs = OSRNewSpatialReference(GDALGetProjectionRef(ds));
    EXPECT_TRUE(OSRIsSame(srs, expected_srs)) << GDALGetProjectionRef(ds);
    OSRDestroySpatialReference(srs);
    const char* compression = GDALGetMetadataItem(ds, "COMPRESSION", "IMAGE_STRUCTURE");
    EXPECT_STREQ(compression, "LZW");
    GDALRasterBandH band = GDALGetRasterBand(ds, 1);
    EXPECT_EQ(GDALGetRasterDataType(band), GDT_Byte);
    int has_nodata = 0;
    EXPECT_EQ(GDALGetRasterNoDataValue(band, &has_nodata), 255.0);
    EXPECT_TRUE(has_nodata);
    at::Tensor pixels = at::empty({kSize, kSize}, at::kByte);
    ASSERT_EQ(GDALRasterIO(band, GF_Read, 0, 0, kSize, kSize, pixels.data_ptr(), kSize, kSize, GDT_Byte, 0, 0),
              CE_None);
    EXPECT_TRUE(pixels.equal(masks[n])) << path;
    GDALClose(ds);
  }
  OSRDestroySpatialReference(expected_srs);

  // geo.h5 alone: the output archive keeps geotransform and CRS
  options.inputs = {geo_};
  options.output = dir_ + "/geo-pred.h5";
  options.geotiff_dir.clear();
  inference::predict(options);
  const io::ArchiveSet geo_output({options.output});
  ASSERT_TRUE(geo_output.info().has_geotransform);
  EXPECT_EQ(geo_output.info().crs, utm32_wkt());
  for (std::int64_t n = 0; n < 5; ++n) EXPECT_EQ(geo_output.shard(0).read_geotransform(n), geotransform_of(n));
}

TEST_F(Inference, DomainPicksTheDsbnBranch) {
  models::SegmentationModel model = make_model(true);
  const std::string checkpoint = dir_ + "/dsbn.ckpt";
  save_checkpoint(checkpoint, model, geo_, true);
  const io::ArchiveSet input({geo_});
  const at::Tensor normalised = raw_images(input).to(at::kFloat) / 255.0;
  const at::Tensor source = logits_of(model, normalised, models::Domain::kSource).argmax(1).to(at::kByte);
  const at::Tensor target = logits_of(model, normalised, models::Domain::kTarget).argmax(1).to(at::kByte);
  ASSERT_FALSE(source.equal(target)) << "the branches should differ for this test to mean anything";
  for (const auto& [domain, expected] :
       {std::pair{models::Domain::kSource, source}, std::pair{models::Domain::kTarget, target}}) {
    inference::PredictOptions options;
    options.checkpoint = checkpoint;
    options.inputs = {geo_};
    options.output = dir_ + "/dsbn-" + models::domain_name(domain) + ".h5";
    options.domain = domain;
    inference::predict(options);
    EXPECT_TRUE(masks_of(io::ArchiveSet({options.output})).equal(expected)) << models::domain_name(domain);
  }
}

TEST_F(Inference, EvaluateEqualsAConfusionMatrixOfTheLogits) {
  inference::EvaluateOptions options;
  options.checkpoint = checkpoint_;
  options.inputs = {geo_, plain_};
  options.batch_size = 3;
  const inference::Evaluation e = inference::evaluate(options);
  const io::ArchiveSet input({geo_, plain_});
  const at::Tensor logits = logits_of(model_, raw_images(input).to(at::kFloat) / 255.0, models::Domain::kTarget);
  metrics::ConfusionMatrix matrix(kClasses);
  matrix.add_logits(logits, masks_of(input).to(at::kLong), 255);
  EXPECT_EQ(e.tiles, 8);
  EXPECT_TRUE(e.counts.equal(matrix.counts())) << e.counts << matrix.counts();
  const auto scores = metrics::compute_scores(matrix.counts());
  EXPECT_EQ(e.scores.pixels, 8 * (kSize * kSize - 3));
  EXPECT_DOUBLE_EQ(e.scores.miou, scores.miou);
  EXPECT_DOUBLE_EQ(e.scores.overall_accuracy, scores.overall_accuracy);
  EXPECT_EQ(e.class_names, kClassNames);

  const std::string table = inference::scores_table(e);
  for (const auto& name : kClassNames) EXPECT_NE(table.find(name), std::string::npos) << table;
  EXPECT_NE(table.find("mIoU"), std::string::npos) << table;
  EXPECT_NE(table.find("overall accuracy"), std::string::npos) << table;
  const std::string json = inference::scores_json(e);
  EXPECT_NE(json.find("\"miou\": "), std::string::npos) << json;
  EXPECT_NE(json.find("\"confusion_matrix\": ["), std::string::npos) << json;
  EXPECT_NE(json.find("{\"name\": \"road\", \"iou\": "), std::string::npos) << json;
}

TEST_F(Inference, BadInputsAreRefusedNamingTheFile) {
  const std::string four_bands = dir_ + "/four.h5";
  write_archive(four_bands, {2, 4, 3, true, false});
  inference::PredictOptions options;
  options.checkpoint = checkpoint_;
  options.inputs = {four_bands};
  options.output = dir_ + "/never.h5";
  std::string message = error_of([&] { inference::predict(options); });
  EXPECT_NE(message.find(four_bands), std::string::npos) << message;
  EXPECT_NE(message.find("has 4 bands"), std::string::npos) << message;
  EXPECT_NE(message.find("expects 3 bands"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(options.output));

  options.inputs = {geo_};
  options.checkpoint = dir_ + "/missing.ckpt";
  message = error_of([&] { inference::predict(options); });
  EXPECT_NE(message.find(dir_ + "/missing.ckpt"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(options.output));

  options.checkpoint = checkpoint_;
  options.output = geo_;  // predicting an archive over itself
  const std::string before = io::test::file_bytes(geo_);
  message = error_of([&] { inference::predict(options); });
  EXPECT_NE(message.find(geo_ + ": the output is one of the input archives"), std::string::npos) << message;
  EXPECT_EQ(io::test::file_bytes(geo_), before);

  const std::string unlabelled = dir_ + "/unlabelled.h5";
  write_archive(unlabelled, {2, kBands, 4, false, false});
  inference::EvaluateOptions evaluate;
  evaluate.checkpoint = checkpoint_;
  evaluate.inputs = {unlabelled};
  message = error_of([&] { inference::evaluate(evaluate); });
  EXPECT_NE(message.find(unlabelled + ": has no /masks"), std::string::npos) << message;

  // an unlabelled archive predicts fine, class names from the checkpoint's source archives
  options.checkpoint = checkpoint_;
  options.inputs = {unlabelled};
  options.output = dir_ + "/unlabelled-pred.h5";
  EXPECT_EQ(inference::predict(options).classes, kClassNames);
  EXPECT_EQ(io::ArchiveSet({options.output}).info().classes, kClassNames);
}

// da_dist predict / evaluate as processes.
ProcessResult da_dist(const std::vector<std::string>& args) { return run_process(binary_path("src/da_dist"), args); }

TEST_F(Inference, CommandsExitCodes) {
  const std::string out = dir_ + "/cli.h5";
  auto r = da_dist({"predict", "--checkpoint", checkpoint_, "--input", geo_, plain_, "--output", out, "--probabilities",
                    "--geotiff", dir_ + "/cli-tifs", "--domain", "source", "--batch-size", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(io::ArchiveSet({out}).size(), 8);
  EXPECT_TRUE(fs::exists(dir_ + "/cli-tifs/" + inference::geotiff_name(4)));

  const std::string json = dir_ + "/metrics.json";
  r = da_dist({"evaluate", "--checkpoint", checkpoint_, "--input", geo_, "--input", plain_, "--json", json});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("mIoU"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("building"), std::string::npos) << r.out;
  EXPECT_NE(read_text(json).find("\"tiles\": 8"), std::string::npos) << read_text(json);

  r = da_dist({"evaluate", "--checkpoint", dir_ + "/missing.ckpt", "--input", geo_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("da_dist: error on rank 0: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir_ + "/missing.ckpt"), std::string::npos) << r.err;

  const auto usage = [&](const std::vector<std::string>& args, const std::string& message) {
    const auto u = da_dist(args);
    EXPECT_EQ(u.exit_code, 2) << u.err;
    EXPECT_EQ(u.err, "da_dist: usage error: " + message + "\n");
    EXPECT_EQ(u.out, "");
  };
  usage({"predict", "--input", geo_, "--output", out}, "predict: --checkpoint CKPT is required (see --help)");
  usage({"predict", "--checkpoint", checkpoint_, "--output", out},
        "predict: --input ARCHIVE... is required (see --help)");
  usage({"predict", "--checkpoint", checkpoint_, "--input", geo_}, "predict: --output OUT.h5 is required (see --help)");
  usage({"evaluate", "--input", geo_}, "evaluate: --checkpoint CKPT is required (see --help)");
  usage({"evaluate", "--checkpoint", checkpoint_}, "evaluate: --input ARCHIVE... is required (see --help)");
  usage({"evaluate", "--checkpoint", checkpoint_, "--input", geo_, "--domain", "both"},
        "--domain: unknown domain 'both', valid domains are 'source' or 'target'");
  usage({"evaluate", "--checkpoint", checkpoint_, "--input", geo_, "--output", out},
        "unknown option '--output' for evaluate, did you mean '--input'? (see --help)");
  usage({"predict", "--checkpoint", checkpoint_, "--input", "--output", out}, "--input needs at least one archive");
  usage({"predict", "--checkpoint", checkpoint_, "--input", geo_, "--output", out, "--batch-size", "0"},
        "--batch-size: expected a positive integer, got '0'");
  usage({"predict", "--checkpoint", checkpoint_, "--scene", "a.tif"}, "predict: --scene needs --output-dir DIR (see --help)");
  usage({"predict", "--checkpoint", checkpoint_, "--scene", "a.tif", "--input", geo_, "--output-dir", out},
        "predict: give --scene RASTER... or --input ARCHIVE..., not both");
  usage({"predict", "--checkpoint", checkpoint_, "--scene", "a.tif", "--output-dir", out, "--window", "32",
         "--overlap", "32"},
        "--overlap 32 must be smaller than --window 32");
  usage({"predict", "--checkpoint", checkpoint_, "--scene", "a.tif", "--output-dir", out, "--overlap", "-1"},
        "--overlap: expected a non-negative integer, got '-1'");
  usage({"predict", "--checkpoint", checkpoint_, "--scene", "--output-dir", out}, "--scene needs at least one raster");
  const auto missing_scene = da_dist({"predict", "--checkpoint", checkpoint_, "--scene", dir_ + "/none.tif",
                                      "--output-dir", dir_ + "/maps"});
  EXPECT_EQ(missing_scene.exit_code, 1) << missing_scene.err;
  EXPECT_NE(missing_scene.err.find(dir_ + "/none.tif: cannot open the raster"), std::string::npos)
      << missing_scene.err;

  // Each command's help lists its own options (--json is evaluate's).
  const auto help = da_dist({"predict", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* option : {"--checkpoint", "--input", "--output", "--probabilities", "--geotiff", "--domain"}) {
    EXPECT_NE(help.out.find(option), std::string::npos) << option;
  }
  EXPECT_EQ(help.out.find("--json"), std::string::npos);
  EXPECT_NE(da_dist({"evaluate", "--help"}).out.find("--json"), std::string::npos);
}

// ---------------------------------------------------------------- export

void write_floats(const std::string& path, const at::Tensor& values) {
  const at::Tensor v = values.to(at::kFloat).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data_ptr<float>()), static_cast<std::streamsize>(v.numel() * sizeof(float)));
  ASSERT_TRUE(out.good()) << path;
}

// Runs an exported model with PyTorch (tests/inference/check_export.py, which
// also checks its JSON against it) on two deterministic inputs, the training
// tile size and a larger non-square size, and returns the largest difference
// from `model`'s logits (branch `domain`); NaN when the script fails.
double pytorch_max_diff(const std::string& model_path, models::SegmentationModel& model, models::Domain domain,
                        const std::string& dir) {
  std::vector<std::string> args{source_path("tests/inference/check_export.py"), model_path,
                                inference::export_json_path(model_path)};
  torch::manual_seed(3);
  const std::vector<std::vector<std::int64_t>> shapes{{2, kBands, kSize, kSize}, {1, kBands, 64, 96}};
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const at::Tensor x = at::randn(shapes[i]);
    const std::string stem = dir + "/case" + std::to_string(i) + "_" + models::domain_name(domain);
    write_floats(stem + "_input.f32", x);
    write_floats(stem + "_expected.f32", logits_of(model, x, domain));
    std::string shape;
    for (const std::int64_t n : shapes[i]) shape += std::to_string(n) + ",";
    args.push_back(stem + "_input.f32:" + stem + "_expected.f32:" + shape + std::to_string(kClasses));
  }
  const ProcessResult r = run_process(test::python_path(), args, {}, 120);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string marker = "max_abs_diff ";
  const auto at = r.out.find(marker);
  if (r.exit_code != 0 || at == std::string::npos) return std::numeric_limits<double>::quiet_NaN();
  return std::stod(r.out.substr(at + marker.size()));
}

TEST_F(Inference, ExportedModelRunsInPyTorchLikeTheModel) {
  const std::string checkpoint = dir_ + "/archive-norm.ckpt";
  save_checkpoint(checkpoint, model_, geo_, false, "archive");
  const auto r = da_dist({"export", "--checkpoint", checkpoint, "--output", dir_ + "/exported"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> files;  // no temporaries left
  for (const auto& entry : fs::directory_iterator(dir_ + "/exported")) files.push_back(entry.path().filename());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"model.json", "model.pt"}));

  const YAML::Node json = YAML::LoadFile(dir_ + "/exported/model.json");  // JSON is YAML
  EXPECT_EQ(json["format"].as<std::string>(), "da_dist-torchscript");
  EXPECT_EQ(json["version"].as<int>(), 1);
  EXPECT_EQ(json["model"].as<std::string>(), "model.pt");
  EXPECT_EQ(json["checkpoint"].as<std::string>(), checkpoint);
  EXPECT_EQ(json["encoder"].as<std::string>(), "tiny");
  EXPECT_EQ(json["domain"].as<std::string>(), "target");
  EXPECT_EQ(json["bands"]["count"].as<int>(), kBands);
  EXPECT_EQ(json["bands"]["names"].as<std::vector<std::string>>(), (std::vector<std::string>{"band0", "band1", "band2"}));
  EXPECT_EQ(json["classes"]["count"].as<int>(), kClasses);
  EXPECT_EQ(json["classes"]["names"].as<std::vector<std::string>>(), kClassNames);
  EXPECT_EQ(json["pixel_type"].as<std::string>(), "uint8");
  // normalize: archive -> the band statistics write_archive stored
  EXPECT_EQ(json["normalization"]["mean"].as<std::vector<double>>(), (std::vector<double>{120, 120, 120}));
  EXPECT_EQ(json["normalization"]["std"].as<std::vector<double>>(), (std::vector<double>{50, 51, 52}));
  EXPECT_EQ(json["tile_size"].as<int>(), kSize);
  EXPECT_EQ(json["size_multiple"].as<int>(), 32);
  EXPECT_EQ(json["input"].as<std::string>(), "float32 NCHW normalised");
  EXPECT_EQ(json["output"].as<std::string>(), "logits NCHW");

  EXPECT_LE(pytorch_max_diff(dir_ + "/exported/model.pt", model_, models::Domain::kTarget, dir_), 1e-5);
}

TEST_F(Inference, ExportKeepsTheChosenDsbnBranch) {
  models::SegmentationModel model = make_model(true);
  const std::string checkpoint = dir_ + "/dsbn.ckpt";
  save_checkpoint(checkpoint, model, geo_, true);
  torch::manual_seed(5);
  const at::Tensor x = at::randn({1, kBands, kSize, kSize});
  ASSERT_GT((logits_of(model, x, models::Domain::kSource) - logits_of(model, x, models::Domain::kTarget))
                .abs()
                .max()
                .item<double>(),
            1e-3)
      << "the branches should differ for this test to mean anything";
  for (const models::Domain domain : {models::Domain::kSource, models::Domain::kTarget}) {
    inference::ExportOptions options;
    options.checkpoint = checkpoint;
    options.output = dir_ + "/dsbn-" + models::domain_name(domain) + ".pt";
    options.domain = domain;
    options.tile = 64;  // traced at 64 x 64, run at 32 x 32 and 64 x 96
    const inference::ExportResult result = inference::export_model(options);
    EXPECT_EQ(result.model_path, options.output);
    EXPECT_EQ(result.json_path, dir_ + "/dsbn-" + models::domain_name(domain) + ".json");
    EXPECT_EQ(YAML::LoadFile(result.json_path)["tile_size"].as<int>(), 64);
    EXPECT_EQ(YAML::LoadFile(result.json_path)["domain"].as<std::string>(), models::domain_name(domain));
    EXPECT_LE(pytorch_max_diff(options.output, model, domain, dir_), 1e-5) << models::domain_name(domain);
  }
}

TEST_F(Inference, ExportCommandErrorsAndRanks) {
  const std::string out = dir_ + "/model.pt";
  const auto usage = [&](const std::vector<std::string>& args, const std::string& message) {
    const auto u = da_dist(args);
    EXPECT_EQ(u.exit_code, 2) << u.err;
    EXPECT_EQ(u.err, "da_dist: usage error: " + message + "\n");
  };
  usage({"export", "--output", out}, "export: --checkpoint CKPT is required (see --help)");
  usage({"export", "--checkpoint", checkpoint_}, "export: --output FILE.pt or DIR is required (see --help)");
  usage({"export", "--checkpoint", checkpoint_, "--output", out, "--domain", "both"},
        "--domain: unknown domain 'both', valid domains are 'source' or 'target'");
  usage({"export", "--checkpoint", checkpoint_, "--output", out, "--tile", "48"},
        "--tile: expected a multiple of 32 (the model's stride), got '48'");
  usage({"export", "--checkpoint", checkpoint_, "--output", out, "--tile", "0"},
        "--tile: expected a positive integer, got '0'");
  usage({"export", "--checkpoint", checkpoint_, "--output", out, "--input", geo_},
        "unknown option '--input' for export, did you mean '--output'? (see --help)");
  const auto missing = da_dist({"export", "--checkpoint", dir_ + "/missing.ckpt", "--output", out});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find(dir_ + "/missing.ckpt"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(out));

  // Under mpirun only rank 0 exports (one log line); the others exit 0.
  const auto two = run_process("mpirun",
                               {"-np", "2", "--oversubscribe", binary_path("src/da_dist"), "export", "--checkpoint",
                                checkpoint_, "--output", out},
                               mpirun_env(), 120);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const std::string said = two.out + two.err;
  const auto first = said.find("exported ");
  ASSERT_NE(first, std::string::npos) << said;
  EXPECT_EQ(said.find("exported ", first + 1), std::string::npos) << said;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_TRUE(fs::exists(dir_ + "/model.json"));
}

// ---------------------------------------------------------------- scenes

TEST(SlidingWindow, StartsCoverTheAxisAndWeightsAreSmoothBumps) {
  EXPECT_EQ(inference::window_starts(70, 16, 10), (std::vector<std::int64_t>{0, 10, 20, 30, 40, 50, 54}));
  EXPECT_EQ(inference::window_starts(16, 16, 10), (std::vector<std::int64_t>{0}));
  const at::Tensor w = inference::blend_weights(8);
  EXPECT_GT(w.min().item<float>(), 0.0F);
  EXPECT_TRUE(at::allclose(w, w.t()));
  EXPECT_TRUE(at::allclose(w, w.flip({0})));
  EXPECT_FLOAT_EQ(w.max().item<float>(), w[3][3].item<float>());
}

// A model without spatial context (a 1x1 convolution): every window gives
// each pixel the same logits, so the blended result must equal one pass
// over the whole image exactly, whatever the window, overlap and batch.
TEST(SlidingWindow, PointwiseModelStitchesToTheWholeImagePass) {
  torch::manual_seed(3);
  const at::Tensor image = at::rand({3, 70, 53});
  const at::Tensor weight = at::randn({4, 3, 1, 1});
  const auto model = [&](const at::Tensor& x) { return at::conv2d(x, weight); };
  const at::Tensor expected = model(image.unsqueeze(0))[0];
  for (const auto& [window, overlap, batch] :
       std::vector<std::array<std::int64_t, 3>>{{16, 6, 3}, {16, 0, 8}, {53, 10, 1}, {20, 19, 2}}) {
    at::Tensor out = at::full({4, 70, 53}, std::nan(""));
    std::int64_t next_row = 0;
    inference::predict_sliding_windows(
        70, 53, {window, overlap, batch}, [&](std::int64_t y, std::int64_t n) { return image.narrow(1, y, n); },
        model,
        [&](std::int64_t y, const at::Tensor& logits) {
          EXPECT_EQ(y, next_row);  // every row once, in order
          next_row = y + logits.size(1);
          out.narrow(1, y, logits.size(1)).copy_(logits);
        });
    EXPECT_EQ(next_row, 70);
    EXPECT_LT((out - expected).abs().max().item<double>(), 1e-5) << window << " " << overlap;
  }
  EXPECT_THROW(inference::predict_sliding_windows(10, 53, {16, 6, 3}, nullptr, nullptr, nullptr), std::invalid_argument);
}

// The rows that window rows [begin, end) finish, computed apart, are
// bit-identical to the same rows of a whole run (what lets ranks compute
// strips of one scene), with a model whose windows see their borders (a
// zero-padded 3x3 convolution), overlaps up to more than half the window
// (windows of two earlier window rows reach a row) and any cut into strips.
TEST(SlidingWindow, PartsOfTheGridAreBitIdenticalToTheWholeRun) {
  torch::manual_seed(5);
  const at::Tensor image = at::rand({3, 70, 53});
  const at::Tensor weight = at::randn({4, 3, 3, 3});
  const auto model = [&](const at::Tensor& x) { return at::conv2d(x, weight, {}, 1, 1); };
  const auto read = [&](std::int64_t y, std::int64_t n) { return image.narrow(1, y, n); };
  for (const auto& [window, overlap, batch] :
       std::vector<std::array<std::int64_t, 3>>{{16, 6, 3}, {16, 0, 2}, {20, 13, 2}, {32, 30, 4}}) {
    at::Tensor whole = at::empty({4, 70, 53});
    const auto keep = [&](std::int64_t y, const at::Tensor& l) { whole.narrow(1, y, l.size(1)).copy_(l); };
    inference::predict_sliding_windows(70, 53, {window, overlap, batch}, read, model, keep);
    const auto starts = inference::window_starts(70, window, window - overlap);
    for (const auto& [ranks, max_rows] : std::vector<std::pair<int, std::size_t>>{{2, 1}, {2, 3}, {3, 2}, {4, 100}}) {
      at::Tensor parts = at::full({4, 70, 53}, std::nan(""));
      for (const inference::Strip& strip : inference::plan_strips(starts.size(), ranks, max_rows)) {
        std::int64_t next = starts[strip.begin];
        inference::predict_sliding_windows(
            70, 53, {window, overlap, batch}, read, model,
            [&](std::int64_t y, const at::Tensor& l) {
              EXPECT_EQ(y, next);
              next = y + l.size(1);
              parts.narrow(1, y, l.size(1)).copy_(l);
            },
            {strip.begin, strip.end});
        EXPECT_EQ(next, inference::window_row_end(starts, strip.end - 1, 70));
      }
      EXPECT_TRUE(at::equal(parts, whole)) << window << " " << overlap << " " << ranks << " " << max_rows;
    }
  }
}

// The windows a part needs are exactly those reaching its first row.
TEST(SlidingWindow, FirstWindowRowNeededIsTheFirstThatReachesTheRow) {
  for (const auto& [length, window, stride] :
       std::vector<std::array<std::int64_t, 3>>{{70, 16, 10}, {70, 16, 16}, {70, 20, 7}, {64, 32, 2}, {16, 16, 4}}) {
    const auto starts = inference::window_starts(length, window, stride);
    for (std::size_t r = 0; r < starts.size(); ++r) {
      const std::size_t first = inference::first_window_row_needed(starts, window, r);
      for (std::size_t j = 0; j <= r; ++j) EXPECT_EQ(starts[j] + window > starts[r], j >= first) << j << " " << r;
    }
  }
}

// Whole scenes round-robin; the ones left over from whole rounds split
// across all ranks; strips cover every window row once, in balanced whole
// rounds of one strip per rank, none longer than asked.
TEST(SceneSplit, EveryRowIsOwnedByExactlyOneRank) {
  auto shares = inference::share_scenes(5, 2);
  ASSERT_EQ(shares.size(), 5U);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(shares[i].scene, i);
    EXPECT_EQ(shares[i].writer, static_cast<int>(i % 2));
    EXPECT_EQ(shares[i].split, i == 4);
  }
  shares = inference::share_scenes(1, 3);
  ASSERT_EQ(shares.size(), 1U);
  EXPECT_TRUE(shares[0].split);
  EXPECT_EQ(shares[0].writer, 0);
  for (const auto& share : inference::share_scenes(3, 1)) EXPECT_FALSE(share.split);

  EXPECT_EQ(inference::plan_strips(10, 2, 2).size(), 6U);  // 5 strips of 2 rows would leave a round half empty
  EXPECT_EQ(inference::plan_strips(10, 2, 100).size(), 2U);
  EXPECT_EQ(inference::plan_strips(3, 4, 1).size(), 3U);   // one window row each, a rank idle
  for (std::size_t rows = 1; rows <= 25; ++rows) {
    for (int ranks = 1; ranks <= 4; ++ranks) {
      for (std::size_t max_rows = 1; max_rows <= 7; ++max_rows) {
        const auto strips = inference::plan_strips(rows, ranks, max_rows);
        std::size_t next = 0, shortest = rows, longest = 0;
        for (std::size_t i = 0; i < strips.size(); ++i) {
          EXPECT_EQ(strips[i].begin, next);
          EXPECT_GT(strips[i].end, strips[i].begin);
          EXPECT_EQ(strips[i].rank, static_cast<int>(i % static_cast<std::size_t>(ranks)));
          shortest = std::min(shortest, strips[i].end - strips[i].begin);
          longest = std::max(longest, strips[i].end - strips[i].begin);
          next = strips[i].end;
        }
        EXPECT_EQ(next, rows);
        EXPECT_LE(longest, max_rows);
        EXPECT_LE(longest - shortest, 1U);
        EXPECT_TRUE(strips.size() % static_cast<std::size_t>(ranks) == 0 || strips.size() == rows);
      }
    }
  }
}

// ---------------------------------------------------------------- test-time augmentation

// Windows [2, 3, 12, 12] and a model whose logits depend on where a pixel
// is (a ramp along x and y with per-class slopes), so that every symmetry
// of the window changes them.
at::Tensor tta_windows() {
  torch::manual_seed(11);
  return at::rand({2, 3, 12, 12});
}

at::Tensor positional_model(const at::Tensor& x) {
  const at::Tensor weight = at::tensor({0.5F, -1.0F, 2.0F, 1.5F, 0.3F, -0.7F, -2.0F, 1.0F, 0.2F}).view({3, 3, 1, 1});
  const at::Tensor ramp_x = at::linspace(0, 1, x.size(3)).view({1, 1, 1, -1});
  const at::Tensor ramp_y = at::linspace(0, 1, x.size(2)).view({1, 1, -1, 1});
  const at::Tensor slope_x = at::tensor({3.0F, -1.0F, 0.0F}).view({1, 3, 1, 1});
  const at::Tensor slope_y = at::tensor({0.0F, 2.0F, -2.5F}).view({1, 3, 1, 1});
  return at::conv2d(x, weight) + slope_x * ramp_x + slope_y * (ramp_y * ramp_y);
}

// The mean softmax over the symmetries, written out here with another
// parametrisation of the same group: an optional transpose, then flips.
at::Tensor mean_probability(const at::Tensor& x, bool with_transpose) {
  at::Tensor sum = at::zeros({x.size(0), 3, x.size(2), x.size(3)});
  int count = 0;
  for (const bool transpose : {false, true}) {
    if (transpose && !with_transpose) continue;
    for (const std::vector<std::int64_t>& flip : std::vector<std::vector<std::int64_t>>{{}, {2}, {3}, {2, 3}}) {
      at::Tensor t = transpose ? x.transpose(2, 3) : x;
      if (!flip.empty()) t = t.flip(flip);
      at::Tensor y = positional_model(t.contiguous());
      if (!flip.empty()) y = y.flip(flip);
      if (transpose) y = y.transpose(2, 3);
      sum += at::softmax(y, 1);
      ++count;
    }
  }
  return sum / count;
}

TEST(Tta, AveragesTheSoftmaxOverTheSymmetries) {
  const at::Tensor x = tta_windows();
  EXPECT_TRUE(at::equal(inference::with_tta(positional_model, inference::Tta::kNone)(x), positional_model(x)));
  const at::Tensor d4 = inference::with_tta(positional_model, inference::Tta::kD4)(x);
  const at::Tensor flips = inference::with_tta(positional_model, inference::Tta::kFlips)(x);
  EXPECT_LT((d4.exp() - mean_probability(x, true)).abs().max().item<double>(), 1e-6);
  EXPECT_LT((flips.exp() - mean_probability(x, false)).abs().max().item<double>(), 1e-6);
  // The augmentation matters for this model: the mean is not the plain softmax.
  EXPECT_GT((d4.exp() - at::softmax(positional_model(x), 1)).abs().max().item<double>(), 0.05);
  EXPECT_GT((d4 - flips).abs().max().item<double>(), 0.01);
  EXPECT_EQ(inference::parse_tta("d4"), inference::Tta::kD4);
  EXPECT_EQ(error_of([] { inference::parse_tta("d8"); }),
            "unknown test-time augmentation 'd8', valid ones are 'none', 'flips' or 'd4'");
}

// A model that treats every pixel alike (a 1x1 convolution) commutes with
// the symmetries: with augmentation the sliding window's probabilities are
// those without.
TEST(Tta, EquivariantModelGivesTheSameProbabilities) {
  torch::manual_seed(3);
  const at::Tensor image = at::rand({3, 40, 37});
  const at::Tensor weight = at::randn({4, 3, 1, 1});
  const inference::WindowModel model = [&](const at::Tensor& x) { return at::conv2d(x, weight); };
  auto probabilities = [&](const inference::WindowModel& m) {
    at::Tensor out = at::empty({4, 40, 37});
    inference::predict_sliding_windows(
        40, 37, {16, 6, 3}, [&](std::int64_t y, std::int64_t n) { return image.narrow(1, y, n); }, m,
        [&](std::int64_t y, const at::Tensor& l) { out.narrow(1, y, l.size(1)).copy_(l); });
    return at::softmax(out, 0);
  };
  const at::Tensor plain = probabilities(model);
  for (const auto tta : {inference::Tta::kFlips, inference::Tta::kD4}) {
    EXPECT_LT((probabilities(inference::with_tta(model, tta)) - plain).abs().max().item<double>(), 1e-6);
  }
}

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
  inference::ScenePredictOptions options;
  options.checkpoint = checkpoint_;
  options.scenes = {scene};
  options.output_dir = dir_ + "/maps";
  dist::LocalCommunicator local;
  EXPECT_EQ(error_of([&] { inference::predict_scenes(options, local); }),
            scene + ": the model expects 3 bands, the scene has 4");
  EXPECT_FALSE(fs::exists(dir_ + "/maps/four_classes.tif"));
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
