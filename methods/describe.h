// Every registered method's parameters as its code reads them, for
// `da_dist --help-config`, the README and the tests: each method is created
// with no parameters, and what Params recorded during creation (name, kind,
// default, doc, source) is the description. The defaults listed are thus the
// ones the code uses; nothing here repeats them.
#pragma once

#include <string>
#include <vector>

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

struct MethodParams {
  std::string method;
  std::vector<ParamSpec> params;
  // Non-empty when the method could not be created without parameters (a
  // plug-in with a required one): `params` then holds those read before.
  std::string error;
};

// The parameters every method takes (loss_weight, read by the framework).
std::vector<ParamSpec> describe_common_params();

// Every method registered now (built-ins and plug-ins loaded so far), by name.
std::vector<MethodParams> describe_methods();

// The model the descriptions are made against: 2 classes, no configured
// feature layers, every tap 1 channel. It only has to let every built-in
// method be created; no default depends on it except `layer`'s fallback
// (encoder when domain_adaptation.feature_layers is empty).
ModelInfo describe_model();

}  // namespace da::methods
