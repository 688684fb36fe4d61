#include "inference/predict.h"

#include <ATen/ATen.h>
#include <hdf5.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>

#ifdef DA_WITH_GDAL
#include "inference/geotiff.h"
#endif
#include "io/archive_set.h"
#include "io/atomic_file.h"
#include "io/hdf5_handle.h"
#include "io/hdf5_util.h"
#include "io/tile_archive_writer.h"
#include "io/tile_loader.h"

namespace da::inference {
namespace {

namespace fs = std::filesystem;

constexpr const char* kProbabilities = "probabilities";

// /probabilities [N, K, H, W] float32, one tile per chunk, grown one tile at
// a time in a file of its own; copied into the archive once that is complete.
class ProbabilityFile {
 public:
  ProbabilityFile(std::string path, std::int64_t classes, std::int64_t height, std::int64_t width)
      : path_(std::move(path)),
        tile_{1, static_cast<hsize_t>(classes), static_cast<hsize_t>(height), static_cast<hsize_t>(width)} {
    io::silence_hdf5_errors();
    file_ = io::H5Handle(H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file_.valid()) fail("cannot create the file");
    hsize_t dims[4] = {0, tile_[1], tile_[2], tile_[3]};
    hsize_t max_dims[4] = {H5S_UNLIMITED, tile_[1], tile_[2], tile_[3]};
    const io::H5Handle space(H5Screate_simple(4, dims, max_dims), H5Sclose);
    const io::H5Handle properties(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_chunk(properties.get(), 4, tile_);
    dataset_ = io::H5Handle(H5Dcreate2(file_.get(), kProbabilities, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                                       properties.get(), H5P_DEFAULT),
                            H5Dclose);
    if (!dataset_.valid()) fail("cannot create /probabilities");
  }
  ProbabilityFile(const ProbabilityFile&) = delete;
  ProbabilityFile& operator=(const ProbabilityFile&) = delete;
  ~ProbabilityFile() {
    dataset_.reset();
    file_.reset();
    std::error_code ignored;
    fs::remove(path_, ignored);
  }

  // One tile's probabilities, [K, H, W] float32.
  void append(const float* values) {
    hsize_t dims[4] = {count_ + 1, tile_[1], tile_[2], tile_[3]};
    if (H5Dset_extent(dataset_.get(), dims) < 0) fail("cannot extend /probabilities");
    const io::H5Handle file_space(H5Dget_space(dataset_.get()), H5Sclose);
    hsize_t start[4] = {count_, 0, 0, 0};
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, tile_, nullptr);
    const io::H5Handle memory_space(H5Screate_simple(4, tile_, nullptr), H5Sclose);
    if (H5Dwrite(dataset_.get(), H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(), H5P_DEFAULT, values) < 0) {
      fail("cannot write tile " + std::to_string(count_) + " of /probabilities");
    }
    ++count_;
  }

  // Copies /probabilities into the (closed, complete) archive `archive`.
  void copy_into(const std::string& archive, const std::string& output_name) {
    dataset_.reset();
    io::H5Handle target(H5Fopen(archive.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    if (!target.valid()) {
      throw std::runtime_error(output_name + ": cannot reopen " + archive + io::hdf5_error_suffix());
    }
    if (H5Ocopy(file_.get(), kProbabilities, target.get(), kProbabilities, H5P_DEFAULT, H5P_DEFAULT) < 0) {
      throw std::runtime_error(output_name + ": cannot write /probabilities" + io::hdf5_error_suffix());
    }
    if (H5Fclose(target.release()) < 0) {
      throw std::runtime_error(output_name + ": cannot finish /probabilities" + io::hdf5_error_suffix());
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path_ + ": " + what + io::hdf5_error_suffix());
  }

  std::string path_;
  hsize_t tile_[4];
  hsize_t count_ = 0;
  io::H5Handle file_;
  io::H5Handle dataset_;
};

// Whether every shard of `set` has the metadata `has` says.
template <class F>
bool all_shards(const io::ArchiveSet& set, F has) {
  for (std::size_t s = 0; s < set.num_shards(); ++s) {
    if (!has(set.shard_info(s))) return false;
  }
  return true;
}

struct OutputLayout {
  io::TileArchiveLayout layout;
  std::vector<std::vector<std::int32_t>> source_ids;  // per shard: its source_id -> the output's
};

OutputLayout output_layout(const io::ArchiveSet& input, const std::vector<std::string>& classes,
                           const std::string& input_name) {
  const io::ArchiveInfo& info = input.info();
  OutputLayout out;
  io::TileArchiveLayout& l = out.layout;
  l.domain = info.domain;
  l.bands = info.bands;
  l.pixel_type = info.pixel_type;
  l.height = info.height;
  l.width = info.width;
  l.with_masks = true;
  l.classes = classes;
  l.ignore_index = info.ignore_index;
  l.with_origin = all_shards(input, [](const io::ArchiveInfo& i) { return i.has_origin; });
  l.with_source_id = all_shards(input, [](const io::ArchiveInfo& i) { return i.has_source_id; });
  l.with_geotransform = all_shards(input, [](const io::ArchiveInfo& i) { return i.has_geotransform; });
  l.deflate_level = 4;
  l.shuffle = info.pixel_type != io::PixelType::kUint8;
  if (l.with_source_id) {
    std::map<std::string, std::int32_t> known;
    for (std::size_t s = 0; s < input.num_shards(); ++s) {
      std::vector<std::int32_t> ids;
      for (const auto& name : input.shard_info(s).sources) {
        const auto [it, added] = known.emplace(name, static_cast<std::int32_t>(l.sources.size()));
        if (added) l.sources.push_back(name);
        ids.push_back(it->second);
      }
      out.source_ids.push_back(std::move(ids));
    }
  }
  if (l.with_geotransform) {
    l.crs = input.shard_info(0).crs;
    for (std::size_t s = 1; s < input.num_shards(); ++s) {
      if (input.shard_info(s).crs != l.crs) {
        throw std::runtime_error(input_name + ": " + input.shard_path(0) + " and " + input.shard_path(s) +
                                 " have different CRS; predict them separately");
      }
    }
  }
  return out;
}

void remove_quietly(const std::string& path) {
  std::error_code ignored;
  fs::remove(path, ignored);
}

}  // namespace

PredictSummary predict(CheckpointModel& model, const PredictOptions& options) {
  const std::string input_name = archive_list(options.inputs);
  const io::ArchiveSet input(options.inputs);
  check_archive(model, input, input_name, false);
  for (std::size_t s = 0; s < input.num_shards(); ++s) {
    std::error_code error;
    if (fs::equivalent(options.output, input.shard_path(s), error)) {
      throw std::runtime_error(options.output + ": the output is one of the input archives");
    }
  }
  PredictSummary summary;
  summary.classes = class_names(model, input);
  const OutputLayout out = output_layout(input, summary.classes, input_name);
  const io::ArchiveInfo& info = input.info();
  const std::int64_t classes = model.spec.classes;
  const std::optional<int> nodata = info.ignore_index >= 0 && info.ignore_index <= 255
                                        ? std::optional<int>(static_cast<int>(info.ignore_index))
                                        : std::nullopt;

  const fs::path output(options.output);
  if (output.has_parent_path()) fs::create_directories(output.parent_path());
#ifndef DA_WITH_GDAL
  if (!options.geotiff_dir.empty()) {
    throw std::runtime_error("--geotiff-dir writes GeoTIFFs with GDAL: this da_dist was built without it "
                             "(DA_WITH_GDAL=OFF)");
  }
#endif
  if (!options.geotiff_dir.empty()) fs::create_directories(options.geotiff_dir);
  // With probabilities the writer's archive is a staging file that gets
  // /probabilities before it is published under `output`.
  const std::string staging = options.probabilities ? io::temporary_path_for(options.output) : options.output;
  std::optional<ProbabilityFile> probabilities;
  try {
    io::TileArchiveWriter writer(staging, out.layout);
    if (options.probabilities) {
      probabilities.emplace(io::temporary_path_for(options.output + ".probabilities"), classes, info.height,
                            info.width);
    }
    io::TileLoader loader(inference_loader_options(model.config, options.batch_size, false), options.inputs);
    spdlog::info("predicting {} tiles of {} with {} (domain {}, device {})", input.size(), input_name, model.path,
                 models::domain_name(options.domain), model.device.str());
    std::vector<char> image(input.shard(0).image_bytes());
    summary.tiles = for_each_prediction(
        model, options.domain, loader,
        [&](const io::Batch& batch, const std::vector<std::int64_t>& rows, const at::Tensor& logits) {
          const at::Tensor predicted = logits.argmax(1).to(at::kByte).contiguous();
          const at::Tensor softmax = options.probabilities ? logits.softmax(1).contiguous() : at::Tensor();
          for (std::size_t r = 0; r < rows.size(); ++r) {
            const std::int64_t tile = batch.indices[static_cast<std::size_t>(rows[r])];
            const auto where = input.locate(tile);
            input.read_image(tile, image.data());
            const io::TileArchive& shard = input.shard(where.shard);
            io::TileMeta meta;
            if (out.layout.with_origin) meta.origin = shard.read_origin(where.index);
            if (out.layout.with_source_id) {
              const std::int32_t id = shard.read_source_id(where.index);
              const auto& ids = out.source_ids[where.shard];
              if (id < 0 || static_cast<std::size_t>(id) >= ids.size()) {
                throw std::runtime_error(shard.path() + ": /meta/source_id tile " + std::to_string(where.index) +
                                         ": value " + std::to_string(id) + " outside the sources attribute");
              }
              meta.source_id = ids[static_cast<std::size_t>(id)];
            }
            const bool geo = shard.info().has_geotransform;
            if (geo) meta.geotransform = shard.read_geotransform(where.index);
            const auto* mask = predicted[static_cast<std::int64_t>(r)].data_ptr<std::uint8_t>();
            writer.append(image.data(), mask, meta);
            if (probabilities) probabilities->append(softmax[static_cast<std::int64_t>(r)].data_ptr<float>());
#ifdef DA_WITH_GDAL
            if (geo && !options.geotiff_dir.empty()) {
              write_class_geotiff((fs::path(options.geotiff_dir) / geotiff_name(tile)).string(), mask, info.height,
                                  info.width, meta.geotransform, shard.info().crs, nodata);
              ++summary.geotiffs;
            }
#endif
          }
        });
    if (const auto stats = input.band_stats()) writer.set_band_stats(stats->mean, stats->std);
    writer.close();
    if (probabilities) {
      probabilities->copy_into(staging, options.output);
      probabilities.reset();
      io::publish_temporary(staging, options.output);
    }
  } catch (...) {
    probabilities.reset();
    if (options.probabilities) remove_quietly(staging);
    throw;
  }
  spdlog::info(
      "wrote {} ({} tiles{}){}", options.output, summary.tiles, options.probabilities ? ", with probabilities" : "",
      options.geotiff_dir.empty() ? ""
                                  : " and " + std::to_string(summary.geotiffs) + " GeoTIFFs to " + options.geotiff_dir);
  return summary;
}

PredictSummary predict(const PredictOptions& options) {
  CheckpointModel model = load_checkpoint_model(options.checkpoint);
  return predict(model, options);
}

}  // namespace da::inference
