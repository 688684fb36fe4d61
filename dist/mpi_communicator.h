// Collectives on CPU tensors over MPI_COMM_WORLD. All-reduce is
// non-blocking (MPI_Iallreduce); its Work polls with MPI_Test until done or
// until the collective timeout, so a rank that never arrives produces an
// error that names the collective instead of a silent hang.
#pragma once

#include "dist/communicator.h"

namespace da::dist {

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s);
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  std::unique_ptr<Work> all_reduce_async(at::Tensor& tensor, ReduceOp op) override;
  void broadcast(at::Tensor& tensor, int root) override;
  at::Tensor all_gather(const at::Tensor& tensor) override;
  void barrier() override;

 private:
  int rank_ = 0;
  int size_ = 1;
  double timeout_s_;
};

}  // namespace da::dist
