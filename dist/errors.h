// Errors of the distributed runtime (failed collectives, bad launch setup).
#pragma once

#include <stdexcept>

namespace da::dist {

class DistError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace da::dist
