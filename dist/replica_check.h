// Keeping replicas in step, in the spirit of DDP's start-up checks: the ranks
// agree on a list of named descriptions (the resolved config, every
// parameter's name, shape and dtype), on small numbers during training
// (step, epoch, lambda), and start from rank 0's parameters and buffers.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"

namespace da::dist {

// `items` are (name, description) pairs, e.g. ("parameter encoder.conv1.weight",
// "float [64, 3, 7, 7]"). Throws DistError on every rank when the ranks' lists
// differ, naming the first differing item and the ranks whose description
// differs from rank 0's (two small all-gathers of 64-bit hashes).
void verify_replicas(Communicator& comm, const std::vector<std::pair<std::string, std::string>>& items);

// Throws DistError on every rank when some value is not identical on all
// ranks, naming it with its minimum and maximum (one all-reduce for each).
void check_agreement(Communicator& comm, const std::vector<std::pair<std::string, double>>& values);

// Copies rank `root`'s values into `tensors` on every rank (in place).
void broadcast_tensors(Communicator& comm, const std::vector<at::Tensor>& tensors, int root = 0);

}  // namespace da::dist
