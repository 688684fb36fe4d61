// A logged number: a host double, or a scalar tensor that stays where it was
// computed until someone reads it.
//
// Why: on a GPU, `loss.item()` makes the host wait for every kernel queued so
// far, so a method that logs with `.item()` stalls each training step. A
// method logs `out.loss.detach()` instead; the trainer sums these tensors on
// the device and reads them once per log interval (step_log_sums.h), as
// Lightning's `self.log` does. Host values (a lambda, a count) stay doubles.
//
// Reading a tensor value as a double (the implicit conversion, used by tests
// and by code off the training path) waits for the device like `.item()`.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

namespace da::methods {

class LogValue {
 public:
  LogValue() = default;  // 0.0 on the host (std::map::operator[])
  LogValue(double value) : host_(value) {}  // NOLINT: implicit, so {{"key", 0.5}} works
  // `value` must hold one element; it is detached from the graph.
  LogValue(at::Tensor value);  // NOLINT: implicit, so {{"key", loss.detach()}} works

  bool on_host() const { return !tensor_.defined(); }
  // The tensor (0-dim, detached); undefined for a host value.
  const at::Tensor& tensor() const { return tensor_; }
  // The value as a double; waits for the device for a tensor value.
  double value() const;
  operator double() const { return value(); }  // NOLINT: reads like the double it replaced

 private:
  double host_ = 0.0;
  at::Tensor tensor_;
};

}  // namespace da::methods
