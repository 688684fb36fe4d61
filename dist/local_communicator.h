// The communicator of a world of one: every collective is the identity.
#pragma once

#include "dist/communicator.h"

namespace da::dist {

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  std::unique_ptr<Work> all_reduce_async(at::Tensor& tensor, ReduceOp op) override;
  void broadcast(at::Tensor& tensor, int root) override;
  at::Tensor all_gather(const at::Tensor& tensor) override;
  void barrier() override {}
  std::unique_ptr<Communicator> duplicate(Progress) override { return std::make_unique<LocalCommunicator>(); }
};

}  // namespace da::dist
