#include "inference/inference_fixture.h"

#include <cpl_conv.h>
#include <ogr_srs_api.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <filesystem>

#include "config/loader.h"
#include "io/tile_archive_writer.h"
#include "setup/checkpoint.h"

namespace da::test {
namespace {

namespace fs = std::filesystem;

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

}  // namespace

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
                     const std::string& normalize) {
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

at::Tensor logits_of(models::SegmentationModel& model, const at::Tensor& normalised, models::Domain domain) {
  torch::NoGradGuard no_grad;
  model->eval();
  model->set_domain(domain);
  return model->forward(normalised).logits;
}

ProcessResult da_dist(const std::vector<std::string>& args) { return run_process(binary_path("src/da_dist"), args); }

void Inference::SetUp() {
  dir_ = make_temp_dir("da-inference");
  geo_ = dir_ + "/geo.h5";
  plain_ = dir_ + "/plain.h5";
  write_archive(geo_, {5, kBands, 1, true, true});
  write_archive(plain_, {3, kBands, 2, true, false});
  model_ = make_model(false);
  checkpoint_ = dir_ + "/model.ckpt";
  save_checkpoint(checkpoint_, model_, geo_, false);
}

void Inference::TearDown() { fs::remove_all(dir_); }

}  // namespace da::test
