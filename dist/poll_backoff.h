// How a loop that polls an MPI request waits between polls: back to back for
// the first kSpin of the wait, then yielding the core between polls.
//
// Why not yield from the start: a small collective (SyncBN's statistics, a
// method's batch sums) completes within microseconds, but one sched_yield on
// a loaded core can hand the core to another process for milliseconds.
// Measured on 2 loaded cores (2026-12-07), a 64-float all-reduce between two
// ranks polled with a yield after every test took 6-12 ms (shared memory and
// TCP alike), with a 50 us spin first 0.7 us (shared memory) and 13 us (TCP);
// the demo's SyncBN training over TCP went from 2.3 to 9.8 images/s, across
// two network-namespace hosts from 2.2 to 16. Why yield at all: a rank whose
// peers share its core (more ranks than cores), whose compute threads wait,
// or whose packets the kernel must process on the same cores (spinning
// between namespace hosts made that all-reduce 9 ms) must let them run once a
// collective takes longer than a spin.
#pragma once

#include <chrono>
#include <thread>

namespace da::dist {

class PollBackoff {
 public:
  static constexpr std::chrono::microseconds kSpin{50};

  // Between two polls.
  void pause() const {
    if (std::chrono::steady_clock::now() - start_ > kSpin) std::this_thread::yield();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace da::dist
