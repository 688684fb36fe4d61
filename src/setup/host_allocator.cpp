#include "setup/host_allocator.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace da::setup {

void configure_host_allocator(const std::string& mode) {
  if (mode == "system") return;
  if (mode != "retain") throw std::invalid_argument("run.host_allocator: unknown mode '" + mode + "'");
  // Setting M_MMAP_THRESHOLD also turns off glibc's dynamic threshold, which
  // would otherwise stop at 32 MiB.
  const bool ok = mallopt(M_MMAP_THRESHOLD, static_cast<int>(kHostRetainBytes)) == 1 &&
                  mallopt(M_TRIM_THRESHOLD, static_cast<int>(kHostRetainBytes)) == 1 &&
                  mallopt(M_TOP_PAD, static_cast<int>(kHostTopPadBytes)) == 1;
  if (!ok) spdlog::warn("run.host_allocator retain: the C library refused a mallopt setting; freed memory may be "
                        "returned to the kernel and page-faulted in again every step");
}

}  // namespace da::setup
