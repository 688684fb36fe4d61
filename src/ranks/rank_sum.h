// Sums over the ranks as models and methods see them: one small interface
// (RankSum) and the differentiable operations built on it. Synchronised
// BatchNorm sums its batch statistics through it; a method whose result
// would otherwise depend on the number of ranks (class centroids, confidence
// histograms, covariances, kernel matrices) sums its statistics over the
// ranks, or gathers the samples of the global batch, through it. Neither
// sees dist/ or MPI: the set-up (setup/communicator_rank_sum.h) implements
// RankSum over a communicator; without one, a world of one rank (identity).
//
// Every rank must make the same calls in the same order with tensors of the
// same shape and dtype (as with any collective): call them from code paths
// every rank takes (each forward, compute_da_loss of every step,
// on_epoch_end, ...).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace da::ranks {

class RankSum {
 public:
  virtual ~RankSum() = default;
  // In place: every rank ends with the element-wise sum over all ranks.
  virtual void all_reduce_sum(at::Tensor& tensor) = 0;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
};

// The world of one rank: all_reduce_sum leaves the tensor as it is.
std::shared_ptr<RankSum> single_rank();

// Sum over ranks as an autograd function: returns a new tensor holding the
// sum of `input` over the ranks; its backward sums the incoming gradient over
// the ranks too (every rank's loss depends on every rank's input), so that
// with gradients averaged over ranks by data parallelism the result is the
// gradient of the one-process run on the union batch. Called on every rank
// in the same order, forward and backward (the loss of every rank must
// depend on the result in the same way).
at::Tensor all_reduce_sum(const at::Tensor& input, RankSum& ranks);

// The rows of every rank, concatenated in rank order: rows [n_r, ...] on rank
// r gives [n_0 + ... + n_{N-1}, ...] on every rank, bit-exact copies of each
// rank's rows. Differentiable, with all_reduce_sum's gradient semantics: each
// rank's rows are written into their slot of a zero tensor and the slots are
// summed over the ranks, so the backward sums the incoming gradient over the
// ranks and hands each rank the slice of its own rows (with gradients averaged
// over ranks by data parallelism, a loss of the gathered rows gets the
// gradient of the one-process run on the union batch). The ranks may hold
// different row counts (one small all-reduce of the counts comes first); the
// size of a row must be the same everywhere, else every rank throws
// std::invalid_argument starting with "<what>: ". A world of one returns
// `rows` itself, with no collective.
at::Tensor all_gather_rows(const at::Tensor& rows, RankSum& ranks, const std::string& what);

}  // namespace da::ranks
