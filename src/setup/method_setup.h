// From the configuration to method instances: plug-ins loaded, each method of
// domain_adaptation.method created by name with its parameters validated,
// and its loss weight.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "config/options.h"
#include "methods/method.h"
#include "ranks/rank_sum.h"

namespace da::setup {

struct WeightedMethod {
  std::unique_ptr<methods::Method> method;
  double loss_weight = 1.0;  // constant factor of this method's loss in the total
};

// Loads config.plugins (their methods register themselves); a library that
// cannot be loaded is a config::ConfigError.
void load_plugins(const config::Config& config);

// Loads config.plugins, then creates the methods. `method:` may be one
// mapping or a list; a missing method means source_only. Every problem is a
// config::ConfigError naming the YAML path (list items as method[i]).
std::vector<WeightedMethod> create_methods(const config::Config& config, const methods::ModelInfo& model);

// Every method's auxiliary nets onto `device` (channels-last when asked),
// and the sums over the ranks the methods' batch-wide statistics go through.
void place_methods(std::vector<WeightedMethod>& methods, c10::Device device, bool channels_last,
                   const std::shared_ptr<ranks::RankSum>& sums);

// Whether any method trains on target labels (the target masks are loaded).
bool require_target_labels(const std::vector<WeightedMethod>& methods);

// AdaBN's request (Method::target_batch_norm_batches) of all methods
// together: the largest number of batches, 0 (all) when any asks for all;
// nullopt when none asks.
std::optional<std::int64_t> target_batch_norm_batches(const std::vector<WeightedMethod>& methods);

// The optimizer's parameter groups of the methods: what each declares
// (extra_parameter_groups), then any other parameter of its module, under
// the method's name at the optimizer's defaults.
std::vector<methods::ParamGroup> method_parameter_groups(std::vector<WeightedMethod>& methods);

}  // namespace da::setup
