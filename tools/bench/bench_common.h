// Shared pieces of da_bench_loader: the options of each subcommand, a clock,
// and the best/median summary of repeated timings.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace da::bench {

// The options of each subcommand (declared in main.cpp).
struct GenerateOptions {
  std::string out;
  int64_t bands = 3;
  std::string dtype = "uint8";
  int64_t size = 512;
  int64_t tiles = 64;
  int deflate = 0;
  uint64_t seed = 0;
};

struct RawOptions {
  std::vector<std::string> files;
  int repeat = 3;
  int64_t buffer_kib = 0;  // 0: the fastest of 64, 256 and 1024
};

struct LoaderPassOptions {
  std::string file;
  int workers = 1;
  int64_t batch = 16;
  int prefetch = 4;
  int threads = 1;
  int repeat = 3;
  std::string output = "normalized";  // or "stored"
  int rank = 0;   // this process's share of the tiles, as a training rank's
  int world = 1;
  int64_t max_open = 64;     // LoaderOptions::max_open_shards
  int64_t max_batches = 0;  // > 0: time only the first batches of each epoch, skip the value check
};

struct ChunksOptions {
  std::string file;
  int threads = 2;
  int repeat = 3;
};

struct BreakdownOptions {
  std::string file;
  int64_t batch = 16;
  int threads = 1;
  int repeat = 3;
};

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU seconds (user + system) of the whole process so far.
inline double cpu_s() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// Wall seconds of repeated runs, and the process's CPU seconds in each: CPU
// over wall says how many cores a run kept busy (at most 1 when a global
// lock serialises its threads, whatever the load of the machine).
struct Timings {
  std::vector<double> seconds;
  std::vector<double> cpu;
  double cpu_per_wall() const {
    double c = 0, w = 0;
    for (size_t i = 0; i < cpu.size(); ++i) c += cpu[i], w += seconds[i];
    return w > 0 ? c / w : 0;
  }
  double best() const { return *std::min_element(seconds.begin(), seconds.end()); }
  double median() const {
    std::vector<double> s = seconds;
    std::sort(s.begin(), s.end());
    const size_t n = s.size();
    return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  }
};

constexpr double kMiB = 1024.0 * 1024.0;

// This process's proportional set size and peak resident size (MiB), and
// its open file descriptors, from /proc.
struct ProcessMemory {
  double pss_mib = 0;
  double hwm_mib = 0;
  int fds = 0;
};
ProcessMemory process_memory();

// Subcommands (each returns the process exit status).
int run_generate(const GenerateOptions& options);
int run_raw(const RawOptions& options);
int run_chunks(const ChunksOptions& options);
int run_loader(const LoaderPassOptions& options);
int run_breakdown(const BreakdownOptions& options);

}  // namespace da::bench
