#include "io/chunk_encoder.h"

#include <libdeflate.h>

#include <stdexcept>
#include <string>

#include "io/byte_shuffle.h"

namespace da::io {

void FreeCompressor::operator()(libdeflate_compressor* compressor) const { libdeflate_free_compressor(compressor); }

ChunkEncoder::ChunkEncoder(int deflate_level, bool shuffle, size_t element_size)
    : shuffle_(shuffle && element_size > 1), element_size_(element_size) {
  if (deflate_level > 0) {
    // libdeflate's levels 1-9 trade speed for size as zlib's do (its 10-12 are never asked for here).
    compressor_.reset(libdeflate_alloc_compressor(deflate_level));
    if (!compressor_) throw std::runtime_error("cannot allocate a deflate compressor of level " + std::to_string(deflate_level));
  }
}

ChunkEncoder::Encoded ChunkEncoder::encode(const void* data, size_t bytes) {
  const unsigned char* input = static_cast<const unsigned char*>(data);
  if (shuffle_) {
    shuffled_.resize(bytes);
    shuffle_bytes(input, shuffled_.data(), bytes, element_size_);
    input = shuffled_.data();
  }
  if (!compressor_) return {input, bytes};
  compressed_.resize(libdeflate_zlib_compress_bound(compressor_.get(), bytes));
  const size_t stored = libdeflate_zlib_compress(compressor_.get(), input, bytes, compressed_.data(), compressed_.size());
  // Cannot happen with a buffer of the bound's size; checked so that a library change cannot store garbage.
  if (stored == 0) throw std::runtime_error("deflate of a " + std::to_string(bytes) + "-byte chunk failed");
  return {compressed_.data(), stored};
}

}  // namespace da::io
