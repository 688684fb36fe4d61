// predict and evaluate on tile archives: predictions equal the argmax of the
// model's logits computed here on the normalised images, probabilities its
// softmax, the output archive reads back through the io reader, GeoTIFFs
// carry each tile's geotransform and CRS, --domain picks the DSBN branch,
// evaluation equals a confusion matrix built here; bad inputs are refused
// with messages naming the file; the da_dist predict and evaluate commands'
// exit codes, usage errors and help.
#include <ATen/ATen.h>
#include <gdal.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <ogr_srs_api.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "inference/checkpoint_model.h"
#include "inference/evaluate.h"
#include "inference/geotiff.h"
#include "inference/inference_fixture.h"
#include "inference/predict.h"
#include "io/archive_fixtures.h"
#include "io/archive_set.h"
#include "metrics/confusion_matrix.h"
#include "models/segmentation_model.h"
#include "support/process.h"

namespace da::test {
namespace {

namespace fs = std::filesystem;

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
    const auto& in_sources = input.shard_info(where.shard).sources;
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

}  // namespace
}  // namespace da::test
