#include "methods/log_value.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

namespace da::methods {

LogValue::LogValue(at::Tensor value) {
  if (!value.defined() || value.numel() != 1) {
    throw std::invalid_argument("LogValue: a logged tensor must hold one value, got " +
                                (value.defined() ? std::to_string(value.numel()) + " values" : std::string("none")));
  }
  tensor_ = value.detach().reshape({});
}

double LogValue::value() const { return on_host() ? host_ : tensor_.item<double>(); }

}  // namespace da::methods
