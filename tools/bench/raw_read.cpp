// `raw`: the physical limit: read() every byte of the files into one reused
// buffer, after one untimed pass that warms the page cache. The buffer size
// matters (a buffer that stays in L2 is about twice as fast as an 8 MiB one
// here), so by default 64 KiB, 256 KiB and 1 MiB are each timed --repeat
// times and the fastest is reported.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/bench/bench_common.h"

namespace da::bench {
namespace {

int64_t read_all(const std::string& path, std::vector<char>& buffer) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  int64_t total = 0;
  for (;;) {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0) {
      ::close(fd);
      throw std::runtime_error(path + ": " + std::strerror(errno));
    }
    if (got == 0) break;
    total += got;
  }
  ::close(fd);
  return total;
}

}  // namespace

int run_raw(const RawOptions& options) {
  const int repeat = options.repeat;
  std::vector<int64_t> sizes_kib{64, 256, 1024};
  if (options.buffer_kib > 0) sizes_kib = {options.buffer_kib};
  for (const std::string& path : options.files) {
    Timings best;
    size_t best_buffer = 0;
    int64_t bytes = 0;
    for (const int64_t kib : sizes_kib) {
      std::vector<char> buffer(static_cast<size_t>(kib) * 1024);
      read_all(path, buffer);  // warm the page cache
      Timings timings;
      for (int r = 0; r < repeat; ++r) {
        const double start = now_s();
        bytes = read_all(path, buffer);
        timings.seconds.push_back(now_s() - start);
      }
      if (best.seconds.empty() || timings.best() < best.best()) {
        best = timings;
        best_buffer = buffer.size();
      }
    }
    std::printf(
        "RESULT kind=raw file=%s bytes=%lld buffer=%zu repeat=%d best_s=%.4f median_s=%.4f mb_per_s=%.1f "
        "median_mb_per_s=%.1f\n",
        path.c_str(), static_cast<long long>(bytes), best_buffer, repeat, best.best(), best.median(),
        bytes / kMiB / best.best(), bytes / kMiB / best.median());
  }
  return 0;
}

}  // namespace da::bench
