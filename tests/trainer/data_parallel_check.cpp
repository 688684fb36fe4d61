// Comparing da_dist runs at different rank counts (see data_parallel_check.h).
#include "trainer/data_parallel_check.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>

#include "setup/checkpoint.h"
#include "trainer/training_fixture.h"

namespace da::test {

std::string config_file(const std::string& dir, const std::string& method_yaml) {
  training_config(dir, method_yaml);  // writes <dir>.yaml
  return dir + ".yaml";
}

ProcessResult run_da_dist(int ranks, const std::string& config, const std::vector<std::string>& sets,
                                const std::string& resume) {
  std::vector<std::string> args{"--config", config};
  if (!resume.empty()) args.insert(args.end(), {"--resume", resume});
  for (const auto& s : sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  const std::string da_dist = binary_path("src/da_dist");
  if (ranks == 1) return run_process(da_dist, args, {"OMP_NUM_THREADS=1"}, 300);
  std::vector<std::string> mpi{"-np", std::to_string(ranks), "--oversubscribe", "-x", "OMP_NUM_THREADS=1", da_dist};
  mpi.insert(mpi.end(), args.begin(), args.end());
  return run_process("mpirun", mpi, mpirun_env(), 300);
}

double last_epoch_metric(const std::string& run_dir, const std::string& key) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  double value = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"kind\": \"epoch\"") == std::string::npos) continue;
    const auto at = line.find("\"" + key + "\": ");
    if (at != std::string::npos) value = std::stod(line.substr(at + key.size() + 4));
  }
  return value;
}

double CheckpointDifferences::largest() const {
  double largest = 0;
  for (const auto& [name, difference] : relative) largest = std::max(largest, difference);
  return largest;
}

CheckpointDifferences compare_checkpoints(const std::string& a_path, const std::string& b_path) {
  auto a = setup::read_checkpoint_model(a_path);
  auto b = setup::read_checkpoint_model(b_path);
  for (auto& [name, tensor] : setup::read_checkpoint_method_tensors(a_path)) a["method." + name] = tensor;
  for (auto& [name, tensor] : setup::read_checkpoint_method_tensors(b_path)) b["method." + name] = tensor;
  EXPECT_EQ(a.size(), b.size());
  CheckpointDifferences differences;
  for (const auto& [name, tensor] : a) {
    if (!b.count(name)) {
      ADD_FAILURE() << name << " missing in " << b_path;
      continue;
    }
    if (!tensor.is_floating_point()) continue;
    differences.method_tensors += name.rfind("method.", 0) == 0;
    // Relative to the tensor as a whole.
    const double scale = std::max(tensor.norm().item<double>(), 1e-12);
    differences.relative[name] = (tensor - b.at(name)).norm().item<double>() / scale;
  }
  return differences;
}

std::size_t expect_two_ranks_equal_one_rank(const std::string& dir, const std::string& method_yaml,
                                            const RankComparison& how) {
  const std::string config = config_file(dir + "/cfg", method_yaml);
  // BatchNorm in eval mode: per-rank batch statistics would otherwise differ from the global batch's.
  // SGD: Adam divides by sqrt(v), which turns rounding noise in near-zero
  // gradients into visible parameter differences.
  const std::vector<std::string> common{"run.max_epochs=2", "model.freeze_bn=true", "dist.check_every_n_steps=1",
                                        "optimizer.name=sgd", "optimizer.lr=" + how.lr};
  auto one = common;
  one.insert(one.end(), {"data.batch_size=4", "run.output_dir=" + dir + "/one"});
  one.insert(one.end(), how.one_rank_sets.begin(), how.one_rank_sets.end());
  auto two = common;
  two.insert(two.end(), {"data.batch_size=2", "run.output_dir=" + dir + "/two"});
  two.insert(two.end(), how.two_rank_sets.begin(), how.two_rank_sets.end());
  const auto r1 = run_da_dist(1, config, one);
  EXPECT_EQ(r1.exit_code, 0) << r1.err;
  const auto r2 = run_da_dist(2, config, two);
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
  if (r1.exit_code != 0 || r2.exit_code != 0) return 0;

  const CheckpointDifferences differences =
      compare_checkpoints(dir + "/one/run/checkpoints/last.pt", dir + "/two/run/checkpoints/last.pt");
  for (const auto& [name, difference] : differences.relative) EXPECT_LE(difference, how.tolerance) << name;
  const double largest_difference = differences.largest();
  const std::size_t method_tensors = differences.method_tensors;
  if (how.expect_some_difference) {
    EXPECT_GT(largest_difference, 0.0) << "the two-rank settings changed nothing";
  }
  for (const char* key :
       {"iou/source_val", "iou/target_val", "unsup/target_entropy", "unsup/class_prior_gap", "unsup/snd"}) {
    const double one_rank = last_epoch_metric(dir + "/one/run", key);
    EXPECT_GE(one_rank, 0) << key << " is not logged";  // all are >= 0
    EXPECT_NEAR(one_rank, last_epoch_metric(dir + "/two/run", key), how.iou_tolerance) << key;
  }
  return method_tensors;
}

}  // namespace da::test
