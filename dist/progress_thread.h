// A thread that runs jobs one after another in the order they were posted:
// the background worker of a communicator whose collectives must progress
// while the caller computes (MPI progresses a non-blocking collective only
// inside MPI calls; see MpiCommunicator with Progress::kThread). Jobs run in
// posting order, so every rank issues its collectives in the same order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace da::dist {

class ProgressThread {
 public:
  ProgressThread();
  // Runs the jobs still queued, then joins. After stop() they see
  // stopping() and give up at once.
  ~ProgressThread();
  ProgressThread(const ProgressThread&) = delete;
  ProgressThread& operator=(const ProgressThread&) = delete;

  void post(std::function<void()> job);
  // For a job's wait loop: true once the owner is going away during a
  // failure (a peer is gone, the job is about to be aborted): a collective
  // would only end at its timeout.
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  void stop() { stopping_.store(true, std::memory_order_relaxed); }

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool closing_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace da::dist
