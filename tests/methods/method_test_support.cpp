#include "method_test_support.h"

#include <utility>

#include "methods/registry.h"

namespace da::methods::test_support {

void set_params(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::int64_t k = 0;
  for (auto& p : module.parameters()) {
    p.copy_((0.1 * torch::cos(0.5 * torch::arange(p.numel(), torch::kDouble) + double(k++))).reshape(p.sizes()));
  }
}

Params params(std::map<std::string, std::string> values) {
  return Params(std::move(values), "domain_adaptation.method");
}

ModelInfo model_info(std::int64_t classes, std::vector<std::string> feature_layers, std::int64_t channels) {
  ModelInfo info;
  info.classes = classes;
  info.feature_layers = std::move(feature_layers);
  info.channels = [channels](const std::string&) { return channels; };
  return info;
}

ModelInfo model_info(std::int64_t classes, std::vector<std::string> feature_layers,
                     std::map<std::string, std::int64_t> channels) {
  ModelInfo info;
  info.classes = classes;
  info.feature_layers = std::move(feature_layers);
  info.channels = [channels = std::move(channels)](const std::string& layer) { return channels.at(layer); };
  return info;
}

std::unique_ptr<Method> create(const std::string& name, std::map<std::string, std::string> values,
                               const ModelInfo& model) {
  auto p = params(std::move(values));
  return Registry::instance().create(name, p, model);
}

std::string creation_error(const std::string& name, std::map<std::string, std::string> values, const ModelInfo& model) {
  try {
    create(name, std::move(values), model);
  } catch (const MethodError& e) {
    return e.what();
  }
  return "";
}

void expect_close(const test::Reference& reference, const at::Tensor& actual, const std::string& name, double tol) {
  test::expect_close(actual, reference.at(name), name, tol);
}

}  // namespace da::methods::test_support
