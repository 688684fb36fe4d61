// How the process's host memory allocator treats freed memory
// (`run.host_allocator`).
//
// Why this exists: a CPU training step allocates and frees the same large
// activation and gradient buffers every step (at 256x256, batch 4, U-Net
// ResNet-18: tensors of 8-64 MiB). glibc serves blocks above its mmap
// threshold (dynamic, at most 32 MiB) with mmap and gives them back to the
// kernel on free, and trims its heap when more than the trim threshold is
// free at the top; the next step then page-faults every page in again, and
// the kernel zeroes it. On the development VM that was 2 of every 3 seconds of
// a training step (500 k page faults per step; see the README's performance
// section). "retain" raises both thresholds so freed blocks stay in the heap
// and the next step reuses them; RSS stays near the step's peak, as with
// PyTorch's CUDA caching allocator.
//
// Only glibc's main arena grows without bound, so this helps allocations of
// the main thread (the training loop, CPU autograd and inference run there);
// loader threads recycle their batch buffers themselves (io/batch_reader).
#pragma once

#include <string>

namespace da::setup {

// "retain" (mallopt: mmap and trim thresholds kHostRetainBytes, top pad
// kHostTopPadBytes) or "system" (glibc's defaults, or whatever GLIBC_TUNABLES
// or an LD_PRELOADed jemalloc/tcmalloc set: nothing is changed). Process-wide
// and not undone. Throws std::invalid_argument for another mode; logs a
// warning when glibc refuses a setting.
void configure_host_allocator(const std::string& mode);

inline constexpr long kHostRetainBytes = 1L << 30;  // 1 GiB
inline constexpr long kHostTopPadBytes = 64L << 20;  // 64 MiB

}  // namespace da::setup
