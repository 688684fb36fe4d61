#include "io/direct_chunk_reader.h"

#include <fcntl.h>
#include <unistd.h>
#include <libdeflate.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "io/byte_shuffle.h"
#include "io/hdf5_handle.h"

namespace da::io {
namespace {

// HDF5's deflate filter stores one zlib stream per chunk; it must decode to
// exactly out_bytes. Bytes after the stream are ignored, as HDF5 does.
bool inflate_exact(libdeflate_decompressor* decompressor, const unsigned char* in, size_t in_bytes,
                   unsigned char* out, size_t out_bytes) {
  size_t consumed = 0, produced = 0;
  return libdeflate_zlib_decompress_ex(decompressor, in, in_bytes, out, out_bytes, &consumed, &produced) ==
             LIBDEFLATE_SUCCESS &&
         produced == out_bytes;
}

// How many rows a dataset may have for us to ask HDF5 where their chunks
// are. In HDF5 1.10 H5Dget_chunk_info_by_coord walks the dataset's chunk
// index up to the row (measured on a 2,000,000-row dataset: 2.5 us a lookup
// among the first rows, 166 ms for rows spread over it, about 80 ns a row
// before it; H5Dread of a row takes 20 us), so looking up all n rows costs
// O(n^2). Unfiltered rows are looked up one by one on their first read
// (4,096 rows: 0.3 ms at worst, 0.7 s for all); index_all_rows looks up a
// whole dataset at once, blocking that read (256 rows: about 5 ms). Larger
// datasets are read through H5Dread (unfiltered) or H5Dread_chunk (deflate),
// both O(log n).
constexpr hsize_t kMaxRowsLookedUp = 4096;
constexpr hsize_t kMaxRowsIndexed = 256;

// Reads exactly `bytes` at `offset`; false on an error or end of file.
bool pread_exact(int fd, unsigned char* out, size_t bytes, uint64_t offset) {
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd, out + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// A deflate(+shuffle) chunk of `stored_bytes` into `out` (row_bytes); `work`
// holds row_bytes when `unshuffle_needed`.
bool decode(libdeflate_decompressor* decompressor, const unsigned char* stored, size_t stored_bytes,
            bool unshuffle_needed, size_t element_size, unsigned char* work, unsigned char* out, size_t row_bytes) {
  if (!inflate_exact(decompressor, stored, stored_bytes, unshuffle_needed ? work : out, row_bytes)) return false;
  if (unshuffle_needed) unshuffle_bytes(work, out, row_bytes, element_size);
  return true;
}

// Where HDF5's addresses start in the file of `dataset` (after a user block).
bool base_address(hid_t dataset, uint64_t* base) {
  const H5Handle file(H5Iget_file_id(dataset), H5Fclose);
  const H5Handle create(file.valid() ? H5Fget_create_plist(file.get()) : H5I_INVALID_HID, H5Pclose);
  hsize_t user_block = 0;
  if (!create.valid() || H5Pget_userblock(create.get(), &user_block) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  *base = user_block;
  return true;
}

}  // namespace

void FreeDecompressor::operator()(libdeflate_decompressor* decompressor) const {
  libdeflate_free_decompressor(decompressor);
}

ChunkDecoder::ChunkDecoder() : decompressor_(libdeflate_alloc_decompressor()) {}
ChunkDecoder::~ChunkDecoder() = default;
ChunkDecoder::ChunkDecoder(ChunkDecoder&&) noexcept = default;
ChunkDecoder& ChunkDecoder::operator=(ChunkDecoder&&) noexcept = default;

bool ChunkDecoder::read(int fd, const ChunkIndex& index, int64_t row, void* out) {
  if (row < 0 || static_cast<size_t>(row) >= index.offsets.size()) return false;
  const uint64_t offset = index.offsets[static_cast<size_t>(row)];
  const size_t stored = index.sizes[static_cast<size_t>(row)];
  auto* target = static_cast<unsigned char*>(out);
  if (!index.deflate) return stored == index.row_bytes && pread_exact(fd, target, stored, offset);
  if (!decompressor_) return false;
  if (stored_.size() < stored) stored_.resize(stored);
  const bool unshuffle_needed = index.shuffle && index.element_size > 1;
  if (unshuffle_needed && work_.size() < index.row_bytes) work_.resize(index.row_bytes);
  return pread_exact(fd, stored_.data(), stored, offset) &&
         decode(decompressor_.get(), stored_.data(), stored, unshuffle_needed, index.element_size, work_.data(),
                target, index.row_bytes);
}

DirectChunkReader::DirectChunkReader(hid_t dataset, hid_t memory_type, size_t row_bytes, const std::string& path)
    : row_bytes_(row_bytes) {
  const H5Handle create(H5Dget_create_plist(dataset), H5Pclose);
  const H5Handle space(H5Dget_space(dataset), H5Sclose);
  const H5Handle type(H5Dget_type(dataset), H5Tclose);
  if (!create.valid() || !space.valid() || !type.valid() || H5Pget_layout(create.get()) != H5D_CHUNKED ||
      H5Tequal(type.get(), memory_type) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  rank_ = H5Sget_simple_extent_ndims(space.get());
  if (rank_ < 1 || rank_ > 8) return;
  std::vector<hsize_t> dims(rank_), chunk(rank_);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  if (H5Pget_chunk(create.get(), rank_, chunk.data()) != rank_ || chunk[0] != 1) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  for (int d = 1; d < rank_; ++d) {
    if (chunk[d] != dims[d]) return;  // a row spans several chunks
  }
  const size_t type_size = H5Tget_size(type.get());
  element_size_ = type_size;
  const int filters = H5Pget_nfilters(create.get());
  for (int f = 0; f < filters; ++f) {
    unsigned flags = 0, config = 0;
    unsigned values[8] = {0};
    size_t count = 8;
    const H5Z_filter_t id =
        H5Pget_filter2(create.get(), static_cast<unsigned>(f), &flags, &count, values, 0, nullptr, &config);
    if (id == H5Z_FILTER_DEFLATE) {
      pipeline_.push_back(Filter::kDeflate);
    } else if (id == H5Z_FILTER_SHUFFLE) {
      pipeline_.push_back(Filter::kShuffle);
      // HDF5 stores the element size it shuffled by as the first value.
      if (count >= 1 && values[0] > 0) element_size_ = values[0];
    } else {
      H5Eclear2(H5E_DEFAULT);
      pipeline_.clear();
      return;  // fletcher32, szip, a plugin...: HDF5 decodes it
    }
  }
  if (element_size_ == 0 || row_bytes_ == 0) {
    pipeline_.clear();
    return;
  }
  if (pipeline_.empty()) {
    if (dims[0] <= kMaxRowsLookedUp) enable_unfiltered(dataset, dims[0], path);
    return;
  }
  const bool deflate_only = pipeline_ == std::vector<Filter>{Filter::kDeflate};
  const bool shuffle_deflate = pipeline_ == std::vector<Filter>{Filter::kShuffle, Filter::kDeflate};
  if (!deflate_only && !shuffle_deflate) {
    pipeline_.clear();
    return;
  }
  decompressor_.reset(libdeflate_alloc_decompressor());
  if (!decompressor_) return;
  stored_.resize(row_bytes_ + row_bytes_ / 16 + 1024);
  if (shuffle_deflate && element_size_ > 1) work_.resize(row_bytes_);
  enabled_ = true;
}

DirectChunkReader::~DirectChunkReader() {
  if (fd_ >= 0) ::close(fd_);
}

DirectChunkReader::DirectChunkReader(DirectChunkReader&& other) noexcept { *this = std::move(other); }

DirectChunkReader& DirectChunkReader::operator=(DirectChunkReader&& other) noexcept {
  if (this == &other) return *this;
  if (fd_ >= 0) ::close(fd_);
  enabled_ = other.enabled_;
  rank_ = other.rank_;
  row_bytes_ = other.row_bytes_;
  element_size_ = other.element_size_;
  pipeline_ = std::move(other.pipeline_);
  fd_ = std::exchange(other.fd_, -1);
  base_address_ = other.base_address_;
  addresses_ = std::move(other.addresses_);
  stored_ = std::move(other.stored_);
  work_ = std::move(other.work_);
  decompressor_ = std::move(other.decompressor_);
  other.enabled_ = false;
  return *this;
}

void DirectChunkReader::enable_unfiltered(hid_t dataset, hsize_t rows, const std::string& path) {
  // A user block shifts every HDF5 address by its size.
  if (!base_address(dataset, &base_address_)) return;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return;
  addresses_.assign(rows, 0);
  enabled_ = true;
}

bool DirectChunkReader::read(hid_t dataset, int64_t index, void* out) {
  if (!enabled_ || index < 0) return false;
  return pipeline_.empty() ? read_unfiltered(dataset, index, out) : read_filtered(dataset, index, out);
}

bool DirectChunkReader::read_unfiltered(hid_t dataset, int64_t index, void* out) {
  if (static_cast<size_t>(index) >= addresses_.size()) return false;
  uint64_t& address = addresses_[static_cast<size_t>(index)];
  if (address == 0) {
    std::vector<hsize_t> offset(rank_, 0);
    offset[0] = static_cast<hsize_t>(index);
    unsigned skipped = 0;
    haddr_t chunk_address = HADDR_UNDEF;
    hsize_t stored = 0;
    // HADDR_UNDEF: never written, H5Dread returns the fill value.
    if (H5Dget_chunk_info_by_coord(dataset, offset.data(), &skipped, &chunk_address, &stored) < 0 ||
        chunk_address == HADDR_UNDEF || stored != row_bytes_ || skipped != 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    address = base_address_ + chunk_address;
  }
  // From here on no HDF5 call: the copy runs outside HDF5's global lock.
  // An error or end of file (truncated): H5Dread reports it.
  return pread_exact(fd_, static_cast<unsigned char*>(out), row_bytes_, address);
}

bool DirectChunkReader::read_filtered(hid_t dataset, int64_t index, void* out) {
  std::vector<hsize_t> offset(rank_, 0);
  offset[0] = static_cast<hsize_t>(index);
  hsize_t stored = 0;
  // 0 bytes: the chunk was never written, H5Dread returns the fill value.
  if (H5Dget_chunk_storage_size(dataset, offset.data(), &stored) < 0 || stored == 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  if (stored > stored_.size()) stored_.resize(stored);
  uint32_t skipped = 0;  // bit f set: filter f of the pipeline was not applied to this chunk
  if (H5Dread_chunk(dataset, H5P_DEFAULT, offset.data(), &skipped, stored_.data()) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  if (skipped != 0) return false;
  // From here on no HDF5 call: the decode runs outside HDF5's global lock.
  return decode(decompressor_.get(), stored_.data(), stored, pipeline_.size() == 2 && element_size_ > 1,
                element_size_, work_.data(), static_cast<unsigned char*>(out), row_bytes_);
}

std::shared_ptr<const ChunkIndex> DirectChunkReader::index_all_rows(hid_t dataset) const {
  if (!enabled_) return nullptr;
  auto index = std::make_shared<ChunkIndex>();
  index->row_bytes = row_bytes_;
  index->element_size = element_size_;
  index->deflate = !pipeline_.empty();
  index->shuffle = pipeline_.size() == 2;
  uint64_t base = 0;
  const H5Handle space(H5Dget_space(dataset), H5Sclose);
  if (!space.valid() || !base_address(dataset, &base)) {
    H5Eclear2(H5E_DEFAULT);
    return nullptr;
  }
  std::vector<hsize_t> dims(rank_), offset(rank_, 0);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  if (dims[0] > kMaxRowsIndexed) return nullptr;
  index->offsets.reserve(dims[0]);
  index->sizes.reserve(dims[0]);
  for (hsize_t row = 0; row < dims[0]; ++row) {
    offset[0] = row;
    unsigned skipped = 0;
    haddr_t address = HADDR_UNDEF;
    hsize_t stored = 0;
    if (H5Dget_chunk_info_by_coord(dataset, offset.data(), &skipped, &address, &stored) < 0 ||
        address == HADDR_UNDEF || skipped != 0 || stored == 0 || stored > UINT32_MAX ||
        (!index->deflate && stored != row_bytes_)) {
      H5Eclear2(H5E_DEFAULT);
      return nullptr;
    }
    index->offsets.push_back(base + address);
    index->sizes.push_back(static_cast<uint32_t>(stored));
  }
  return index;
}

}  // namespace da::io
