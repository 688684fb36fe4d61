// Helpers shared by the method tests (test_methods.cpp, test_cdan.cpp,
// test_mcc_bsp.cpp, test_mmd_coral.cpp, test_advent.cpp): the generators'
// deterministic weights, model descriptions and method creation.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "methods/method.h"
#include "methods/params.h"
#include "support/python_reference.h"

namespace da::methods::test_support {

// Deterministic weights: parameter k (in module.parameters() order) becomes
// 0.1 * cos(0.5 * arange(numel) + k), like set_params() in
// tests/methods/reference_common.py.
void set_params(torch::nn::Module& module);

// Method parameters under the YAML path "domain_adaptation.method".
Params params(std::map<std::string, std::string> values);

// A model with `classes` classes and these feature layers whose taps all have
// `channels` channels.
ModelInfo model_info(std::int64_t classes, std::vector<std::string> feature_layers, std::int64_t channels);
// The same with channels per layer; asking for another layer throws
// std::out_of_range.
ModelInfo model_info(std::int64_t classes, std::vector<std::string> feature_layers,
                     std::map<std::string, std::int64_t> channels);

// Creates the registered method `name` with params(values).
std::unique_ptr<Method> create(const std::string& name, std::map<std::string, std::string> values,
                               const ModelInfo& model);

// The MethodError message of create(), or "" when creation succeeds.
std::string creation_error(const std::string& name, std::map<std::string, std::string> values, const ModelInfo& model);

// test::expect_close(actual, reference.at(name), name, tol).
void expect_close(const test::Reference& reference, const at::Tensor& actual, const std::string& name,
                  double tol = 1e-10);

}  // namespace da::methods::test_support
