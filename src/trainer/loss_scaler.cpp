#include "trainer/loss_scaler.h"

#include <ATen/ATen.h>

namespace da::trainer {

LossScaler::LossScaler(double initial_scale, std::int64_t growth_interval)
    : scale_(initial_scale), growth_interval_(growth_interval) {}

bool LossScaler::unscale(const std::vector<at::Tensor>& params) const {
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.mutable_grad());
  }
  if (grads.empty()) return true;
  // One fused pass on the gradients' device (PyTorch's GradScaler kernel)
  // and one read of the flag, instead of a host read per parameter. The
  // scale is a power of two, so multiplying by its inverse is exact.
  const auto options = grads.front().options().dtype(at::kFloat);
  at::Tensor found_inf = at::zeros({1}, options);
  const at::Tensor inv_scale = at::full({1}, 1.0 / scale_, options);
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale);
  return found_inf.item<float>() == 0.0F;
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
