// Encodes one chunk as HDF5's shuffle and deflate filters store it (the
// shuffled bytes, then one zlib stream), with libdeflate, so that a writer
// can hand HDF5 the finished bytes (H5Dwrite_chunk). Why: HDF5's own filters
// run inside H5Dwrite, under the thread-safe build's global lock, so
// writers on different threads would compress one at a time; encoded here,
// they compress in parallel and HDF5 only stores the bytes. Any zlib reader
// (HDF5, h5py) decodes them; the bytes differ from zlib's own output.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

struct libdeflate_compressor;

namespace da::io {

// Frees a libdeflate compressor (the deleter of its std::unique_ptr).
struct FreeCompressor {
  void operator()(libdeflate_compressor* compressor) const;
};

class ChunkEncoder {
 public:
  // deflate_level 0: no deflate; shuffle by `element_size` bytes when `shuffle`.
  ChunkEncoder(int deflate_level, bool shuffle, size_t element_size);

  // The stored form of `bytes` bytes at `data`: a view valid until the next
  // call (`data` itself when there is nothing to do).
  struct Encoded {
    const void* data;
    size_t bytes;
  };
  Encoded encode(const void* data, size_t bytes);

 private:
  bool shuffle_;
  size_t element_size_;
  std::unique_ptr<libdeflate_compressor, FreeCompressor> compressor_;  // null without deflate
  std::vector<unsigned char> shuffled_;
  std::vector<unsigned char> compressed_;
};

}  // namespace da::io
