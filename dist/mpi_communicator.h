// Collectives over MPI_COMM_WORLD. All-reduce is non-blocking
// (MPI_Iallreduce); its Work polls with MPI_Test until done or until the
// collective timeout, so a rank that never arrives produces an error that
// names the collective instead of a silent hang. GPU tensors go to MPI
// directly when the library is CUDA-aware, else through page-locked host
// copies.
#pragma once

#include <mpi.h>

#include "dist/communicator.h"

namespace da::dist {

// True when the MPI library reads and writes GPU memory itself: an Open MPI
// built with CUDA support (MPIX_CUDA_AWARE_SUPPORT) that also reports it at
// run time (MPIX_Query_cuda_support). Debian's Open MPI is not.
bool mpi_is_cuda_aware();

class MpiCommunicator : public Communicator {
 public:
  // Over MPI_COMM_WORLD.
  explicit MpiCommunicator(double timeout_s);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  std::unique_ptr<Work> all_reduce_async(at::Tensor& tensor, ReduceOp op) override;
  void broadcast(at::Tensor& tensor, int root) override;
  at::Tensor all_gather(const at::Tensor& tensor) override;
  void barrier() override;
  std::unique_ptr<Communicator> duplicate() override;

 private:
  MpiCommunicator(double timeout_s, MPI_Comm comm);

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  double timeout_s_;
  bool cuda_aware_;
};

}  // namespace da::dist
