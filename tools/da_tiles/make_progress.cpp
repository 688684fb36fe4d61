#include "make_progress.h"

#include <unistd.h>

#include <cstdio>
#include <exception>

namespace da::tiles {

MakeProgress::MakeProgress(int64_t windows, int64_t shards, int64_t window_bytes, std::string prefix)
    : windows_(windows),
      shards_(shards),
      window_bytes_(window_bytes),
      prefix_(std::move(prefix)),
      terminal_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      drawer_([this] { draw_until_stopped(); }) {}

MakeProgress::~MakeProgress() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  stop_signal_.notify_all();
  drawer_.join();
  if (std::uncaught_exceptions() > 0) {  // the error message follows on a line of its own
    if (terminal_) std::fputs("\n", stderr);
    return;
  }
  std::fprintf(stderr, terminal_ ? "\r%s\x1b[K\n" : "%s\n", line().c_str());
}

void MakeProgress::shard_done(bool kept, int64_t windows) {
  ++shards_done_;
  if (!kept) return;
  ++shards_kept_;
  windows_kept_ += windows;
  windows_done_ += windows;
}

std::string MakeProgress::line() const {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done = windows_done_, kept = windows_kept_;
  const double percent = windows_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(windows_) : 100.0;
  // Speed and time left count only windows read in this run, not the kept ones.
  const double read_per_s = seconds > 0 ? static_cast<double>(done - kept) / seconds : 0.0;
  const double mb_per_s = read_per_s * static_cast<double>(window_bytes_) / 1e6;
  std::string left = done >= windows_ ? "0 s" : "?";
  if (read_per_s > 0 && done < windows_) left = std::to_string(static_cast<int64_t>(static_cast<double>(windows_ - done) / read_per_s)) + " s";
  char text[256];
  std::snprintf(text, sizeof text, "%.1f%% of %lld windows, %lld/%lld shards (%lld kept), %lld tiles, %.0f MB/s, %s left",
                percent, static_cast<long long>(windows_), static_cast<long long>(shards_done_.load()),
                static_cast<long long>(shards_), static_cast<long long>(shards_kept_.load()),
                static_cast<long long>(tiles_.load()), mb_per_s, left.c_str());
  return prefix_ + text;
}

void MakeProgress::draw_until_stopped() {
  const auto every = terminal_ ? std::chrono::milliseconds(500) : std::chrono::milliseconds(10000);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_signal_.wait_for(lock, every, [this] { return stop_; })) {
    std::fprintf(stderr, terminal_ ? "\r%s\x1b[K" : "%s\n", line().c_str());
    std::fflush(stderr);
  }
}

}  // namespace da::tiles
