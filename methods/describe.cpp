#include "methods/describe.h"

#include "methods/loss_weight.h"
#include "methods/registry.h"

namespace da::methods {

ModelInfo describe_model() {
  ModelInfo model;
  model.classes = 2;  // advent_adversarial needs 2 or more
  model.channels = [](const std::string&) -> std::int64_t { return 1; };
  return model;
}

std::vector<ParamSpec> describe_common_params() {
  Params params({}, "domain_adaptation.method");
  read_loss_weight(params);
  return params.specs();
}

std::vector<MethodParams> describe_methods() {
  const auto& registry = Registry::instance();
  const ModelInfo model = describe_model();
  std::vector<MethodParams> out;
  for (const auto& name : registry.names()) {
    Params params({}, "domain_adaptation.method");
    MethodParams described{name, {}, ""};
    try {
      registry.create(name, params, model);
    } catch (const std::exception& e) {
      described.error = e.what();
    }
    described.params = params.specs();
    out.push_back(std::move(described));
  }
  return out;
}

}  // namespace da::methods
