#include "io/tile_archive_writer.h"

#include <cmath>
#include <filesystem>

#include "io/atomic_file.h"
#include "io/hdf5_attributes.h"
#include "io/hdf5_util.h"

namespace da::io {
namespace {

// Rows of the small per-tile metadata datasets per chunk; images and masks
// are one tile per chunk, as the format requires.
constexpr hsize_t kMetaChunkRows = 4096;

// A dataset of shape [0, row...] growing along the first axis, `chunk_rows`
// rows per chunk, with the layout's filters.
H5Handle create_growing(const std::string& path, hid_t file, const char* name, hid_t type,
                        const std::vector<hsize_t>& row, hsize_t chunk_rows, const TileArchiveLayout& layout) {
  std::vector<hsize_t> dims{0}, max_dims{H5S_UNLIMITED}, chunk{chunk_rows};
  for (const hsize_t extent : row) {
    dims.push_back(extent);
    max_dims.push_back(extent);
    chunk.push_back(extent);
  }
  const int rank = static_cast<int>(dims.size());
  const H5Handle space(H5Screate_simple(rank, dims.data(), max_dims.data()), H5Sclose);
  const H5Handle properties(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(properties.get(), rank, chunk.data());
  if (layout.shuffle) H5Pset_shuffle(properties.get());
  if (layout.deflate_level > 0) H5Pset_deflate(properties.get(), static_cast<unsigned>(layout.deflate_level));
  const H5Handle links(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(links.get(), 1);
  H5Handle dataset(H5Dcreate2(file, name, type, space.get(), links.get(), properties.get(), H5P_DEFAULT), H5Dclose);
  if (!dataset.valid()) throw ArchiveError(path, name, "cannot create" + hdf5_error_suffix());
  return dataset;
}

// Grows `dataset` to `index + 1` rows and writes row `index` from `data`.
void append_row(const std::string& path, const H5Handle& dataset, const char* name, int64_t index, hid_t memory_type,
                const void* data) {
  std::vector<hsize_t> dims = dataset_shape(dataset.get());
  dims[0] = static_cast<hsize_t>(index + 1);
  std::vector<hsize_t> start(dims.size(), 0), count(dims);
  start[0] = static_cast<hsize_t>(index);
  count[0] = 1;
  bool ok = H5Dset_extent(dataset.get(), dims.data()) >= 0;
  const H5Handle file_space(H5Dget_space(dataset.get()), H5Sclose);
  const H5Handle memory_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
  ok = ok && H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) >= 0;
  ok = ok && H5Dwrite(dataset.get(), memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, data) >= 0;
  if (!ok) throw ArchiveError(path, name, index, "cannot write" + hdf5_error_suffix());
}

// Grows `dataset` to `index + 1` rows and stores row `index`, one chunk
// already encoded as the dataset's filters would (filter mask 0: all applied).
void append_encoded_row(const std::string& path, const H5Handle& dataset, const char* name, int64_t index,
                        ChunkEncoder::Encoded chunk) {
  std::vector<hsize_t> dims = dataset_shape(dataset.get());
  dims[0] = static_cast<hsize_t>(index + 1);
  std::vector<hsize_t> offset(dims.size(), 0);
  offset[0] = static_cast<hsize_t>(index);
  const bool ok = H5Dset_extent(dataset.get(), dims.data()) >= 0 &&
                  H5Dwrite_chunk(dataset.get(), H5P_DEFAULT, 0, offset.data(), chunk.bytes, chunk.data) >= 0;
  if (!ok) throw ArchiveError(path, name, index, "cannot write" + hdf5_error_suffix());
}

// An encoder for the tile datasets when they have filters and need no type
// conversion (the file's little-endian type is the memory's); null otherwise,
// and HDF5 filters the tiles itself.
std::unique_ptr<ChunkEncoder> encoder_for(const TileArchiveLayout& layout, hid_t file_type, hid_t memory_type) {
  if (layout.deflate_level == 0 && !layout.shuffle) return nullptr;
  if (H5Tequal(file_type, memory_type) <= 0) return nullptr;
  return std::make_unique<ChunkEncoder>(layout.deflate_level, layout.shuffle, H5Tget_size(memory_type));
}

}  // namespace

TileArchiveWriter::TileArchiveWriter(std::string path, TileArchiveLayout layout)
    : path_(std::move(path)), temporary_(temporary_path_for(path_)), layout_(std::move(layout)) {
  silence_hdf5_errors();
  check_layout();
  const std::filesystem::path target(path_);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  file_ = H5Handle(H5Fcreate(temporary_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!file_.valid()) throw ArchiveError(path_, "", "cannot create " + temporary_ + hdf5_error_suffix());
  try {
    write_attributes();
    create_datasets();
  } catch (...) {
    close_datasets();
    file_.reset();
    std::filesystem::remove(temporary_);
    throw;
  }
}

TileArchiveWriter::~TileArchiveWriter() {
  if (closed_) return;
  close_datasets();
  file_.reset();
  std::error_code ignored;
  std::filesystem::remove(temporary_, ignored);
}

void TileArchiveWriter::check_layout() const {
  const TileArchiveLayout& l = layout_;
  if (l.bands.empty()) throw ArchiveError(path_, "attribute 'bands'", "names no band");
  if (l.height <= 0 || l.width <= 0) {
    throw ArchiveError(path_, "/images",
                       "tile size " + std::to_string(l.height) + "x" + std::to_string(l.width) + " is not positive");
  }
  if (l.with_masks && l.classes.empty()) {
    throw ArchiveError(path_, "attribute 'classes'", "missing (required when /masks exists)");
  }
  const int64_t k = static_cast<int64_t>(l.classes.size());
  if (l.ignore_index >= 0 && l.ignore_index < k) {
    throw ArchiveError(path_, "attribute 'ignore_index'",
                       std::to_string(l.ignore_index) + " is also a class index (" + std::to_string(k) + " classes)");
  }
  if (l.deflate_level < 0 || l.deflate_level > 9) {
    throw ArchiveError(path_, "/images", "deflate level " + std::to_string(l.deflate_level) + " outside [0, 9]");
  }
}

void TileArchiveWriter::write_attributes() {
  const hid_t root = file_.get();
  write_string_attribute(path_, root, "format", "da-tiles");
  write_int_attribute(path_, root, "version", kTileArchiveVersion);
  write_string_attribute(path_, root, "domain", layout_.domain);
  write_string_list_attribute(path_, root, "bands", layout_.bands);
  if (!layout_.classes.empty()) write_string_list_attribute(path_, root, "classes", layout_.classes);
  write_int_attribute(path_, root, "ignore_index", layout_.ignore_index);
  if (!layout_.sources.empty()) write_string_list_attribute(path_, root, "sources", layout_.sources);
  if (!layout_.crs.empty()) write_string_attribute(path_, root, "crs", layout_.crs);
}

void TileArchiveWriter::create_datasets() {
  const hid_t file = file_.get();
  const hsize_t c = layout_.bands.size(), h = layout_.height, w = layout_.width;
  const hid_t image_type = hdf5_file_type(layout_.pixel_type);
  images_ = create_growing(path_, file, "/images", image_type, {c, h, w}, 1, layout_);
  image_encoder_ = encoder_for(layout_, image_type, hdf5_memory_type(layout_.pixel_type));
  if (layout_.with_masks) {
    masks_ = create_growing(path_, file, "/masks", H5T_STD_U8LE, {h, w}, 1, layout_);
    mask_encoder_ = encoder_for(layout_, H5T_STD_U8LE, H5T_NATIVE_UINT8);
  }
  if (layout_.with_origin) {
    origin_ = create_growing(path_, file, "/meta/origin", H5T_STD_I64LE, {2}, kMetaChunkRows, layout_);
  }
  if (layout_.with_source_id) {
    source_id_ = create_growing(path_, file, "/meta/source_id", H5T_STD_I32LE, {}, kMetaChunkRows, layout_);
  }
  if (layout_.with_geotransform) {
    geotransform_ = create_growing(path_, file, "/meta/geotransform", H5T_IEEE_F64LE, {6}, kMetaChunkRows, layout_);
  }
}

void TileArchiveWriter::check_tile(const void* image, const uint8_t* mask, const TileMeta& meta) const {
  if (closed_) throw ArchiveError(path_, "", "append after close");
  if (image == nullptr) throw ArchiveError(path_, "/images", count_, "no image given");
  if (layout_.with_masks != (mask != nullptr)) {
    throw ArchiveError(path_, "/masks", count_, layout_.with_masks ? "no mask given" : "mask given, layout has none");
  }
  const size_t pixels = static_cast<size_t>(layout_.height * layout_.width);
  if (layout_.pixel_type == PixelType::kFloat32) {
    const float* values = static_cast<const float*>(image);
    for (size_t i = 0; i < pixels * layout_.bands.size(); ++i) {
      if (!std::isfinite(values[i])) throw ArchiveError(path_, "/images", count_, "NaN or infinite value");
    }
  }
  const int64_t k = static_cast<int64_t>(layout_.classes.size());
  for (size_t i = 0; mask != nullptr && i < pixels; ++i) {
    if (mask[i] >= k && mask[i] != layout_.ignore_index) {
      throw ArchiveError(path_, "/masks", count_,
                         "value " + std::to_string(mask[i]) + " outside [0, " + std::to_string(k) +
                             ") and not ignore_index " + std::to_string(layout_.ignore_index));
    }
  }
  const int64_t sources = static_cast<int64_t>(layout_.sources.size());
  if (layout_.with_source_id && sources > 0 && (meta.source_id < 0 || meta.source_id >= sources)) {
    throw ArchiveError(path_, "/meta/source_id", count_,
                       "value " + std::to_string(meta.source_id) + " outside [0, " + std::to_string(sources) + ")");
  }
}

void TileArchiveWriter::append(const void* image, const uint8_t* mask, const TileMeta& meta) {
  check_tile(image, mask, meta);
  const size_t pixels = static_cast<size_t>(layout_.height * layout_.width);
  if (image_encoder_) {
    const size_t bytes = pixels * layout_.bands.size() * pixel_size(layout_.pixel_type);
    append_encoded_row(path_, images_, "/images", count_, image_encoder_->encode(image, bytes));
  } else {
    append_row(path_, images_, "/images", count_, hdf5_memory_type(layout_.pixel_type), image);
  }
  if (mask_encoder_) {
    append_encoded_row(path_, masks_, "/masks", count_, mask_encoder_->encode(mask, pixels));
  } else if (masks_.valid()) {
    append_row(path_, masks_, "/masks", count_, H5T_NATIVE_UINT8, mask);
  }
  if (origin_.valid()) append_row(path_, origin_, "/meta/origin", count_, H5T_NATIVE_INT64, meta.origin.data());
  if (source_id_.valid()) append_row(path_, source_id_, "/meta/source_id", count_, H5T_NATIVE_INT32, &meta.source_id);
  if (geotransform_.valid()) {
    append_row(path_, geotransform_, "/meta/geotransform", count_, H5T_NATIVE_DOUBLE, meta.geotransform.data());
  }
  ++count_;
}

void TileArchiveWriter::set_band_stats(std::vector<double> mean, std::vector<double> std) {
  const size_t c = layout_.bands.size();
  if (mean.size() != c || std.size() != c) {
    throw ArchiveError(path_, "attribute 'band_mean'",
                       "band statistics for " + std::to_string(mean.size()) + "/" + std::to_string(std.size()) +
                           " bands, expected " + std::to_string(c));
  }
  band_mean_ = std::move(mean);
  band_std_ = std::move(std);
}

void TileArchiveWriter::close_datasets() {
  geotransform_.reset();
  source_id_.reset();
  origin_.reset();
  masks_.reset();
  images_.reset();
}

void TileArchiveWriter::close() {
  if (closed_) return;
  if (count_ == 0) throw ArchiveError(path_, "/images", "no tile appended; an empty archive is not valid");
  if (band_mean_) write_float_list_attribute(path_, file_.get(), "band_mean", *band_mean_);
  if (band_std_) write_float_list_attribute(path_, file_.get(), "band_std", *band_std_);
  close_datasets();
  // Closing flushes the last chunks: its failure means the file is incomplete.
  if (H5Fclose(file_.release()) < 0) throw ArchiveError(path_, "", "cannot finish " + temporary_ + hdf5_error_suffix());
  publish_temporary(temporary_, path_);
  closed_ = true;
}

}  // namespace da::io
