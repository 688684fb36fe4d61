// Gradient reversal: identity forward, -lambda * grad backward.
#pragma once

#include <ATen/core/Tensor.h>

namespace da::methods {

at::Tensor gradient_reversal(const at::Tensor& x, double lambda);

}  // namespace da::methods
