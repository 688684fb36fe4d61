// One of two ranks played by threads (test::TwoThreadSum) as a method's
// Collectives: for the tests that run a method on two "ranks" and compare
// with one rank on the union batch.
#pragma once

#include "methods/collectives.h"
#include "support/two_thread_sum.h"

namespace da::methods::test_support {

class ThreadRank : public Collectives {
 public:
  ThreadRank(test::TwoThreadSum& sum, int rank) : sum_(sum), rank_(rank) {}
  void all_reduce_sum(torch::Tensor& t) override { sum_.sum(rank_, t); }
  int rank() const override { return rank_; }
  int world_size() const override { return 2; }

 private:
  test::TwoThreadSum& sum_;
  int rank_;
};

}  // namespace da::methods::test_support
