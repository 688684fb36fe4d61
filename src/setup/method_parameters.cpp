#include "setup/method_parameters.h"

#include "methods/describe.h"

namespace da::setup {
namespace {

MethodParameterLine line(const std::string& prefix, const methods::ParamSpec& spec) {
  return {prefix + "." + spec.name, spec.kind, spec.fallback, spec.doc.doc, spec.doc.source};
}

}  // namespace

std::vector<MethodParameterLine> method_parameter_lines() {
  const std::string base = "domain_adaptation.method";
  std::vector<MethodParameterLine> lines;
  for (const auto& spec : methods::describe_common_params()) lines.push_back(line(base, spec));
  for (const auto& method : methods::describe_methods()) {
    const std::string prefix = base + "{name: " + method.method + "}";
    for (const auto& spec : method.params) lines.push_back(line(prefix, spec));
    if (method.params.empty() && method.error.empty()) {
      lines.push_back({prefix, "", "", "no parameters besides loss_weight", ""});
    }
    if (!method.error.empty()) {
      lines.push_back({prefix, "", "", "cannot be described without parameters: " + method.error, ""});
    }
  }
  return lines;
}

}  // namespace da::setup
