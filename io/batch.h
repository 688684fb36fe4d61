// One batch of tiles as the trainer consumes it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace da::io {

struct Batch {
  at::Tensor image;              // float32 [B, C, H, W], normalised and augmented
  at::Tensor mask;               // int64 [B, H, W] (ignore_index kept); undefined without masks
  std::vector<int64_t> indices;  // global tile index of each row
  int64_t skipped = 0;           // tiles left out for NaN/Inf (LoaderOptions::skip_non_finite)
};

}  // namespace da::io
