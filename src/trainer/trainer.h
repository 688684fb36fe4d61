// The training loop: paired source/target batches, the model and the
// methods' auxiliary nets, the optimizer and schedules, gradient
// synchronisation across ranks, validation, callbacks and checkpoints.
//
// One step (TrainingStep computes the losses):
//   zero grads (first micro-batch) -> forward -> backward, with the gradient
//   reducer's hooks all-reducing buckets while backward runs
//   -> reducer.finalize() (wait, average) -> clip -> LR schedule -> step.
// Every rank holds the same global step (batches trained), from which the
// batch-mode lambda schedule and the LR schedule are computed; every
// dist.check_every_n_steps steps the ranks verify they agree.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "callbacks/callback.h"
#include "config/options.h"
#include "dist/bootstrap.h"
#include "dist/communicator.h"
#include "dist/grad_reducer.h"
#include "io/paired_loader.h"
#include "log/metrics_log.h"
#include "log/progress.h"
#include "methods/lambda_schedule.h"
#include "models/segmentation_model.h"
#include "ranks/rank_sum.h"
#include "setup/checkpoint.h"
#include "setup/device_setup.h"
#include "setup/method_setup.h"
#include "trainer/device_feed.h"
#include "trainer/loss_scaler.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizer_setup.h"
#include "trainer/training_data.h"
#include "trainer/training_length.h"
#include "trainer/training_step.h"

namespace da::trainer {

// Where training steps spent their time, seconds summed over the steps. Host
// timers: on CUDA, where a step's work is queued, they time the queueing
// unless train_on_fixed_pair is asked to wait for the device at each phase.
struct StepTimeSplit {
  double data_wait = 0;         // waiting for the loader's next pair (and its copy to the device)
  double forward_backward = 0;  // losses and backward, with the reducer's hooks all-reducing buckets
  double comm_wait = 0;         // gradient all-reduces still running when backward ended
  double optimizer = 0;         // zeroing the gradients, unscale, clip, LR schedule, optimizer step
};

class Trainer {
 public:
  // `config_yaml`: the resolved configuration (stored in checkpoints and
  // compared across ranks). `run_dir` exists on rank 0's filesystem.
  // `comm` carries the model's tensors (gradients, BatchNorm and method
  // statistics); `control`, when given, the host-side values of each step
  // (the stop flag, logged means, agreement checks), so that on a GPU these
  // go over MPI and never wait for the NCCL stream. Without it, `comm`.
  Trainer(const config::Config& config, std::string config_yaml, dist::Communicator& comm,
          const dist::WorldInfo& world, std::string run_dir, dist::Communicator* control = nullptr);
  ~Trainer();

  // Trains for run.max_epochs, run.max_steps and run.limit_train_batches
  // (training_length.h), or to an early stop. `resume`: a checkpoint
  // path, "auto" (<run_dir>/checkpoints/last.pt when it exists) or empty.
  // Returns 0, or kExitResumable after a preemption request (last.pt written).
  int fit(const std::string& resume = "");

  models::SegmentationModel& model() { return model_; }
  std::vector<setup::WeightedMethod>& methods() { return methods_; }
  // Metrics of the last finished epoch (train means and validation scores).
  const callbacks::Metrics& last_epoch_metrics() const { return last_metrics_; }
  std::int64_t global_step() const { return progress_.global_step; }
  // Every parameter the optimizer updates, model first.
  std::vector<at::Tensor> parameters() const;

  // The compute-only limit (tools/bench_train/step_bench.cpp): `steps`
  // training steps of one fixed pair as the training loader delivers it
  // (normalised, or stored pixels: setup::training_loader_normalizes; moved to the
  // model's device and normalised there once) through the same step as fit(), with
  // no loader; one process only, so no communication. Trains the model;
  // returns the time split (data_wait and comm_wait stay 0). On CUDA the
  // steps are queued, not finished: a caller timing them synchronises (as a
  // training step itself never does). `wait_at_phases` waits for the device
  // at each phase's end, so that the split times the GPU's work (at the cost
  // of the overlap between phases: time throughput without it).
  StepTimeSplit train_on_fixed_pair(const io::PairedBatch& batch, std::int64_t steps, bool wait_at_phases = false);

 private:
  // Trains until the epoch ends (true) or a preemption request (false).
  bool train_epoch(std::int64_t epoch, callbacks::Metrics& epoch_means);
  // One step of `batch`: zero the gradients (first micro-batch), forward,
  // backward and, with the last micro-batch, the optimizer step; adds its
  // time to `split`.
  StepLosses train_step(const io::PairedBatch& batch, std::int64_t epoch, std::int64_t step_in_epoch, double lambda,
                        bool da_active, StepTimeSplit& split);
  // Finalises the gradients and steps; returns the seconds spent waiting for
  // the all-reduces.
  double optimizer_step(std::int64_t epoch, std::int64_t step_in_epoch);
  // Whether the batch `step_in_epoch` of `epoch` ends an accumulation window.
  bool ends_window(std::int64_t epoch, std::int64_t step_in_epoch) const;
  // The lambda schedule's progress (0..1) at this step.
  double schedule_progress(std::int64_t epoch) const;
  // time/* metrics of an epoch of `steps` steps that took `seconds`.
  void add_epoch_times(callbacks::Metrics& metrics, std::int64_t steps, double seconds, const StepTimeSplit& split,
                       double control_wait);
  // The device's queued work finished, where train_on_fixed_pair was asked
  // to time phases on the device.
  void end_phase();
  callbacks::Metrics validate();
  // AdaBN (a method's target_batch_norm_batches()): re-estimates the target's
  // BatchNorm running statistics on the target training tiles of all ranks;
  // returns adabn/* metrics (nothing when no method asks for it).
  callbacks::Metrics reestimate_target_batch_norm();
  void resume_from(const std::string& path);
  void warm_start(const std::string& path);
  void start_replicas();
  void save(const std::string& path);
  void set_train_mode(bool train);
  setup::CheckpointParts checkpoint_parts();
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;

  config::Config config_;
  std::string config_yaml_;
  dist::Communicator& comm_;
  dist::Communicator& control_;
  dist::WorldInfo world_;
  std::string run_dir_;
  setup::ComputeSetup compute_;
  bool wait_at_phases_ = false;  // train_on_fixed_pair's timing mode, while it runs

  std::shared_ptr<ranks::RankSum> rank_sum_;  // over comm_: SyncBN and the methods' statistics
  TrainingData data_;
  std::optional<TrainingLength> length_;  // set once the training loader exists
  std::unique_ptr<DeviceFeed> feed_;      // training pairs to the device, one step ahead
  std::vector<std::string> class_names_;
  std::int64_t classes_ = 0;

  models::SegmentationModel model_{nullptr};
  std::vector<setup::WeightedMethod> methods_;
  std::unique_ptr<TrainingStep> step_;
  std::unique_ptr<OptimizerSetup> optimizer_;
  LrSchedule lr_schedule_;
  methods::LambdaSchedule lambda_schedule_;
  std::unique_ptr<LossScaler> scaler_;
  std::unique_ptr<dist::Communicator> grad_comm_;  // the reducer's (comm_.duplicate()), before it
  std::unique_ptr<dist::GradReducer> reducer_;
  std::vector<std::unique_ptr<callbacks::Callback>> callbacks_;
  std::unique_ptr<log::MetricsLog> metrics_log_;
  std::unique_ptr<log::ProgressLine> progress_line_;  // rank 0 only

  setup::TrainingProgress progress_;
  callbacks::Metrics last_metrics_;
  std::vector<std::string> reported_unused_;
};

}  // namespace da::trainer
