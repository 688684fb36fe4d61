// One of two ranks played by threads (TwoThreadSum) as a ranks::RankSum: for
// the tests that run a method or a synchronised BatchNorm on two "ranks" and
// compare with one rank on the union batch.
#pragma once

#include "ranks/rank_sum.h"
#include "support/two_thread_sum.h"

namespace da::test {

class ThreadRank : public ranks::RankSum {
 public:
  ThreadRank(TwoThreadSum& sum, int rank) : sum_(sum), rank_(rank) {}
  void all_reduce_sum(at::Tensor& t) override { sum_.sum(rank_, t); }
  int rank() const override { return rank_; }
  int world_size() const override { return 2; }

 private:
  TwoThreadSum& sum_;
  int rank_;
};

}  // namespace da::test
