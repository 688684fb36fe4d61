// The training logs of the steps (loss/seg, loss/da, da/<method>/<key>, lr,
// ...) summed over an epoch without waiting for the device, and read as
// doubles only when they are logged.
//
// Why: reading a CUDA tensor (`.item()`) makes the host wait for every kernel
// queued so far, so doing it for each loss on each step keeps the host from
// running ahead and issuing the next step. Tensor values (methods::LogValue)
// are summed on their device in float64; one copy per log interval (and one
// at the end of the epoch) brings them to the host.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "dist/communicator.h"
#include "methods/log_value.h"

namespace da::trainer {

using StepLogs = std::map<std::string, methods::LogValue>;

// `logs` as doubles: every tensor value copied to the host at once.
std::map<std::string, double> read_logs(const StepLogs& logs);

// The mean of each value over the ranks (every rank holds the same keys: the
// same methods and config), so logged training metrics describe the global
// batch as in a one-process run, not rank 0's share of it.
std::map<std::string, double> mean_over_ranks(dist::Communicator& comm, const std::map<std::string, double>& values);

class StepLogSums {
 public:
  // Adds one step's values; tensor values are added on their device.
  void add(const StepLogs& logs);
  // The sums so far as doubles (one copy from the device).
  std::map<std::string, double> read() const;

 private:
  std::map<std::string, double> host_;
  std::map<std::string, at::Tensor> device_;  // float64 scalars
};

}  // namespace da::trainer
