// From the configuration to method instances: plug-ins loaded, each method of
// domain_adaptation.method created by name with its parameters validated,
// and its loss weight.
#pragma once

#include <memory>
#include <vector>

#include "config/options.h"
#include "methods/method.h"

namespace da::trainer {

struct WeightedMethod {
  std::unique_ptr<methods::Method> method;
  double loss_weight = 1.0;  // constant factor of this method's loss in the total
};

// Loads config.plugins, then creates the methods. `method:` may be one
// mapping or a list; a missing method means source_only. Every problem is a
// config::ConfigError naming the YAML path (list items as method[i]).
std::vector<WeightedMethod> create_methods(const config::Config& config, const methods::ModelInfo& model);

}  // namespace da::trainer
