// Reads one row (axis 0 entry) of a chunked, deflate(+shuffle) dataset with
// H5Dread_chunk and decodes it ourselves (zlib inflate, then unshuffle).
//
// Why: the thread-safe HDF5 build holds one global lock around every API
// call, so H5Dread's filter pipeline (the inflate) never runs on two threads
// at once and loader workers do not scale on compressed archives. A direct
// chunk read holds the lock only while the stored bytes are copied; the
// inflate runs outside it, on the worker's own thread.
//
// Only what is decoded exactly as HDF5 would is taken this way: one chunk per
// row spanning the other axes, a file type equal to the memory type (no
// conversion), and a pipeline of deflate and shuffle only. Everything else —
// other filters, a chunk whose filter mask says a filter was skipped, an
// unwritten chunk (fill value), any HDF5 or zlib error, a size mismatch —
// makes read() return false and the caller uses H5Dread, so values and error
// messages stay HDF5's.
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace da::io {

class DirectChunkReader {
 public:
  DirectChunkReader() = default;
  // Inspects `dataset` (rows of `row_bytes` bytes read as `memory_type`);
  // never throws, leaves the reader disabled when the direct path cannot be
  // used for any chunk.
  DirectChunkReader(hid_t dataset, hid_t memory_type, size_t row_bytes);

  bool enabled() const { return enabled_; }

  // Decodes row `index` of `dataset` into `out` (row_bytes). Returns false,
  // with HDF5's error stack cleared and `out` unspecified, when the caller must
  // read the row with H5Dread instead.
  bool read(hid_t dataset, int64_t index, void* out);

 private:
  enum class Filter { kDeflate, kShuffle };
  bool enabled_ = false;
  int rank_ = 0;
  size_t row_bytes_ = 0;
  size_t element_size_ = 1;
  std::vector<Filter> pipeline_;      // in the order HDF5 applies them when writing
  std::vector<unsigned char> stored_;  // the chunk as stored
  std::vector<unsigned char> work_;    // intermediate stage of the decode
};

}  // namespace da::io
