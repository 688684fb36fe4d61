// Autocast for the forward pass on CUDA (bf16/fp16); nothing on the CPU.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/ScalarType.h>

#include <optional>

namespace da::trainer {

class AutocastScope {
 public:
  explicit AutocastScope(const std::optional<c10::ScalarType>& dtype) : active_(dtype.has_value()) {
    if (!active_) return;
    at::autocast::set_autocast_dtype(at::kCUDA, *dtype);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, false);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_;
};

}  // namespace da::trainer
