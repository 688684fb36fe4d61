#include "io/byte_shuffle.h"

#include <cstring>

namespace da::io {

void shuffle_bytes(const unsigned char* in, unsigned char* out, size_t bytes, size_t element_size) {
  const size_t n = bytes / element_size;
  if (element_size == 2) {  // uint16, the common case
    for (size_t i = 0; i < n; ++i) {
      out[i] = in[2 * i];
      out[n + i] = in[2 * i + 1];
    }
  } else {
    for (size_t b = 0; b < element_size; ++b) {
      unsigned char* plane = out + b * n;
      for (size_t i = 0; i < n; ++i) plane[i] = in[i * element_size + b];
    }
  }
  const size_t tail = bytes - n * element_size;
  if (tail > 0) std::memcpy(out + n * element_size, in + n * element_size, tail);
}

void unshuffle_bytes(const unsigned char* in, unsigned char* out, size_t bytes, size_t element_size) {
  const size_t n = bytes / element_size;
  if (element_size == 2) {
    const unsigned char* low = in;
    const unsigned char* high = in + n;
    for (size_t i = 0; i < n; ++i) {
      out[2 * i] = low[i];
      out[2 * i + 1] = high[i];
    }
  } else {
    for (size_t b = 0; b < element_size; ++b) {
      const unsigned char* plane = in + b * n;
      for (size_t i = 0; i < n; ++i) out[i * element_size + b] = plane[i];
    }
  }
  const size_t tail = bytes - n * element_size;
  if (tail > 0) std::memcpy(out + n * element_size, in + n * element_size, tail);
}

}  // namespace da::io
