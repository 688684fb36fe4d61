// The methods' parameters as `da_dist --help-config` lists them after the
// config keys: loss_weight (every method's) first, then each registered
// method's, from methods/describe.h (the defaults the code uses, with the
// source of each).
#pragma once

#include <string>
#include <vector>

namespace da::setup {

struct MethodParameterLine {
  std::string path;      // domain_adaptation.method{name: dann}.hidden_size
  std::string kind;      // int >= 1
  std::string fallback;  // 1024
  std::string doc;
  std::string source;
};

std::vector<MethodParameterLine> method_parameter_lines();

}  // namespace da::setup
