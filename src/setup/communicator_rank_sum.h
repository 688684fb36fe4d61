// ranks::RankSum over a dist::Communicator: what synchronised BatchNorm and
// the methods' batch-wide statistics sum through in a data-parallel run.
#pragma once

#include "dist/communicator.h"
#include "ranks/rank_sum.h"

namespace da::setup {

class CommunicatorRankSum : public ranks::RankSum {
 public:
  explicit CommunicatorRankSum(dist::Communicator& comm) : comm_(comm) {}
  // A world of one leaves the tensor as it is, with no collective.
  void all_reduce_sum(at::Tensor& tensor) override {
    if (comm_.size() > 1) comm_.all_reduce(tensor, dist::ReduceOp::kSum);
  }
  int rank() const override { return comm_.rank(); }
  int world_size() const override { return comm_.size(); }

 private:
  dist::Communicator& comm_;
};

}  // namespace da::setup
