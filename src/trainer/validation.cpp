#include "trainer/validation.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <vector>

#include "metrics/confusion_matrix.h"

namespace da::trainer {

bool is_own_tile(std::int64_t tile, std::int64_t last_kept, int rank, int world_size) {
  return tile % world_size == rank && tile > last_kept;
}

at::Tensor confusion_counts(models::SegmentationModelImpl& model, const ValidationSet& set, c10::Device device,
                            std::int64_t classes, std::int64_t ignore_index, metrics::LabelFreeSignals* signals) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  model.set_domain(set.domain);
  metrics::ConfusionMatrix matrix(classes);
  const bool labelled = set.loader.info().has_masks;
  const io::LoaderOptions& options = set.loader.options();
  set.loader.start_epoch(0);
  std::int64_t last_kept = -1;
  while (auto batch = set.loader.next()) {
    std::vector<std::int64_t> keep;
    std::vector<std::int64_t> tiles;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(batch->indices.size()); ++i) {
      const std::int64_t tile = batch->indices[static_cast<std::size_t>(i)];
      if (is_own_tile(tile, last_kept, options.rank, options.world_size)) {
        keep.push_back(i);
        tiles.push_back(tile);
        last_kept = tile;
      }
    }
    if (keep.empty()) continue;
    const at::Tensor rows = at::tensor(keep, at::kLong);
    const at::Tensor image = batch->image.index_select(0, rows).to(device);
    const at::Tensor logits = model.forward(image).logits;
    if (signals) signals->add(logits, tiles);
    if (labelled) matrix.add_logits(logits.cpu(), batch->mask.index_select(0, rows), ignore_index);
  }
  model.set_domain(models::Domain::kSource);
  model.train(was_training);
  return labelled ? matrix.counts() : at::Tensor();
}

}  // namespace da::trainer
