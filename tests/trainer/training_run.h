// Shared by the end-to-end training tests (test_training_*.cpp): a run of
// the Trainer in this process and its outcome (exit status, global step,
// model and method tensors by name, the last epoch's metrics), a
// bit-for-bit comparison of two runs, DANN's method YAML, and the
// TrainingTest fixture's temporary directory.
#pragma once

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>

#include "callbacks/callback.h"
#include "config/options.h"

namespace da::test {

struct RunResult {
  int status;
  std::int64_t global_step = 0;
  std::map<std::string, at::Tensor> state;  // model and method parameters by name
  callbacks::Metrics metrics;
};

// Trains `config` (resuming from `resume`, a checkpoint or "auto", when given).
RunResult train(const config::Config& config, const std::string& resume = "");

// Expects every model and method tensor of the two runs to be equal.
void expect_identical(const RunResult& a, const RunResult& b);

inline const std::string kDann = "{name: dann, hidden_size: 8}";

class TrainingTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::string dir_;
};

}  // namespace da::test
