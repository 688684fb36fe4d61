// The fixture of the GPU tests (ctest label cuda). Every test skips, saying
// why, where no CUDA device is visible: on CPU machines, and for the rest of
// the suite, which runs with CUDA_VISIBLE_DEVICES empty so that it means the
// same on a GPU machine. tools/gpu/ runs these on a borrowed GPU.
#pragma once

#include <gtest/gtest.h>

#include <c10/core/TensorOptions.h>
#include <torch/cuda.h>

namespace da::test {

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) {
      GTEST_SKIP() << "no CUDA device visible (torch::cuda::device_count() is 0, or CUDA_VISIBLE_DEVICES hides "
                      "them): the cuda tests need a GPU";
    }
  }
  static c10::TensorOptions on_gpu(c10::ScalarType dtype) {
    return c10::TensorOptions().dtype(dtype).device(c10::kCUDA, 0);
  }
};

}  // namespace da::test
