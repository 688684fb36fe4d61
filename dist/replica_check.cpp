#include "dist/replica_check.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <sstream>

#include "dist/errors.h"

namespace da::dist {
namespace {

// FNV-1a, 64 bit: a stable hash of a description on every rank.
std::int64_t fnv1a(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<std::int64_t>(h);
}

}  // namespace

void verify_replicas(Communicator& comm, const std::vector<std::pair<std::string, std::string>>& items) {
  if (comm.size() == 1) return;
  const at::Tensor counts = comm.all_gather(at::tensor({static_cast<std::int64_t>(items.size())}, at::kLong));
  const std::int64_t longest = counts.max().item<std::int64_t>();
  // Hashes padded with 0 (never an FNV-1a value of a real item in practice) to the longest list.
  at::Tensor hashes = at::zeros({longest + 1}, at::kLong);
  hashes[0] = static_cast<std::int64_t>(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    hashes[static_cast<std::int64_t>(i) + 1] = fnv1a(items[i].first + "=" + items[i].second);
  }
  const at::Tensor all = comm.all_gather(hashes);  // [size, longest + 1]
  for (std::int64_t i = 1; i <= longest; ++i) {
    std::vector<int> differing;
    for (int r = 1; r < comm.size(); ++r) {
      if (all[r][i].item<std::int64_t>() != all[0][i].item<std::int64_t>()) differing.push_back(r);
    }
    if (differing.empty()) continue;
    const auto index = static_cast<std::size_t>(i - 1);
    std::ostringstream msg;
    msg << "replicas differ: ";
    if (index < items.size()) {
      msg << items[index].first << " (item " << index << ")";
    } else {
      msg << "item " << index << " exists on some ranks only";
    }
    msg << " differs between rank 0 and rank(s)";
    for (const int r : differing) msg << " " << r;
    if (index < items.size()) msg << "; on rank " << comm.rank() << " it is " << items[index].second;
    msg << " (item counts per rank:";
    for (int r = 0; r < comm.size(); ++r) msg << " " << counts[r][0].item<std::int64_t>();
    msg << ")";
    throw DistError(msg.str());
  }
}

void check_agreement(Communicator& comm, const std::vector<std::pair<std::string, double>>& values) {
  if (comm.size() == 1) return;
  at::Tensor low = at::empty({static_cast<std::int64_t>(values.size())}, at::kDouble);
  for (std::size_t i = 0; i < values.size(); ++i) low[static_cast<std::int64_t>(i)] = values[i].second;
  at::Tensor high = low.clone();
  comm.all_reduce(low, ReduceOp::kMin);
  comm.all_reduce(high, ReduceOp::kMax);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double lo = low[static_cast<std::int64_t>(i)].item<double>();
    const double hi = high[static_cast<std::int64_t>(i)].item<double>();
    if (lo != hi) {
      std::ostringstream msg;
      msg.precision(17);
      msg << "ranks disagree on " << values[i].first << ": min " << lo << ", max " << hi << " (rank "
          << comm.rank() << " has " << values[i].second << ")";
      throw DistError(msg.str());
    }
  }
}

void broadcast_tensors(Communicator& comm, const std::vector<at::Tensor>& tensors, int root) {
  if (comm.size() == 1) return;
  for (at::Tensor tensor : tensors) comm.broadcast(tensor, root);
}

}  // namespace da::dist
