// Trainer: validation after an epoch, and AdaBN's re-estimation of the
// target BatchNorm statistics before it.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <vector>

#include "metrics/confusion_matrix.h"
#include "metrics/label_free_signals.h"
#include "models/batch_norm_statistics.h"
#include "trainer/trainer.h"
#include "trainer/validation.h"

namespace da::trainer {

callbacks::Metrics Trainer::validate() {
  callbacks::Metrics metrics;
  at::Tensor source_labels;  // the source validation labels' class counts, for the prior gap
  auto run = [&](io::TileLoader* loader, models::Domain domain, const std::string& split,
                 metrics::LabelFreeSignals* signals) {
    at::Tensor counts = confusion_counts(*model_, ValidationSet{*loader, domain}, compute_.device, classes_,
                                         config_.loss.ignore_index, signals);
    if (!counts.defined()) return;  // unlabelled: only the label-free signals
    comm_.all_reduce(counts);
    if (domain == models::Domain::kSource) source_labels = counts.sum(1);
    for (const auto& [key, value] : metrics::score_logs(metrics::compute_scores(counts), split, class_names_)) {
      metrics[key] = value;
    }
  };
  if (data_.source_val) run(data_.source_val.get(), models::Domain::kSource, "source_val", nullptr);
  if (data_.target_val) {
    const io::ArchiveInfo& info = data_.target_val->info();
    metrics::LabelFreeSignals signals(classes_, data_.target_val->num_tiles(), info.height * info.width);
    run(data_.target_val.get(), models::Domain::kTarget, "target_val", &signals);
    comm_.all_reduce(signals.sums());
    for (const auto& [key, value] : signals.scores(source_labels)) metrics[key] = value;
  }
  return metrics;
}

callbacks::Metrics Trainer::reestimate_target_batch_norm() {
  if (!data_.target_bn) return {};
  const auto start = std::chrono::steady_clock::now();
  io::TileLoader& loader = *data_.target_bn;
  const std::int64_t limit = data_.target_bn_batches;
  const int rank = loader.options().rank;
  const int world_size = loader.options().world_size;
  // This rank's own tiles once (the padding that wraps to the start left out,
  // as in validation), so the ranks' shards add up to the target set exactly.
  auto for_each_batch = [&](const std::function<void(const at::Tensor&)>& visit) {
    loader.start_epoch(0);
    std::int64_t last_kept = -1;
    std::int64_t batches = 0;
    while (limit == 0 || batches < limit) {
      auto batch = loader.next();
      if (!batch) break;
      ++batches;
      std::vector<std::int64_t> keep;
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(batch->indices.size()); ++i) {
        const std::int64_t tile = batch->indices[static_cast<std::size_t>(i)];
        if (is_own_tile(tile, last_kept, rank, world_size)) {
          keep.push_back(i);
          last_kept = tile;
        }
      }
      if (keep.empty()) continue;
      visit(batch->image.index_select(0, at::tensor(keep, at::kLong)).to(compute_.device));
    }
  };
  const io::ArchiveInfo& info = loader.info();
  const at::Tensor probe =
      at::zeros({1, info.channels(), info.height, info.width}, at::TensorOptions().device(compute_.device));
  const models::BatchNormReestimate done =
      models::reestimate_batch_norm(*model_, models::Domain::kTarget, for_each_batch, probe, rank_sum_.get());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("adabn: target statistics of {} BatchNorm layers re-estimated on {} target tiles in {:.1f} s",
               done.layers, static_cast<std::int64_t>(done.tiles), seconds);
  return {{"adabn/layers", static_cast<double>(done.layers)}, {"adabn/tiles", done.tiles}};
}

}  // namespace da::trainer
