// A small synthetic two-domain data set (da_tiles synth: 16 training and 8
// validation tiles of 32x32 per domain) made once per test binary, and
// configurations for short training runs on it with the tiny U-Net.
#pragma once

#include <string>
#include <vector>

#include "config/loader.h"
#include "config/options.h"

namespace da::test {

// The directory holding source_train.h5, source_val.h5, target_train.h5, target_val.h5.
const std::string& synth_data_dir();

// A configuration for `run_dir` (run.output_dir/run.name) on the synthetic
// data: tiny encoder, batch 4 (4 steps per epoch), no workers, AdamW 1e-2,
// the given method YAML (flow style, e.g. "{name: dann, hidden_size: 8}"),
// then `overrides` (KEY=VALUE as --set takes them).
config::Config training_config(const std::string& run_dir, const std::string& method_yaml,
                               const std::vector<std::string>& overrides = {});

}  // namespace da::test
