// HDF5's shuffle filter and its inverse: the bytes of n elements of
// `element_size` bytes stored as planes, byte b of element i at b * n + i
// (similar bytes side by side, so deflate finds them). A tail shorter than
// one element stays as it is, as HDF5 leaves it.
#pragma once

#include <cstddef>

namespace da::io {

void shuffle_bytes(const unsigned char* in, unsigned char* out, size_t bytes, size_t element_size);
void unshuffle_bytes(const unsigned char* in, unsigned char* out, size_t bytes, size_t element_size);

}  // namespace da::io
