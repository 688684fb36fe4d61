#include "dist/local_communicator.h"

#include <ATen/ATen.h>

#include "dist/errors.h"

namespace da::dist {
namespace {

class DoneWork : public Work {
 public:
  void wait() override {}
  bool test() override { return true; }
};

}  // namespace

std::unique_ptr<Work> LocalCommunicator::all_reduce_async(at::Tensor&, ReduceOp) {
  return std::make_unique<DoneWork>();
}

void LocalCommunicator::broadcast(at::Tensor&, int root) {
  if (root != 0) throw DistError("broadcast from rank " + std::to_string(root) + " in a world of one");
}

at::Tensor LocalCommunicator::all_gather(const at::Tensor& tensor) { return tensor.unsqueeze(0).clone(); }

}  // namespace da::dist
