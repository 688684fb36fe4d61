// Cross-rank collectives as a method sees them. A method whose result would
// otherwise depend on the number of ranks (batch-wide statistics: class
// centroids, confidence histograms, covariances, kernel matrices) sums its
// statistics over the ranks, or gathers the samples of the global batch,
// through this interface; methods never see dist/ or MPI. The trainer
// attaches an implementation over its communicator to every method
// (Method::attach_collectives); without one, a method works in a world of
// one rank (identity).
//
// Every rank must make the same calls in the same order with tensors of the
// same shape and dtype (as with any collective): call them from code paths
// every rank takes (compute_da_loss of every step, on_epoch_end, ...).
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>

namespace da::methods {

class Collectives {
 public:
  virtual ~Collectives() = default;
  // In place: every rank ends with the element-wise sum over all ranks.
  virtual void all_reduce_sum(torch::Tensor& tensor) = 0;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
};

// The world of one rank: all_reduce_sum leaves the tensor as it is.
std::shared_ptr<Collectives> single_rank_collectives();

// Sum over ranks as an autograd function: returns a new tensor holding the
// sum of `input` over the ranks; its backward sums the incoming gradient over
// the ranks too (every rank's loss depends on every rank's input), so that
// with gradients averaged over ranks by data parallelism the result is the
// gradient of the one-process run on the union batch. Called on every rank
// in the same order, forward and backward (the loss of every rank must
// depend on the result in the same way).
torch::Tensor all_reduce_sum(const torch::Tensor& input, Collectives& collectives);

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
torch::Tensor all_gather_rows(const torch::Tensor& rows, Collectives& collectives, const std::string& what);

}  // namespace da::methods
