// Two ranks played by two threads, for testing cross-rank sums without MPI:
// sum(rank, t) waits until both threads have handed in their tensor, then
// both get the element-wise sum (always added in rank order).
#pragma once

#include <ATen/ATen.h>

#include <condition_variable>
#include <mutex>

namespace da::test {

class TwoThreadSum {
 public:
  void sum(int rank, at::Tensor& t) {
    std::unique_lock<std::mutex> lock(mutex_);
    const int generation = generation_;
    slots_[rank] = t.clone();
    if (++arrived_ == 2) {
      result_ = slots_[0] + slots_[1];
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
    } else {
      changed_.wait(lock, [&] { return generation_ != generation; });
    }
    t.copy_(result_);
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  at::Tensor slots_[2], result_;
  int arrived_ = 0;
  int generation_ = 0;
};

}  // namespace da::test
