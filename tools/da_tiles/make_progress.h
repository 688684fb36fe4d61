// The progress line of `da_tiles make` on stderr: windows read, shards done
// (and kept from an earlier run), tiles written, read speed, time left. On a
// terminal it is rewritten in place twice a second; otherwise (a batch job's
// log) it is a plain line every 10 seconds. A thread of its own draws it, so
// the tiling threads only add to counters.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace da::tiles {

class MakeProgress {
 public:
  // `windows` and `shards` in all; `window_bytes`: raster bytes per window
  // (for the read speed); `prefix` starts every line.
  MakeProgress(int64_t windows, int64_t shards, int64_t window_bytes, std::string prefix);
  MakeProgress(const MakeProgress&) = delete;
  MakeProgress& operator=(const MakeProgress&) = delete;
  // Draws the final state and ends the line (only ends it while an exception unwinds).
  ~MakeProgress();

  void add_windows(int64_t windows) { windows_done_ += windows; }
  void add_tiles(int64_t tiles) { tiles_ += tiles; }
  // A shard finished: written now, or `kept` (complete from an earlier run; its windows count as done).
  void shard_done(bool kept, int64_t windows);

  // "make: 41.0% of 2400 windows, 12/40 shards (3 kept), 980 tiles, 212 MB/s, 112 s left"
  std::string line() const;

 private:
  void draw_until_stopped();

  const int64_t windows_;
  const int64_t shards_;
  const int64_t window_bytes_;
  const std::string prefix_;
  const bool terminal_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<int64_t> windows_done_{0};
  std::atomic<int64_t> windows_kept_{0};
  std::atomic<int64_t> shards_done_{0};
  std::atomic<int64_t> shards_kept_{0};
  std::atomic<int64_t> tiles_{0};
  std::mutex mutex_;
  std::condition_variable stop_signal_;
  bool stop_ = false;
  std::thread drawer_;
};

}  // namespace da::tiles
