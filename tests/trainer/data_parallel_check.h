// Running da_dist at one and two ranks on the training fixture's data and
// comparing the results: shared by the CPU data-parallel tests
// (test_data_parallel.cpp) and the GPU ones (tests/cuda).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "support/process.h"

namespace da::test {

// Writes training_config(dir, method_yaml) to <dir>.yaml and returns that path.
std::string config_file(const std::string& dir, const std::string& method_yaml);

// da_dist on `config` with `sets` (--set) at `ranks` processes (mpirun
// beyond one; one intra-op thread each), optionally resuming.
ProcessResult run_da_dist(int ranks, const std::string& config, const std::vector<std::string>& sets,
                          const std::string& resume = "");

// The last epoch line's value of `key` in a run's metrics.jsonl (-1 if none).
double last_epoch_metric(const std::string& run_dir, const std::string& key);

// The floating-point model and method tensors of two checkpoints: each
// tensor's |a - b| / |a| by name ("model." names as in the state dict,
// "method.<method>.<name>"), and how many are the methods'.
struct CheckpointDifferences {
  std::map<std::string, double> relative;
  std::size_t method_tensors = 0;
  double largest() const;
};
CheckpointDifferences compare_checkpoints(const std::string& a_path, const std::string& b_path);

struct RankComparison {
  std::string lr = "0.05";                 // SGD's learning rate
  std::vector<std::string> one_rank_sets;  // extra --set of the one-rank run
  std::vector<std::string> two_rank_sets;  // and of the two-rank run
  double tolerance = 1e-5;                 // relative, per tensor as a whole
  double iou_tolerance = 1e-6;
  // The two-rank settings change the arithmetic (e.g. compressed gradients):
  // some tensor must then differ, or the setting did not take effect.
  bool expect_some_difference = false;
};

// Trains `method_yaml` for 2 epochs (SGD, BatchNorm frozen) on one rank with
// batch 4 and on two with batch 2 each, and expects the same model and
// method tensors and validation IoU within `how`'s tolerances; returns the
// number of method tensors compared.
std::size_t expect_two_ranks_equal_one_rank(const std::string& dir, const std::string& method_yaml,
                                            const RankComparison& how = {});

}  // namespace da::test
