#include "setup/method_setup.h"

#include <algorithm>
#include <set>

#include "config/errors.h"
#include "config/suggest.h"
#include "methods/loss_weight.h"
#include "methods/registry.h"
#include "setup/device_setup.h"

namespace da::setup {
namespace {

// A method's YAML mapping as the name -> text map methods::Params reads;
// lists become comma-joined items.
std::map<std::string, std::string> scalar_params(const YAML::Node& node, const std::string& path) {
  std::map<std::string, std::string> values;
  for (const auto& item : node) {
    const std::string key = item.first.Scalar();
    if (key == "name") continue;
    const YAML::Node& value = item.second;
    if (value.IsScalar()) {
      values[key] = value.Scalar();
    } else if (value.IsSequence()) {
      std::string joined;
      for (const auto& v : value) joined += (joined.empty() ? "" : ",") + v.Scalar();
      values[key] = joined;
    } else {
      throw config::ConfigError(path + "." + key + ": expected a value or a list, got a mapping");
    }
  }
  return values;
}

WeightedMethod create_one(const YAML::Node& node, const std::string& path, const methods::ModelInfo& model) {
  if (!node.IsMap()) throw config::ConfigError(path + ": expected a mapping with 'name'");
  const YAML::Node name_node = node["name"];
  if (!name_node || !name_node.IsScalar()) throw config::ConfigError(path + ".name: missing (the method's name)");
  const std::string name = name_node.Scalar();
  auto& registry = methods::Registry::instance();
  if (!registry.contains(name)) {
    const auto names = registry.names();
    std::string msg = path + ".name: unknown method '" + name + "', valid methods are " + config::quoted_list(names);
    const std::string near = config::closest_match(name, names);
    if (!near.empty()) msg += " (did you mean '" + near + "'?)";
    throw config::ConfigError(msg);
  }
  try {
    methods::Params params(scalar_params(node, path), path);
    WeightedMethod out;
    out.loss_weight = methods::read_loss_weight(params);
    out.method = registry.create(name, params, model);
    return out;
  } catch (const methods::MethodError& e) {
    throw config::ConfigError(e.what());
  }
}

}  // namespace

void load_plugins(const config::Config& config) {
  for (const auto& plugin : config.plugins) {
    try {
      methods::load_plugin(plugin);
    } catch (const methods::MethodError& e) {
      throw config::ConfigError(e.what());
    }
  }
}

std::vector<WeightedMethod> create_methods(const config::Config& config, const methods::ModelInfo& model) {
  load_plugins(config);
  const YAML::Node& spec = config.domain_adaptation.method;
  const std::string path = "domain_adaptation.method";
  std::vector<WeightedMethod> out;
  if (!spec || spec.IsNull()) {
    YAML::Node source_only;
    source_only["name"] = "source_only";
    out.push_back(create_one(source_only, path, model));
  } else if (spec.IsSequence()) {
    for (std::size_t i = 0; i < spec.size(); ++i) {
      out.push_back(create_one(spec[i], path + "[" + std::to_string(i) + "]", model));
    }
  } else {
    out.push_back(create_one(spec, path, model));
  }
  return out;
}

void place_methods(std::vector<WeightedMethod>& methods, c10::Device device, bool channels_last,
                   const std::shared_ptr<ranks::RankSum>& sums) {
  for (auto& wm : methods) {
    wm.method->attach_collectives(sums);
    if (auto module = wm.method->module()) {
      module->to(device);
      if (channels_last) to_channels_last(*module);
    }
  }
}

bool require_target_labels(const std::vector<WeightedMethod>& methods) {
  return std::any_of(methods.begin(), methods.end(),
                     [](const WeightedMethod& wm) { return wm.method->requires_target_labels(); });
}

std::optional<std::int64_t> target_batch_norm_batches(const std::vector<WeightedMethod>& methods) {
  std::optional<std::int64_t> batches;
  for (const auto& wm : methods) {
    if (const auto b = wm.method->target_batch_norm_batches()) {
      batches = !batches ? *b : (*b == 0 || *batches == 0 ? 0 : std::max(*batches, *b));
    }
  }
  return batches;
}

std::vector<methods::ParamGroup> method_parameter_groups(std::vector<WeightedMethod>& methods) {
  std::vector<methods::ParamGroup> groups;
  for (auto& wm : methods) {
    std::set<const void*> grouped;
    for (auto& group : wm.method->extra_parameter_groups()) {
      for (const auto& p : group.params) grouped.insert(p.unsafeGetTensorImpl());
      groups.push_back(std::move(group));
    }
    if (auto module = wm.method->module()) {
      methods::ParamGroup rest{wm.method->name(), {}, std::nullopt, std::nullopt};
      for (const auto& p : module->parameters()) {
        if (!grouped.count(p.unsafeGetTensorImpl())) rest.params.push_back(p);
      }
      if (!rest.params.empty()) groups.push_back(std::move(rest));
    }
  }
  return groups;
}

}  // namespace da::setup
