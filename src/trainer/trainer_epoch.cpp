// Trainer: the training epoch and its steps (forward, backward with the
// reducer's all-reduces, optimizer step), and the compute-only limit of the
// same step for the benchmark.
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <stdexcept>
#include <string>

#include "dist/replica_check.h"
#include "trainer/autocast_scope.h"
#include "trainer/preemption.h"
#include "trainer/step_log_sums.h"
#include "trainer/trainer.h"

namespace da::trainer {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Peak resident set size of this process so far, MiB (Linux: ru_maxrss is in KiB).
double peak_rss_mib() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0.0;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace

bool Trainer::ends_window(std::int64_t epoch, std::int64_t step_in_epoch) const {
  return (step_in_epoch + 1) % config_.run.accumulate_grad_batches == 0 ||
         step_in_epoch + 1 >= length_->batches_in_epoch(epoch);
}

double Trainer::schedule_progress(std::int64_t epoch) const {
  const auto& da = config_.domain_adaptation;
  return methods::schedule_progress(da.step_mode, epoch, length_->epochs(), progress_.global_step,
                                    length_->total_batches(), da.warmup_epochs, length_->batches_per_epoch());
}

double Trainer::optimizer_step(std::int64_t epoch, std::int64_t step_in_epoch) {
  const auto wait_start = std::chrono::steady_clock::now();
  if (reducer_) reducer_->finalize();
  const double waited = seconds_since(wait_start);
  bool finite = true;
  if (scaler_) finite = scaler_->unscale(parameters());
  // Without clipping, clip_gradients would still compute the gradient norm (a
  // pass over every gradient) that nothing here uses.
  if (config_.optimizer.grad_clip_norm > 0) optimizer_->clip_gradients(config_.optimizer.grad_clip_norm);
  const std::int64_t k = config_.run.accumulate_grad_batches;
  optimizer_->apply_schedule(lr_schedule_, epoch * length_->optimizer_steps_per_epoch() + step_in_epoch / k);
  if (finite) optimizer_->optimizer().step();
  if (scaler_) scaler_->update(finite);
  return waited;
}

StepLosses Trainer::train_step(const io::PairedBatch& pair, std::int64_t epoch, std::int64_t step_in_epoch,
                               double lambda, bool da_active, StepTimeSplit& split) {
  io::PairedBatch batch = pair;  // tensors shared, not copied
  if (compute_.channels_last) {
    for (io::Batch* domain : {&batch.source, &batch.target}) {
      if (domain->image.defined()) domain->image = domain->image.contiguous(at::MemoryFormat::ChannelsLast);
    }
  }
  const std::int64_t k = config_.run.accumulate_grad_batches;
  const bool first_micro = step_in_epoch % k == 0;
  const bool last_micro = ends_window(epoch, step_in_epoch);
  if (first_micro) {
    const auto zero_start = std::chrono::steady_clock::now();
    for (auto& p : parameters()) p.mutable_grad() = at::Tensor();  // set_to_none: unused branches stay untouched
    end_phase();
    split.optimizer += seconds_since(zero_start);
  }
  const auto compute_start = std::chrono::steady_clock::now();
  if (reducer_) reducer_->prepare_for_backward(last_micro);
  StepLosses losses;
  {
    AutocastScope autocast(compute_.autocast);
    losses = step_->forward(batch, lambda, progress_.global_step, da_active);
  }
  at::Tensor loss = losses.total / static_cast<double>(k);
  if (scaler_) loss = scaler_->scale_loss(loss);
  loss.backward();
  end_phase();
  split.forward_backward += seconds_since(compute_start);
  if (last_micro) {
    const auto optimizer_start = std::chrono::steady_clock::now();
    const double waited = optimizer_step(epoch, step_in_epoch);
    end_phase();
    split.comm_wait += waited;
    split.optimizer += seconds_since(optimizer_start) - waited;
  }
  return losses;
}

void Trainer::end_phase() {
  if (wait_at_phases_) setup::wait_for_device(compute_.device);
}

StepTimeSplit Trainer::train_on_fixed_pair(const io::PairedBatch& batch, std::int64_t steps, bool wait_at_phases) {
  if (world_.size != 1) throw std::logic_error("train_on_fixed_pair: one process only (no communication)");
  const std::int64_t per_epoch = length_->batches_per_epoch();
  StepTimeSplit split;
  set_train_mode(true);
  // Onto the training device and normalised there once, as the loop does
  // with each pair.
  feed_->push(batch);
  io::PairedBatch on_device = feed_->take();
  data_.normalize(on_device);
  wait_at_phases_ = wait_at_phases;
  end_phase();  // the copy and normalisation are no step's phase
  for (std::int64_t i = 0; i < steps; ++i) {
    const std::int64_t epoch = (i / per_epoch) % length_->epochs();
    const bool da_active = epoch >= config_.domain_adaptation.warmup_epochs;
    const double lambda = da_active ? lambda_schedule_.at(schedule_progress(epoch)) : 0.0;
    train_step(on_device, epoch, i % per_epoch, lambda, da_active, split);
    progress_.global_step = (progress_.global_step + 1) % length_->total_batches();
  }
  wait_at_phases_ = false;
  return split;
}

bool Trainer::train_epoch(std::int64_t epoch, callbacks::Metrics& epoch_means) {
  const std::int64_t steps = length_->batches_in_epoch(epoch);
  const bool da_active = epoch >= config_.domain_adaptation.warmup_epochs;
  StepLogSums sums;
  std::map<std::string, double> logged;  // the last log step's values, for the progress line
  std::int64_t counted = 0;
  StepTimeSplit split;
  double control_wait = 0;  // the per-step stop-flag all-reduce
  set_train_mode(true);
  const auto epoch_start = std::chrono::steady_clock::now();
  if (progress_line_) progress_line_->start_epoch();
  // Pairs are taken from the loader one step ahead: the next pair's copy to
  // the device (a side stream on CUDA) runs while this step computes. Each
  // keeps the loader position after it, which is what a checkpoint after its
  // step must hold. None is taken past the epoch's length (limit_train_batches,
  // max_steps).
  std::deque<io::PairedPosition> fed;
  const auto feed_next = [&] {
    if (data_.train->position().step >= steps) return;
    auto pair = data_.train->next();
    if (!pair) return;
    feed_->push(std::move(*pair));
    fed.push_back(data_.train->position());
  };
  feed_next();
  for (;;) {
    const auto data_start = std::chrono::steady_clock::now();
    if (fed.empty()) break;
    io::PairedBatch batch = feed_->take();
    const io::PairedPosition position = fed.front();
    fed.pop_front();
    feed_next();
    data_.normalize(batch);
    split.data_wait += seconds_since(data_start);
    const std::int64_t step_in_epoch = position.step - 1;
    const double lambda = da_active ? lambda_schedule_.at(schedule_progress(epoch)) : 0.0;
    const bool last_micro = ends_window(epoch, step_in_epoch);
    StepLosses losses = train_step(batch, epoch, step_in_epoch, lambda, da_active, split);
    ++progress_.global_step;
    progress_.position = position;

    losses.logs["lr"] = optimizer_->lr(0);
    sums.add(losses.logs);  // on the device: no wait
    ++counted;
    const bool log_step = progress_.global_step % config_.run.log_every_n_steps == 0;
    if (log_step) {
      // The one read from the device in a log interval.
      logged = mean_over_ranks(control_, read_logs(losses.logs));
      if (metrics_log_) metrics_log_->write("step", epoch, progress_.global_step, logged);
    }
    if (progress_line_) {
      log::ProgressState state;
      state.epoch = epoch;
      state.epochs = length_->epochs();
      state.step = step_in_epoch + 1;
      state.steps = steps;
      state.logs = logged;
      progress_line_->step(state, static_cast<double>(config_.data.batch_size * world_.size),
                           length_->total_batches() - progress_.global_step, log_step);
    }
    if (world_.size > 1 && progress_.global_step % config_.dist.check_every_n_steps == 0) {
      dist::check_agreement(control_, {{"global step", static_cast<double>(progress_.global_step)},
                                       {"epoch", static_cast<double>(epoch)},
                                       {"lambda", lambda}});
    }
    // A preemption signal may reach the ranks at different steps: agree on
    // the max (on the host: over MPI when the model is on a GPU).
    at::Tensor stop = at::full({1}, preemption_requested() ? 1 : 0, at::kInt);
    const auto stop_start = std::chrono::steady_clock::now();
    control_.all_reduce(stop, dist::ReduceOp::kMax);
    control_wait += seconds_since(stop_start);
    if (stop.item<int>() != 0 && !last_micro) continue;  // finish the accumulation window first
    if (stop.item<int>() != 0) {
      for (; !fed.empty(); fed.pop_front()) feed_->take();  // the pair fed ahead is not trained
      return false;
    }
  }
  if (progress_line_) progress_line_->end_epoch();
  // Every rank ran the same number of steps, so the mean of the ranks' means
  // is the mean over the global batches.
  for (const auto& [key, value] : mean_over_ranks(control_, sums.read())) {
    epoch_means["train/" + key] = value / static_cast<double>(counted);
  }
  add_epoch_times(epoch_means, counted, seconds_since(epoch_start), split, control_wait);
  return true;
}

void Trainer::add_epoch_times(callbacks::Metrics& metrics, std::int64_t steps, double seconds,
                              const StepTimeSplit& split, double control_wait) {
  // Throughput of the epoch (loading included): source images of all ranks
  // per second, and the share of the time spent waiting for gradient
  // all-reduces after backward (communication not hidden behind backward).
  const double steps_done = static_cast<double>(std::max<std::int64_t>(steps, 1));
  metrics["time/step_s"] = seconds / steps_done;
  metrics["time/images_per_s"] =
      static_cast<double>(steps * config_.data.batch_size * world_.size) / std::max(seconds, 1e-9);
  metrics["time/comm_wait_share"] = split.comm_wait / std::max(seconds, 1e-9);
  // Per-step means of where the time went. Only on the CPU, where work is
  // done when the call returns: on CUDA, host timers would measure kernel
  // launches, and syncing to measure would slow training down.
  if (compute_.device.is_cpu()) {
    metrics["time/data_wait_s"] = split.data_wait / steps_done;
    metrics["time/forward_backward_s"] = split.forward_backward / steps_done;
    metrics["time/comm_wait_s"] = (split.comm_wait + control_wait) / steps_done;
    metrics["time/optimizer_s"] = split.optimizer / steps_done;
  }
  // Peak resident memory of the most demanding rank.
  at::Tensor peak = at::full({1}, peak_rss_mib(), at::kDouble);
  control_.all_reduce(peak, dist::ReduceOp::kMax);
  metrics["time/peak_rss_mb"] = peak.item<double>();
  if (compute_.device.is_cuda()) {  // of the most demanding rank's GPU
    at::Tensor gpu_peak = at::full({1}, setup::peak_device_memory_mib(compute_.device), at::kDouble);
    control_.all_reduce(gpu_peak, dist::ReduceOp::kMax);
    metrics["time/gpu_peak_mb"] = gpu_peak.item<double>();
  }
}

}  // namespace da::trainer
