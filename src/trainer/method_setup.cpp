#include "trainer/method_setup.h"

#include "config/errors.h"
#include "config/suggest.h"
#include "methods/registry.h"

namespace da::trainer {
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
    out.loss_weight = params.number("loss_weight", 1.0, 0.0);
    out.method = registry.create(name, params, model);
    return out;
  } catch (const methods::MethodError& e) {
    throw config::ConfigError(e.what());
  }
}

}  // namespace

std::vector<WeightedMethod> create_methods(const config::Config& config, const methods::ModelInfo& model) {
  for (const auto& plugin : config.plugins) {
    try {
      methods::load_plugin(plugin);
    } catch (const methods::MethodError& e) {
      throw config::ConfigError(e.what());
    }
  }
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

}  // namespace da::trainer
