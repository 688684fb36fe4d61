// Dynamic loss scaling for fp16 training (the algorithm of
// torch.cuda.amp.GradScaler): the loss is multiplied by `scale` before
// backward so small fp16 gradients do not flush to zero; before the step the
// gradients are divided by it again. A step whose gradients hold Inf/NaN is
// skipped and the scale halved; after `growth_interval` good steps in a row
// the scale doubles.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace da::trainer {

class LossScaler {
 public:
  explicit LossScaler(double initial_scale = 65536.0, std::int64_t growth_interval = 2000);

  double scale() const { return scale_; }
  at::Tensor scale_loss(const at::Tensor& loss) const { return loss * scale_; }

  // Divides every defined gradient by the scale. Returns false when any of
  // them holds Inf or NaN: the optimizer step must then be skipped.
  bool unscale(const std::vector<at::Tensor>& params) const;

  // After each optimizer step (taken or skipped): halve on overflow, double
  // after growth_interval clean steps.
  void update(bool step_was_finite);

  std::int64_t good_steps() const { return good_steps_; }
  void restore(double scale, std::int64_t good_steps) {
    scale_ = scale;
    good_steps_ = good_steps;
  }

 private:
  double scale_;
  std::int64_t growth_interval_;
  std::int64_t good_steps_ = 0;
};

}  // namespace da::trainer
