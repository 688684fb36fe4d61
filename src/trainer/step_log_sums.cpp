#include "trainer/step_log_sums.h"

#include <ATen/ATen.h>

#include <vector>

namespace da::trainer {
namespace {

// Tensor values of `values` read to the host with one copy, added to `out`
// under their keys.
void read_tensors(const std::map<std::string, at::Tensor>& values, std::map<std::string, double>& out) {
  if (values.empty()) return;
  const c10::Device device = values.begin()->second.device();
  std::vector<at::Tensor> parts;
  parts.reserve(values.size());
  for (const auto& entry : values) parts.push_back(entry.second.to(device, at::kDouble).reshape({1}));
  const at::Tensor host = at::cat(parts).cpu();
  const double* data = host.data_ptr<double>();
  std::size_t i = 0;
  for (const auto& entry : values) out[entry.first] += data[i++];
}

}  // namespace

std::map<std::string, double> read_logs(const StepLogs& logs) {
  std::map<std::string, double> out;
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [key, value] : logs) {
    if (value.on_host()) {
      out[key] = value.value();
    } else {
      tensors[key] = value.tensor();
    }
  }
  read_tensors(tensors, out);
  return out;
}

void StepLogSums::add(const StepLogs& logs) {
  for (const auto& [key, value] : logs) {
    if (value.on_host()) {
      host_[key] += value.value();
      continue;
    }
    at::Tensor& sum = device_[key];
    const at::Tensor v = value.tensor().to(at::kDouble);
    sum = sum.defined() ? sum + v : v;
  }
}

std::map<std::string, double> StepLogSums::read() const {
  std::map<std::string, double> out = host_;
  read_tensors(device_, out);
  return out;
}

std::map<std::string, double> mean_over_ranks(dist::Communicator& comm, const std::map<std::string, double>& values) {
  if (comm.size() == 1) return values;
  at::Tensor packed = at::empty({static_cast<std::int64_t>(values.size())}, at::kDouble);
  std::int64_t i = 0;
  for (const auto& entry : values) packed[i++] = entry.second;
  comm.all_reduce(packed, dist::ReduceOp::kSum);
  std::map<std::string, double> means;
  i = 0;
  for (const auto& entry : values) means[entry.first] = packed[i++].item<double>() / comm.size();
  return means;
}

}  // namespace da::trainer
