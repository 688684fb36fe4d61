#include "inference/scene_predict.h"

#include <ATen/ATen.h>
#include <cpl_string.h>
#include <gdal.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <array>
#include <filesystem>
#include <limits>
#include <optional>
#include <stdexcept>

#include "inference/gdal_util.h"
#include "io/archive_set.h"
#include "io/atomic_file.h"
#include "io/normalization.h"
#include "io/pixel_type.h"
#include "trainer/loader_setup.h"

namespace da::inference {
namespace fs = std::filesystem;
namespace {

// Index into [0, n) of position i of the reflection-padded axis (period 2n - 2).
std::int64_t reflect(std::int64_t i, std::int64_t n) {
  if (n == 1) return 0;
  const std::int64_t period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

struct Raster {
  GDALDatasetH dataset = nullptr;
  ~Raster() {
    if (dataset != nullptr) GDALClose(dataset);
  }
};

std::optional<io::PixelType> pixel_type_of(GDALDataType type) {
  switch (type) {
    case GDT_Byte: return io::PixelType::kUint8;
    case GDT_UInt16: return io::PixelType::kUint16;
    case GDT_Float32: return io::PixelType::kFloat32;
    default: return std::nullopt;
  }
}

// Creates `path` (a temporary name) as a tiled, deflate-compressed GeoTIFF.
GDALDatasetH create_geotiff(const std::string& path, std::int64_t height, std::int64_t width, GDALDataType type,
                            const std::array<double, 6>& transform, const std::string& crs, std::optional<double> nodata) {
  GDALDriverH driver = GDALGetDriverByName("GTiff");
  char** options = CSLSetNameValue(nullptr, "TILED", "YES");
  options = CSLSetNameValue(options, "COMPRESS", "DEFLATE");
  options = CSLSetNameValue(options, "BIGTIFF", "IF_SAFER");
  GDALDatasetH out = driver == nullptr ? nullptr
                                       : GDALCreate(driver, path.c_str(), static_cast<int>(width),
                                                    static_cast<int>(height), 1, type, options);
  CSLDestroy(options);
  if (out == nullptr) throw std::runtime_error(path + ": cannot create the GeoTIFF" + gdal_message());
  std::array<double, 6> t = transform;
  GDALSetGeoTransform(out, t.data());
  if (!crs.empty()) GDALSetProjection(out, crs.c_str());
  if (nodata) GDALSetRasterNoDataValue(GDALGetRasterBand(out, 1), *nodata);
  return out;
}

}  // namespace

std::string scene_output_path(const std::string& output_dir, const std::string& scene, const std::string& suffix) {
  return (fs::path(output_dir) / (fs::path(scene).stem().string() + "_" + suffix + ".tif")).string();
}

void predict_scene(CheckpointModel& model, const ScenePredictOptions& options, const std::string& scene) {
  const QuietGdal quiet;
  Raster in;
  in.dataset = GDALOpen(scene.c_str(), GA_ReadOnly);
  if (in.dataset == nullptr) throw std::runtime_error(scene + ": cannot open the raster" + gdal_message());
  const std::int64_t width = GDALGetRasterXSize(in.dataset), height = GDALGetRasterYSize(in.dataset);
  const std::int64_t bands = GDALGetRasterCount(in.dataset);
  if (bands != model.spec.in_channels) {
    throw std::runtime_error(scene + ": the model expects " + std::to_string(model.spec.in_channels) +
                             " bands, the scene has " + std::to_string(bands));
  }
  // Normalisation and pixel type from the domain's training archives.
  // (the target's training archives for the target branch, when the checkpoint names any)
  const auto& target_train = model.config.data.target.train;
  const auto& archives =
      options.domain == models::Domain::kTarget && !target_train.empty() ? target_train : model.config.data.source.train;
  std::optional<io::ArchiveSet> training;
  try {
    training.emplace(archives);
  } catch (const std::exception& e) {
    throw std::runtime_error(scene + ": the normalisation comes from the training archives named in the checkpoint, "
                             "which cannot be opened: " + e.what());
  }
  const auto type = GDALGetRasterDataType(GDALGetRasterBand(in.dataset, 1));
  const auto pixel_type = pixel_type_of(type);
  for (std::int64_t b = 2; b <= bands; ++b) {
    if (GDALGetRasterDataType(GDALGetRasterBand(in.dataset, static_cast<int>(b))) != type) {
      throw std::runtime_error(scene + ": band " + std::to_string(b) + " has another data type than band 1");
    }
  }
  if (!pixel_type || *pixel_type != training->info().pixel_type) {
    throw std::runtime_error(scene + ": the model was trained on " +
                             std::string(io::pixel_type_name(training->info().pixel_type)) + " pixels, the scene has " +
                             GDALGetDataTypeName(type));
  }
  const io::LoaderOptions loader = trainer::loader_options(model.config.data, model.config.run.seed,
                                                           trainer::LoaderRole::kValidation, false, 0, 1);
  const io::BandNormalization norm = io::resolve_normalization(loader.normalization, *training);
  const at::Tensor mean = at::tensor(norm.mean).view({bands, 1, 1});
  const at::Tensor stdev = at::tensor(norm.std).view({bands, 1, 1});
  std::vector<std::optional<double>> nodata(static_cast<std::size_t>(bands));
  for (std::int64_t b = 0; b < bands; ++b) {
    int has = 0;
    const double v = GDALGetRasterNoDataValue(GDALGetRasterBand(in.dataset, static_cast<int>(b + 1)), &has);
    if (has) nodata[static_cast<std::size_t>(b)] = v;
  }

  // The padded scene: overlap/2 on every side, and at least one window.
  const std::int64_t window = options.window.window;
  const std::int64_t margin = options.window.overlap / 2;
  const std::int64_t padded_h = std::max(height + 2 * margin, window);
  const std::int64_t padded_w = std::max(width + 2 * margin, window);
  at::Tensor columns = at::empty({padded_w}, at::kLong);
  for (std::int64_t x = 0; x < padded_w; ++x) columns[x] = reflect(x - margin, width);

  // Reads scene rows [y0, y0 + n) as float32 [C, n, width].
  auto read_scene_rows = [&](std::int64_t y0, std::int64_t n) {
    at::Tensor rows = at::empty({bands, n, width}, at::kFloat);
    const CPLErr rc = GDALDatasetRasterIO(in.dataset, GF_Read, 0, static_cast<int>(y0), static_cast<int>(width),
                                          static_cast<int>(n), rows.data_ptr<float>(), static_cast<int>(width),
                                          static_cast<int>(n), GDT_Float32, static_cast<int>(bands), nullptr, 0, 0, 0);
    if (rc != CE_None) {
      throw std::runtime_error(scene + ": cannot read rows " + std::to_string(y0) + ".." + std::to_string(y0 + n - 1) +
                               gdal_message());
    }
    return rows;
  };
  // Padded rows: each scene row read once per call, reflected into place.
  auto read_rows = [&](std::int64_t y, std::int64_t n) {
    std::vector<std::int64_t> source_rows(static_cast<std::size_t>(n));
    std::int64_t lo = height, hi = -1;
    for (std::int64_t i = 0; i < n; ++i) {
      source_rows[static_cast<std::size_t>(i)] = reflect(y + i - margin, height);
      lo = std::min(lo, source_rows[static_cast<std::size_t>(i)]);
      hi = std::max(hi, source_rows[static_cast<std::size_t>(i)]);
    }
    const at::Tensor block = read_scene_rows(lo, hi - lo + 1);
    const at::Tensor index = at::tensor(source_rows) - lo;
    const at::Tensor rows = block.index_select(1, index).index_select(2, columns);
    return ((rows - mean) / stdev).contiguous();
  };
  auto run_model = [&](const at::Tensor& windows) {
    torch::NoGradGuard no_grad;
    model.model->set_domain(options.domain);
    return model.model->forward(windows.to(model.device)).logits.to(at::kCPU, at::kFloat);
  };

  // Outputs, written row band by row band.
  std::array<double, 6> transform{0, 1, 0, 0, 0, 1};
  const bool georeferenced = GDALGetGeoTransform(in.dataset, transform.data()) == CE_None;
  const std::string crs = GDALGetProjectionRef(in.dataset) != nullptr ? GDALGetProjectionRef(in.dataset) : "";
  const std::string classes_path = scene_output_path(options.output_dir, scene, "classes");
  const std::string confidence_path = scene_output_path(options.output_dir, scene, "confidence");
  const std::string classes_tmp = io::temporary_path_for(classes_path);
  const std::string confidence_tmp = io::temporary_path_for(confidence_path);
  const bool any_nodata = std::any_of(nodata.begin(), nodata.end(), [](const auto& v) { return v.has_value(); });
  Raster classes_out, confidence_out;
  auto remove_temporaries = [&] {
    if (classes_out.dataset) GDALClose(classes_out.dataset), classes_out.dataset = nullptr;
    if (confidence_out.dataset) GDALClose(confidence_out.dataset), confidence_out.dataset = nullptr;
    std::error_code ignored;
    fs::remove(classes_tmp, ignored);
    fs::remove(confidence_tmp, ignored);
  };
  try {
    classes_out.dataset = create_geotiff(classes_tmp, height, width, GDT_Byte, transform, crs,
                                         any_nodata ? std::optional<double>(kSceneNodata) : std::nullopt);
    if (options.confidence) {
      confidence_out.dataset = create_geotiff(confidence_tmp, height, width, GDT_Float32, transform, crs,
                                              any_nodata ? std::optional<double>(-1.0) : std::nullopt);
    }
    auto write_rows = [&](std::int64_t y, const at::Tensor& logits) {
      // Padded rows [y, y + n) -> scene rows, dropping the margins.
      const std::int64_t first = std::max(y, margin), last = std::min(y + logits.size(1), margin + height);
      if (first >= last) return;
      const at::Tensor scene_logits =
          logits.narrow(1, first - y, last - first).narrow(2, margin, width);  // [K, n, width]
      const auto [probability, label] = at::softmax(scene_logits, 0).max(0);
      at::Tensor labels = label.to(at::kByte).contiguous();
      at::Tensor confidence = probability.contiguous();
      if (any_nodata) {
        const at::Tensor pixels = read_scene_rows(first - margin, last - first);
        at::Tensor missing = at::zeros({last - first, width}, at::kBool);
        for (std::int64_t b = 0; b < bands; ++b) {
          if (nodata[static_cast<std::size_t>(b)]) missing |= pixels[b].eq(*nodata[static_cast<std::size_t>(b)]);
        }
        labels.masked_fill_(missing, kSceneNodata);
        confidence.masked_fill_(missing, -1.0);
      }
      const int row = static_cast<int>(first - margin), n = static_cast<int>(last - first);
      if (GDALRasterIO(GDALGetRasterBand(classes_out.dataset, 1), GF_Write, 0, row, static_cast<int>(width), n,
                       labels.data_ptr<std::uint8_t>(), static_cast<int>(width), n, GDT_Byte, 0, 0) != CE_None ||
          (confidence_out.dataset != nullptr &&
           GDALRasterIO(GDALGetRasterBand(confidence_out.dataset, 1), GF_Write, 0, row, static_cast<int>(width), n,
                        confidence.data_ptr<float>(), static_cast<int>(width), n, GDT_Float32, 0, 0) != CE_None)) {
        throw std::runtime_error(classes_path + ": cannot write rows" + gdal_message());
      }
    };
    predict_sliding_windows(padded_h, padded_w, options.window, read_rows, run_model, write_rows);
    GDALClose(classes_out.dataset);
    classes_out.dataset = nullptr;
    if (confidence_out.dataset != nullptr) {
      GDALClose(confidence_out.dataset);
      confidence_out.dataset = nullptr;
    }
    if (CPLGetLastErrorType() >= CE_Failure) throw std::runtime_error(classes_path + ": cannot write" + gdal_message());
  } catch (...) {
    remove_temporaries();
    throw;
  }
  io::publish_temporary(classes_tmp, classes_path);
  if (options.confidence) io::publish_temporary(confidence_tmp, confidence_path);
  spdlog::info("{}: {}x{} pixels -> {}{}", scene, width, height, classes_path, georeferenced ? "" : " (no geotransform)");
}

std::int64_t predict_scenes(const ScenePredictOptions& options, int rank, int ranks) {
  std::int64_t written = 0;
  std::optional<CheckpointModel> model;
  for (std::size_t i = 0; i < options.scenes.size(); ++i) {
    if (static_cast<int>(i % static_cast<std::size_t>(ranks)) != rank) continue;
    if (!model) model.emplace(load_checkpoint_model(options.checkpoint));
    fs::create_directories(options.output_dir);
    predict_scene(*model, options, options.scenes[i]);
    ++written;
  }
  return written;
}

}  // namespace da::inference
