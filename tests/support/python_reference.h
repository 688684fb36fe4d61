// Reference values computed by a Python generator script with Debian's
// python3-torch, and the closed-form inputs both sides build from.
//
// A generator prints one line per quantity, `name v1 v2 ...`; inputs come
// from det() (no RNG), so C++ and Python build identical tensors.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace da::test {

using Reference = std::map<std::string, std::vector<double>>;

// Runs /usr/bin/python3 on the script (path relative to the source tree) and
// parses its output; throws with the script's stderr if it fails.
Reference run_reference_script(const std::string& relative_script);

// scale * sin(0.37 * arange(n) + offset) reshaped to `shape`, float64.
at::Tensor det(std::vector<std::int64_t> shape, double offset, double scale = 1.0);

// Element-wise |actual - expected| <= tol * max(1, |expected|).
void expect_close(const at::Tensor& actual, const std::vector<double>& expected, const std::string& name,
                  double tol = 1e-10);

}  // namespace da::test
