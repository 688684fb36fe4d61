#include "trainer/segmentation_loss.h"

#include <ATen/ATen.h>

namespace da::trainer {

at::Tensor SegmentationLoss::operator()(const at::Tensor& logits, const at::Tensor& masks) const {
  const auto log_p = at::log_softmax(logits, 1);
  auto loss = at::nll_loss2d(log_p, masks, {}, at::Reduction::Mean, ignore_index);
  if (dice_weight > 0) {
    const std::int64_t classes = logits.size(1);
    const auto valid = masks.ne(ignore_index).unsqueeze(1).to(logits.dtype());  // [B,1,H,W]
    const auto safe = masks.masked_fill(masks.eq(ignore_index), 0);
    const auto onehot = at::one_hot(safe, classes).permute({0, 3, 1, 2}).to(logits.dtype()) * valid;
    const auto p = log_p.exp() * valid;
    const auto intersection = (p * onehot).sum({0, 2, 3});
    const auto cardinality = p.sum({0, 2, 3}) + onehot.sum({0, 2, 3});
    const auto dice = (2 * intersection + 1) / (cardinality + 1);
    loss = loss + dice_weight * (1 - dice.mean());
  }
  return loss;
}

}  // namespace da::trainer
