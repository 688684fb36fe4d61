#include "io/tile_archive.h"

#include <cmath>
#include <limits>
#include <filesystem>

#include "io/hdf5_attributes.h"
#include "io/hdf5_util.h"

namespace da::io {
namespace {

constexpr const char* kFormat = "da-tiles";

bool link_exists(hid_t file, const char* name) { return H5Lexists(file, name, H5P_DEFAULT) > 0; }

}  // namespace

TileArchive::TileArchive(const std::string& path) : path_(path) {
  silence_hdf5_errors();
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw ArchiveError(path, "", "no such file");
  if (std::filesystem::is_directory(path, error)) throw ArchiveError(path, "", "is a directory, not an archive file");
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    hdf5_error_detail();  // clears the stack; "not HDF5" is the whole story
    throw ArchiveError(path, "", "not an HDF5 file");
  }
  // Shared read locks as usual, but a file system without flock (some
  // Lustre and NFS mounts) must not make archives unreadable.
  const H5Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_file_locking(access.get(), true, true);
  file_ = H5Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.get()), H5Fclose);
  if (!file_.valid()) throw ArchiveError(path, "", "cannot open HDF5 file" + hdf5_error_suffix());
  read_attributes();
  open_images();
  open_masks();
  open_meta();
}

size_t TileArchive::image_bytes() const {
  return static_cast<size_t>(info_.channels() * info_.height * info_.width) * pixel_size(info_.pixel_type);
}

size_t TileArchive::mask_bytes() const { return static_cast<size_t>(info_.height * info_.width); }

void TileArchive::read_attributes() {
  const hid_t root = file_.get();
  const auto single = [&](const char* name, size_t count) {
    if (count != 1) {
      throw ArchiveError(path_, std::string("attribute '") + name + "'",
                         "must hold one value, found " + std::to_string(count));
    }
  };
  const std::vector<std::string> format = read_string_attribute(path_, root, "format");
  single("format", format.size());
  if (format[0] != kFormat) {
    throw ArchiveError(path_, "attribute 'format'", "expected \"da-tiles\", found \"" + format[0] + "\"");
  }
  const std::vector<int64_t> version = read_int_attribute(path_, root, "version");
  single("version", version.size());
  info_.version = version[0];
  if (info_.version > kTileArchiveVersion) {
    throw ArchiveError(path_, "attribute 'version'",
                       "version " + std::to_string(info_.version) + " is newer than this reader supports (" +
                           std::to_string(kTileArchiveVersion) + "); upgrade da_dist");
  }
  if (info_.version < 1) {
    throw ArchiveError(path_, "attribute 'version'", "version " + std::to_string(info_.version) + " is not valid");
  }
  const std::vector<std::string> domain = read_string_attribute(path_, root, "domain");
  single("domain", domain.size());
  info_.domain = domain[0];
  info_.bands = read_string_attribute(path_, root, "bands");
  if (info_.bands.empty()) throw ArchiveError(path_, "attribute 'bands'", "names no band");
  if (has_attribute(root, "ignore_index")) {
    const std::vector<int64_t> ignore = read_int_attribute(path_, root, "ignore_index");
    single("ignore_index", ignore.size());
    info_.ignore_index = ignore[0];
  }
  for (const char* name : {"band_mean", "band_std"}) {
    if (!has_attribute(root, name)) continue;
    std::vector<double> values = read_float_attribute(path_, root, name);
    if (static_cast<int64_t>(values.size()) != info_.channels()) {
      throw ArchiveError(path_, std::string("attribute '") + name + "'",
                         std::to_string(values.size()) + " values for " + std::to_string(info_.channels()) + " bands");
    }
    (std::string(name) == "band_mean" ? info_.band_mean : info_.band_std) = std::move(values);
  }
  if (has_attribute(root, "crs")) {
    const std::vector<std::string> crs = read_string_attribute(path_, root, "crs");
    single("crs", crs.size());
    info_.crs = crs[0];
  }
  if (has_attribute(root, "sources")) info_.sources = read_string_attribute(path_, root, "sources");
}

void TileArchive::open_images() {
  if (!link_exists(file_.get(), "images")) throw ArchiveError(path_, "/images", "missing");
  images_ = H5Handle(H5Dopen2(file_.get(), "images", H5P_DEFAULT), H5Dclose);
  if (!images_.valid()) throw ArchiveError(path_, "/images", "cannot open as a dataset" + hdf5_error_suffix());
  const std::vector<hsize_t> shape = dataset_shape(images_.get());
  if (shape.size() != 4) {
    throw ArchiveError(
        path_, "/images",
        "rank " + std::to_string(shape.size()) + " (shape " + shape_to_string(shape) + "), expected 4: [N, C, H, W]");
  }
  const H5Handle type(H5Dget_type(images_.get()), H5Tclose);
  if (is_unsigned_integer(type.get(), 1)) {
    info_.pixel_type = PixelType::kUint8;
  } else if (is_unsigned_integer(type.get(), 2)) {
    info_.pixel_type = PixelType::kUint16;
  } else if (is_float(type.get(), 4)) {
    info_.pixel_type = PixelType::kFloat32;
  } else {
    throw ArchiveError(path_, "/images", "dtype " + describe_type(type.get()) + ", expected uint8, uint16 or float32");
  }
  if (static_cast<int64_t>(shape[1]) != info_.channels()) {
    throw ArchiveError(
        path_, "/images",
        std::to_string(shape[1]) + " channels, but attribute 'bands' names " + std::to_string(info_.channels()));
  }
  if (shape[0] == 0) throw ArchiveError(path_, "/images", "empty archive (0 tiles)");
  if (shape[2] == 0 || shape[3] == 0) {
    throw ArchiveError(path_, "/images", "empty tiles (shape " + shape_to_string(shape) + ")");
  }
  // Checked in floating point: H x W of a damaged file can overflow 64 bits.
  const double tile_bytes = static_cast<double>(shape[1]) * static_cast<double>(shape[2]) *
                            static_cast<double>(shape[3]) * static_cast<double>(pixel_size(info_.pixel_type));
  if (tile_bytes > static_cast<double>(kMaxTileBytes)) {
    throw ArchiveError(path_, "/images",
                       "tiles of " + shape_to_string({shape[1], shape[2], shape[3]}) + " " +
                           pixel_type_name(info_.pixel_type) + " values exceed the " +
                           std::to_string(kMaxTileBytes >> 20) + " MiB a tile may hold");
  }
  if (shape[0] > static_cast<hsize_t>(std::numeric_limits<int64_t>::max())) {
    throw ArchiveError(path_, "/images", "a tile count of " + std::to_string(shape[0]) + " (shape " +
                                             shape_to_string(shape) + ") is beyond any real archive");
  }
  info_.num_tiles = static_cast<int64_t>(shape[0]);
  info_.height = static_cast<int64_t>(shape[2]);
  info_.width = static_cast<int64_t>(shape[3]);
  direct_images_ = DirectChunkReader(images_.get(), hdf5_memory_type(info_.pixel_type), image_bytes(), path_);
}

H5Handle TileArchive::open_dataset(const char* name, const std::vector<hsize_t>& expected, const char* layout,
                                   H5T_class_t type_class) const {
  H5Handle dataset(H5Dopen2(file_.get(), name, H5P_DEFAULT), H5Dclose);
  if (!dataset.valid()) throw ArchiveError(path_, name, "cannot open as a dataset" + hdf5_error_suffix());
  const std::vector<hsize_t> shape = dataset_shape(dataset.get());
  if (shape != expected) {
    throw ArchiveError(path_, name,
                       "shape " + shape_to_string(shape) + ", expected " + layout + " = " + shape_to_string(expected));
  }
  const H5Handle type(H5Dget_type(dataset.get()), H5Tclose);
  if (H5Tget_class(type.get()) != type_class) {
    throw ArchiveError(path_, name,
                       "dtype " + describe_type(type.get()) + ", expected " +
                           (type_class == H5T_INTEGER ? "an integer type" : "a float type"));
  }
  return dataset;
}

void TileArchive::open_masks() {
  info_.has_masks = link_exists(file_.get(), "masks");
  if (!info_.has_masks) return;
  const hsize_t n = info_.num_tiles, h = info_.height, w = info_.width;
  masks_ = open_dataset("/masks", {n, h, w}, "[N, H, W]", H5T_INTEGER);
  const H5Handle type(H5Dget_type(masks_.get()), H5Tclose);
  if (!is_unsigned_integer(type.get(), 1)) {
    throw ArchiveError(path_, "/masks", "dtype " + describe_type(type.get()) + ", expected uint8");
  }
  if (!has_attribute(file_.get(), "classes")) {
    throw ArchiveError(path_, "attribute 'classes'", "missing (required when /masks exists)");
  }
  info_.classes = read_string_attribute(path_, file_.get(), "classes");
  const int64_t k = static_cast<int64_t>(info_.classes.size());
  if (k == 0) throw ArchiveError(path_, "attribute 'classes'", "names no class");
  if (info_.ignore_index >= 0 && info_.ignore_index < k) {
    throw ArchiveError(
        path_, "attribute 'ignore_index'",
        std::to_string(info_.ignore_index) + " is also a class index (" + std::to_string(k) + " classes)");
  }
  direct_masks_ = DirectChunkReader(masks_.get(), H5T_NATIVE_UINT8, mask_bytes(), path_);
}

void TileArchive::open_meta() {
  if (!link_exists(file_.get(), "meta")) return;
  const hsize_t n = info_.num_tiles;
  info_.has_origin = link_exists(file_.get(), "/meta/origin");
  if (info_.has_origin) origin_ = open_dataset("/meta/origin", {n, 2}, "[N, 2]", H5T_INTEGER);
  info_.has_source_id = link_exists(file_.get(), "/meta/source_id");
  if (info_.has_source_id) source_id_ = open_dataset("/meta/source_id", {n}, "[N]", H5T_INTEGER);
  info_.has_geotransform = link_exists(file_.get(), "/meta/geotransform");
  if (info_.has_geotransform) geotransform_ = open_dataset("/meta/geotransform", {n, 6}, "[N, 6]", H5T_FLOAT);
}

void TileArchive::check_index(const char* name, int64_t index) const {
  if (index < 0 || index >= info_.num_tiles) {
    throw ArchiveError(path_, name, index, "index outside [0, " + std::to_string(info_.num_tiles) + ")");
  }
}

void TileArchive::read_row(const H5Handle& dataset, const char* name, int64_t index, hid_t memory_type, void* out,
                           DirectChunkReader* direct) const {
  if (!dataset.valid()) throw ArchiveError(path_, name, "not in this archive");
  check_index(name, index);
  if (direct != nullptr && direct_chunk_reads_ && direct->enabled()) {
    if (direct->read(dataset.get(), index, out)) {
      ++read_counts_.direct;
      return;
    }
  }
  if (direct != nullptr) ++read_counts_.h5dread;
  std::vector<hsize_t> count = dataset_shape(dataset.get());
  std::vector<hsize_t> start(count.size(), 0);
  start[0] = static_cast<hsize_t>(index);
  count[0] = 1;
  const H5Handle file_space(H5Dget_space(dataset.get()), H5Sclose);
  const H5Handle memory_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0 ||
      H5Dread(dataset.get(), memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, out) < 0) {
    throw ArchiveError(path_, name, index, "cannot read" + hdf5_error_suffix());
  }
}

int64_t check_image_values(const ArchiveInfo& info, const std::string& path, int64_t index, const void* out,
                           NonFinite policy) {
  if (info.pixel_type != PixelType::kFloat32) return 0;
  const float* values = static_cast<const float*>(out);
  const size_t count = static_cast<size_t>(info.channels() * info.height * info.width);
  int64_t non_finite = 0;
  size_t first = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) {
      if (non_finite++ == 0) first = i;
    }
  }
  if (non_finite > 0 && policy == NonFinite::kRefuse) {
    const size_t plane = static_cast<size_t>(info.height * info.width);
    const size_t row = first % plane / info.width, column = first % info.width;
    throw ArchiveError(path, "/images", index,
                       std::to_string(non_finite) + " NaN or infinite value(s), first at channel " +
                           std::to_string(first / plane) + ", row " + std::to_string(row) + ", column " +
                           std::to_string(column));
  }
  return non_finite;
}

void check_mask_values(const ArchiveInfo& info, const std::string& path, int64_t index, const uint8_t* out) {
  const int64_t classes = static_cast<int64_t>(info.classes.size());
  const size_t count = static_cast<size_t>(info.height * info.width);
  for (size_t i = 0; i < count; ++i) {
    const int64_t value = out[i];
    if (value >= classes && value != info.ignore_index) {
      throw ArchiveError(path, "/masks", index,
                         "value " + std::to_string(value) + " outside [0, " + std::to_string(classes) +
                             ") and not ignore_index " + std::to_string(info.ignore_index));
    }
  }
}

int64_t TileArchive::read_image(int64_t index, void* out, NonFinite policy) const {
  read_row(images_, "/images", index, hdf5_memory_type(info_.pixel_type), out, &direct_images_);
  return check_image_values(info_, path_, index, out, policy);
}

void TileArchive::read_mask(int64_t index, uint8_t* out) const {
  read_row(masks_, "/masks", index, H5T_NATIVE_UINT8, out, &direct_masks_);
  check_mask_values(info_, path_, index, out);
}

std::shared_ptr<const ChunkIndex> TileArchive::image_index() const {
  return direct_chunk_reads_ ? direct_images_.index_all_rows(images_.get()) : nullptr;
}

std::shared_ptr<const ChunkIndex> TileArchive::mask_index() const {
  return direct_chunk_reads_ && masks_.valid() ? direct_masks_.index_all_rows(masks_.get()) : nullptr;
}

std::array<int64_t, 2> TileArchive::read_origin(int64_t index) const {
  std::array<int64_t, 2> origin{};
  read_row(origin_, "/meta/origin", index, H5T_NATIVE_INT64, origin.data());
  return origin;
}

int32_t TileArchive::read_source_id(int64_t index) const {
  int32_t id = 0;
  read_row(source_id_, "/meta/source_id", index, H5T_NATIVE_INT32, &id);
  if (!info_.sources.empty() && (id < 0 || id >= static_cast<int32_t>(info_.sources.size()))) {
    throw ArchiveError(path_, "/meta/source_id", index,
                       "value " + std::to_string(id) + " outside [0, " + std::to_string(info_.sources.size()) +
                           ") of attribute 'sources'");
  }
  return id;
}

std::array<double, 6> TileArchive::read_geotransform(int64_t index) const {
  std::array<double, 6> transform{};
  read_row(geotransform_, "/meta/geotransform", index, H5T_NATIVE_DOUBLE, transform.data());
  return transform;
}

}  // namespace da::io
