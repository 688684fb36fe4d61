#include "support/python_reference.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "support/process.h"

namespace da::test {

Reference run_reference_script(const std::string& relative_script) {
  const auto r = run_process(python_path(), {source_path(relative_script)});
  if (r.exit_code != 0) throw std::runtime_error(relative_script + " failed: " + r.err);
  Reference out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    for (double v; fields >> v;) out[name].push_back(v);
  }
  return out;
}

at::Tensor det(std::vector<std::int64_t> shape, double offset, double scale) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return (scale * at::sin(0.37 * at::arange(n, at::kDouble) + offset)).reshape(shape);
}

void expect_close(const at::Tensor& actual, const std::vector<double>& expected, const std::string& name,
                  double tol) {
  const auto flat = actual.detach().to(at::kDouble).contiguous().reshape({-1});
  ASSERT_EQ(flat.numel(), static_cast<std::int64_t>(expected.size())) << name;
  const double* values = flat.data_ptr<double>();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(values[i], expected[i], tol * std::max(1.0, std::abs(expected[i]))) << name << "[" << i << "]";
  }
}

}  // namespace da::test
