#include "trainer/loss_scaler.h"

#include <ATen/ATen.h>

namespace da::trainer {

LossScaler::LossScaler(double initial_scale, std::int64_t growth_interval)
    : scale_(initial_scale), growth_interval_(growth_interval) {}

bool LossScaler::unscale(const std::vector<at::Tensor>& params) const {
  bool finite = true;
  for (const at::Tensor& p : params) {
    if (!p.grad().defined()) continue;
    at::Tensor grad = p.mutable_grad();
    grad.div_(scale_);
    if (finite && !at::isfinite(grad).all().item<bool>()) finite = false;
  }
  return finite;
}

void LossScaler::update(bool step_was_finite) {
  if (!step_was_finite) {
    scale_ /= 2.0;
    good_steps_ = 0;
    return;
  }
  if (++good_steps_ >= growth_interval_) {
    scale_ *= 2.0;
    good_steps_ = 0;
  }
}

}  // namespace da::trainer
