// Reads one row (axis 0 entry) of a chunked dataset without HDF5's read path:
//   deflate(+shuffle) chunks: H5Dread_chunk, then decoded here (libdeflate,
//     1.6-2.3x faster than zlib on our chunks, byte for byte the same output;
//     then unshuffle);
//   unfiltered chunks: pread() of the chunk's bytes from the file, at the
//     address HDF5 reports for it (looked up once per chunk; only in datasets
//     of at most 4,096 rows, where that lookup is cheap enough, see the .cpp).
//
// Why: the thread-safe HDF5 build holds one global lock around every API
// call, so H5Dread (its filter pipeline, and even the plain copy of an
// unfiltered chunk) never runs on two threads at once, and loader workers do
// not scale. A direct deflate read holds the lock only while the stored bytes
// are copied, the inflate runs on the worker's own thread; an unfiltered read
// holds it only for the first address lookup of a chunk, the copy is a pread
// straight into the caller's buffer (a batch row), as fast as read() of the
// file itself.
//
// Only what is decoded exactly as HDF5 would is taken this way: one chunk per
// row spanning the other axes, a file type equal to the memory type (no
// conversion), and a pipeline of deflate and shuffle only, or none. Everything
// else — other filters, a chunk whose filter mask says a filter was skipped,
// an unwritten chunk (fill value), a stored size other than the row's, any
// HDF5, decode or read error — makes read() return false and the caller uses
// H5Dread, so values and error messages stay HDF5's.
//
// index_all_rows() goes one step further: every row's chunk address and
// size, asked of HDF5 once, in a ChunkIndex that a ChunkDecoder reads from
// with pread() and no HDF5 file open at all (io/archive_set.h: an open HDF5
// file costs about 0.5 MiB, a file descriptor nothing).
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct libdeflate_decompressor;

namespace da::io {

// Frees a libdeflate decompressor (the deleter of its std::unique_ptr).
struct FreeDecompressor {
  void operator()(libdeflate_decompressor* decompressor) const;
};

// Where every row of a dataset is stored in its file: enough to read any
// row with pread() and decode it with ChunkDecoder, no HDF5 file open.
struct ChunkIndex {
  size_t row_bytes = 0;
  size_t element_size = 1;  // what the shuffle filter shuffled by
  bool deflate = false;     // false: stored as is
  bool shuffle = false;     // shuffle, then deflate
  std::vector<uint64_t> offsets;  // file offset of row i's chunk (a user block included)
  std::vector<uint32_t> sizes;    // its stored bytes
};

// Reads rows through a ChunkIndex: one per thread (its buffers and
// decompressor are its own).
class ChunkDecoder {
 public:
  ChunkDecoder();
  ~ChunkDecoder();
  ChunkDecoder(ChunkDecoder&&) noexcept;
  ChunkDecoder& operator=(ChunkDecoder&&) noexcept;
  // Row `row` of the file open as `fd` into `out` (index.row_bytes); false
  // when the read or the decode fails (the caller then asks HDF5).
  bool read(int fd, const ChunkIndex& index, int64_t row, void* out);

 private:
  std::vector<unsigned char> stored_;  // the chunk as stored
  std::vector<unsigned char> work_;    // inflated, still shuffled
  std::unique_ptr<libdeflate_decompressor, FreeDecompressor> decompressor_;
};

class DirectChunkReader {
 public:
  DirectChunkReader() = default;
  // Inspects `dataset` (rows of `row_bytes` bytes read as `memory_type`) of
  // the file at `path` (opened read-only for unfiltered chunks); never
  // throws, leaves the reader disabled when the direct path cannot be used
  // for any chunk.
  DirectChunkReader(hid_t dataset, hid_t memory_type, size_t row_bytes, const std::string& path);
  ~DirectChunkReader();
  DirectChunkReader(DirectChunkReader&& other) noexcept;
  DirectChunkReader& operator=(DirectChunkReader&& other) noexcept;
  DirectChunkReader(const DirectChunkReader&) = delete;
  DirectChunkReader& operator=(const DirectChunkReader&) = delete;

  bool enabled() const { return enabled_; }

  // Decodes row `index` of `dataset` into `out` (row_bytes). Returns false,
  // with HDF5's error stack cleared and `out` unspecified, when the caller must
  // read the row with H5Dread instead.
  bool read(hid_t dataset, int64_t index, void* out);

  // Every row's chunk address and size, asked of HDF5 once per row; null
  // when disabled, when the dataset has more rows than HDF5 looks up at a
  // reasonable cost (256, direct_chunk_reader.cpp: kMaxRowsIndexed), or when a
  // row's chunk is unwritten, skipped a filter or (unfiltered) is not
  // row_bytes long: those rows need H5Dread.
  std::shared_ptr<const ChunkIndex> index_all_rows(hid_t dataset) const;

 private:
  void enable_unfiltered(hid_t dataset, hsize_t rows, const std::string& path);
  bool read_unfiltered(hid_t dataset, int64_t index, void* out);
  bool read_filtered(hid_t dataset, int64_t index, void* out);

  enum class Filter { kDeflate, kShuffle };
  bool enabled_ = false;
  int rank_ = 0;
  size_t row_bytes_ = 0;
  size_t element_size_ = 1;
  std::vector<Filter> pipeline_;      // in the order HDF5 applies them when writing; empty: unfiltered
  int fd_ = -1;                        // unfiltered: the file, read-only
  uint64_t base_address_ = 0;          // unfiltered: where HDF5's addresses start (after a user block)
  std::vector<uint64_t> addresses_;    // unfiltered: file offset of each row's chunk, 0 = not looked up
  std::vector<unsigned char> stored_;  // the chunk as stored
  std::vector<unsigned char> work_;    // intermediate stage of the decode
  std::unique_ptr<libdeflate_decompressor, FreeDecompressor> decompressor_;  // filtered: this reader's own
};

}  // namespace da::io
