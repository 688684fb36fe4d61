#include "trainer/trainer.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/utils.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>

#include "callbacks/da_monitor.h"
#include "config/errors.h"
#include "callbacks/early_stopping.h"
#include "callbacks/model_checkpoint.h"
#include "dist/replica_check.h"
#include "io/archive_set.h"
#include "io/batch_normalize.h"
#include "metrics/confusion_matrix.h"
#include "models/batch_norm_statistics.h"
#include "models/domain_batch_norm.h"
#include "models/weights.h"
#include "trainer/loader_setup.h"
#include "trainer/model_setup.h"
#include "trainer/preemption.h"
#include "trainer/validation.h"

namespace da::trainer {
namespace {

namespace fs = std::filesystem;

std::string describe(const at::Tensor& t) {
  std::string shape;
  for (const auto d : t.sizes()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  return std::string(c10::toString(t.scalar_type())) + " [" + shape + "]";
}

// A loader delivering stored pixels (data.normalize.on: device) gets a
// normaliser that works where the batch is, after its copy to the device.
std::optional<io::BatchNormalizer> normalizer_for(const io::TileLoader& loader) {
  if (loader.options().normalize) return std::nullopt;
  return io::BatchNormalizer(loader.normalization());
}

// Autocast for the forward pass on CUDA (bf16/fp16); nothing on the CPU.
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

// BatchNorm statistics summed over the ranks (dist.sync_bn).
class RankSum : public models::BatchStatsSync {
 public:
  explicit RankSum(dist::Communicator& comm) : comm_(comm) {}
  void all_reduce_sum(at::Tensor& tensor) override { comm_.all_reduce(tensor, dist::ReduceOp::kSum); }

 private:
  dist::Communicator& comm_;
};

// The same sums for the methods' batch-wide statistics (methods/collectives.h).
class MethodCollectives : public methods::Collectives {
 public:
  explicit MethodCollectives(dist::Communicator& comm) : comm_(comm) {}
  void all_reduce_sum(at::Tensor& tensor) override {
    if (comm_.size() > 1) comm_.all_reduce(tensor, dist::ReduceOp::kSum);
  }
  int rank() const override { return comm_.rank(); }
  int world_size() const override { return comm_.size(); }

 private:
  dist::Communicator& comm_;
};

// The mean of each value over the ranks (every rank holds the same keys: the
// same method and config), so logged training metrics describe the global
// batch as in a one-process run, not rank 0's share of it.
std::map<std::string, double> mean_over_ranks(dist::Communicator& comm, const std::map<std::string, double>& values) {
  if (comm.size() == 1) return values;
  at::Tensor packed = at::empty({static_cast<std::int64_t>(values.size())}, at::kDouble);
  std::int64_t i = 0;
  for (const auto& entry : values) packed[i++] = entry.second;
  comm.all_reduce(packed, dist::ReduceOp::kSum);
  std::map<std::string, double> means;
  i = 0;
  for (const auto& entry : values) means[entry.first] = packed[i++].item<double>() / comm.size();
  return means;
}

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

Trainer::Trainer(const config::Config& config, std::string config_yaml, dist::Communicator& comm,
                 const dist::WorldInfo& world, std::string run_dir, dist::Communicator* control)
    : config_(config),
      config_yaml_(std::move(config_yaml)),
      comm_(comm),
      control_(control != nullptr ? *control : comm),
      world_(world),
      run_dir_(std::move(run_dir)) {
  compute_ = setup_compute(config_.run, world_);
  feed_ = make_device_feed(compute_.device);
  torch::manual_seed(static_cast<std::uint64_t>(config_.run.seed));
  const config::DataOptions& data = config_.data;
  if (data.source.train.empty()) throw config::ConfigError("data.source.train: no source training archives given");
  if (data.target.train.empty()) throw config::ConfigError("data.target.train: no target training archives given");

  // The archives decide bands and classes before the model and methods exist.
  const io::ArchiveSet source_set(data.source.train);
  const io::ArchiveSet target_set(data.target.train);
  models::ModelSpec spec = model_spec(config_, source_set.info(), target_set.info());
  if (config_.dist.sync_bn && world_.size > 1) spec.batch_stats_sync = std::make_shared<RankSum>(comm_);
  classes_ = spec.classes;
  class_names_ = source_set.info().classes;
  model_ = build_model(config_, spec);
  model_->to(compute_.device);
  if (compute_.channels_last) to_channels_last(*model_);

  methods::ModelInfo info;
  info.classes = spec.classes;
  info.feature_layers = config_.domain_adaptation.feature_layers;
  auto* model_ptr = model_.get();
  info.channels = [model_ptr](const std::string& name) { return model_ptr->feature_channels(name); };
  methods_ = create_methods(config_, info);
  const auto collectives = std::make_shared<MethodCollectives>(comm_);
  for (auto& wm : methods_) wm.method->attach_collectives(collectives);
  bool target_labels = false;
  for (auto& wm : methods_) {
    if (auto module = wm.method->module()) {
      module->to(compute_.device);
      if (compute_.channels_last) to_channels_last(*module);
    }
    target_labels = target_labels || wm.method->requires_target_labels();
  }
  if (target_labels && !target_set.info().has_masks) {
    throw config::ConfigError("data.target.train: a method needs target labels but the target archives have no masks");
  }

  const auto seed = config_.run.seed;
  // Batches in pinned memory on CUDA, so their copies to the GPU are asynchronous.
  const auto options = [&](std::int64_t loader_seed, LoaderRole role, bool masks) {
    io::LoaderOptions o = loader_options(data, loader_seed, role, masks, world_.rank, world_.size);
    o.pin_memory = compute_.device.is_cuda();
    if (role == LoaderRole::kTraining) o.normalize = training_loader_normalizes(data, compute_.device.is_cuda());
    return o;
  };
  train_loader_ = std::make_unique<io::PairedLoader>(
      options(seed, LoaderRole::kTraining, true), data.source.train,
      options(seed + 1, LoaderRole::kTraining, target_labels),
      data.target.train, epoch_length(data));
  normalize_source_ = normalizer_for(train_loader_->source());
  normalize_target_ = normalizer_for(train_loader_->target());
  if (!data.source.val.empty()) {
    source_val_ = std::make_unique<io::TileLoader>(
        options(seed, LoaderRole::kValidation, true), data.source.val);
  }
  if (!data.target.val.empty()) {
    // Unlabelled target validation tiles still give the label-free signals.
    const bool target_val_labels = io::ArchiveSet(data.target.val).info().has_masks;
    target_val_ = std::make_unique<io::TileLoader>(
        options(seed, LoaderRole::kValidation, target_val_labels), data.target.val);
  }
  // AdaBN: several methods asking combine to the largest request (0 = all).
  std::optional<std::int64_t> bn_batches;
  for (const auto& wm : methods_) {
    if (const auto b = wm.method->target_batch_norm_batches()) {
      bn_batches = !bn_batches ? *b : (*b == 0 || *bn_batches == 0 ? 0 : std::max(*bn_batches, *b));
    }
  }
  if (bn_batches) {
    target_bn_batches_ = *bn_batches;
    target_bn_loader_ = std::make_unique<io::TileLoader>(
        options(seed, LoaderRole::kValidation, false), data.target.train);
  }

  step_ = std::make_unique<TrainingStep>(model_, methods_, SegmentationLoss{config_.loss.ignore_index, config_.loss.dice_weight},
                                         config_.model.bn_mode);

  // Parameter groups: the model, what each method declares, and any other
  // parameter of a method's module at the optimizer's defaults.
  std::vector<methods::ParamGroup> groups;
  for (auto& wm : methods_) {
    std::set<const void*> grouped;
    for (auto& group : wm.method->extra_parameter_groups()) {
      for (const auto& p : group.params) grouped.insert(p.unsafeGetTensorImpl());
      groups.push_back(std::move(group));
    }
    if (auto module = wm.method->module()) {
      methods::ParamGroup rest{wm.method->name(), {}, std::nullopt, std::nullopt};
      for (const auto& p : module->parameters()) {
        if (!grouped.count(p.unsafeGetTensorImpl())) rest.params.push_back(p);
      }
      if (!rest.params.empty()) groups.push_back(std::move(rest));
    }
  }
  optimizer_ = std::make_unique<OptimizerSetup>(config_.optimizer, model_->parameters(), groups);

  const std::int64_t k = config_.run.accumulate_grad_batches;
  const std::int64_t steps = train_loader_->steps_per_epoch();
  lr_schedule_.name = config_.scheduler.name;
  lr_schedule_.warmup_steps = config_.scheduler.warmup_steps;
  lr_schedule_.power = config_.scheduler.power;
  lr_schedule_.min_ratio = config_.scheduler.min_lr / config_.optimizer.lr;
  lr_schedule_.total_steps = config_.run.max_epochs * ((steps + k - 1) / k);
  const auto& ls = config_.domain_adaptation.lambda_schedule;
  lambda_schedule_ = methods::LambdaSchedule{ls.name, ls.value, ls.gamma};
  if (compute_.loss_scaling) scaler_ = std::make_unique<LossScaler>();

  if (world_.size > 1) {
    // Gradients on a communicator of their own: a bucket's launch may move
    // with a rank's unused parameters, and must never pair up with another
    // rank's SyncBN or method collective (dist/grad_reducer.h).
    grad_comm_ = comm_.duplicate();
    reducer_ = std::make_unique<dist::GradReducer>(
        *grad_comm_, named_parameters(),
        dist::ReducerOptions{config_.dist.bucket_mb, config_.dist.first_bucket_mb, &control_});
  }

  const std::string checkpoint_dir = run_dir_ + "/checkpoints";
  callbacks_.push_back(std::make_unique<callbacks::ModelCheckpoint>(config_.callbacks.checkpoint, checkpoint_dir));
  if (config_.callbacks.early_stopping.enabled) {
    callbacks_.push_back(std::make_unique<callbacks::EarlyStopping>(config_.callbacks.early_stopping));
  }
  if (config_.callbacks.da_monitor.enabled) {
    callbacks_.push_back(std::make_unique<callbacks::DaMonitor>(config_.callbacks.da_monitor));
  }
  if (world_.rank == 0) {
    metrics_log_ = std::make_unique<log::MetricsLog>(run_dir_, config_.logging.tensorboard);
    progress_line_ = std::make_unique<log::ProgressLine>(log::ProgressLine::stdout_is_terminal());
  }

  std::int64_t numel = 0;
  for (const auto& p : parameters()) numel += p.numel();
  spdlog::info("model unet/{} ({} bands, {} classes, bn_mode {}), {} trainable values with the methods' nets; "
               "methods: {}; device {}, {} threads",
               spec.encoder, spec.in_channels, spec.classes, config_.model.bn_mode, numel,
               [&] {
                 std::string s;
                 for (const auto& wm : methods_) s += (s.empty() ? "" : ", ") + wm.method->name();
                 return s;
               }(),
               compute_.device.str(), compute_.threads);
  spdlog::info("{} steps per epoch ({} source, {} target tiles), batch {} per rank x {} ranks",
               train_loader_->steps_per_epoch(), train_loader_->source().num_tiles(),
               train_loader_->target().num_tiles(), data.batch_size, world_.size);
}

Trainer::~Trainer() = default;

std::vector<std::pair<std::string, at::Tensor>> Trainer::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& item : model_->named_parameters()) named.emplace_back("model." + item.key(), item.value());
  for (std::size_t i = 0; i < methods_.size(); ++i) {
    if (auto module = methods_[i].method->module()) {
      const std::string prefix = "method" + std::to_string(i) + "." + methods_[i].method->name() + ".";
      for (const auto& item : module->named_parameters()) named.emplace_back(prefix + item.key(), item.value());
    }
  }
  return named;
}

std::vector<at::Tensor> Trainer::parameters() const {
  std::vector<at::Tensor> params;
  for (auto& [name, p] : named_parameters()) params.push_back(p);
  return params;
}

CheckpointParts Trainer::checkpoint_parts() { return CheckpointParts{*model_, methods_, &optimizer_->optimizer()}; }

void Trainer::set_train_mode(bool train) {
  model_->train(train);
  if (train && config_.model.freeze_bn) {
    for (const auto& module : model_->modules()) {
      if (models::is_batch_norm(*module)) module->eval();
    }
  }
  for (auto& wm : methods_) {
    if (auto module = wm.method->module()) module->train(train);
  }
}

void Trainer::save(const std::string& path) {
  if (world_.rank != 0) return;
  TrainingProgress progress = progress_;
  for (const auto& callback : callbacks_) callback->save_state(progress.scalars);
  if (scaler_) {
    progress.scalars["loss_scaler/scale"] = scaler_->scale();
    progress.scalars["loss_scaler/good_steps"] = static_cast<double>(scaler_->good_steps());
  }
  fs::create_directories(fs::path(path).parent_path());
  save_checkpoint(path, checkpoint_parts(), progress, config_yaml_);
  spdlog::debug("checkpoint {} written", path);
}

void Trainer::resume_from(const std::string& path) {
  progress_ = load_checkpoint(path, checkpoint_parts());
  for (const auto& callback : callbacks_) callback->load_state(progress_.scalars);
  if (scaler_) {
    scaler_->restore(progress_.scalars.count("loss_scaler/scale") ? progress_.scalars.at("loss_scaler/scale")
                                                                  : scaler_->scale(),
                     static_cast<std::int64_t>(progress_.scalars.count("loss_scaler/good_steps")
                                                   ? progress_.scalars.at("loss_scaler/good_steps")
                                                   : 0));
  }
  spdlog::info("resumed from {}: epoch {}, step {} of the epoch, global step {}", path, progress_.epoch,
               progress_.position.step, progress_.global_step);
}

void Trainer::warm_start(const std::string& path) {
  models::LoadOptions options;
  options.strict = config_.domain_adaptation.pretrained_strict;
  options.dsbn_target_from_source = true;  // a DSBN run warm-starts both branches from a plain source model
  const models::LoadReport report = models::load_state_dict(*model_, read_checkpoint_model(path), options);
  spdlog::info("warm start from {} ({} missing, {} unexpected keys)", path, report.missing.size(),
               report.unexpected.size());
  for (const auto& key : report.missing) spdlog::warn("pretrained_checkpoint: missing {}", key);
  for (const auto& key : report.unexpected) spdlog::warn("pretrained_checkpoint: unexpected {}", key);
}

// Rank 0's parameters and buffers everywhere, after checking every rank
// built the same replica from the same configuration.
void Trainer::start_replicas() {
  std::vector<std::pair<std::string, std::string>> items{{"resolved config", config_yaml_}};
  for (std::size_t i = 0; i < methods_.size(); ++i) {
    items.emplace_back("method " + std::to_string(i), methods_[i].method->name());
  }
  for (const auto& [name, p] : named_parameters()) items.emplace_back("parameter " + name, describe(p));
  dist::verify_replicas(comm_, items);
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> state = parameters();
  for (const auto& b : model_->buffers()) state.push_back(b);
  for (auto& wm : methods_) {
    if (auto module = wm.method->module()) {
      for (const auto& b : module->buffers()) state.push_back(b);
    }
  }
  dist::broadcast_tensors(comm_, state, 0);
}

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
  if (source_val_) run(source_val_.get(), models::Domain::kSource, "source_val", nullptr);
  if (target_val_) {
    const io::ArchiveInfo& info = target_val_->info();
    metrics::LabelFreeSignals signals(classes_, target_val_->num_tiles(), info.height * info.width);
    run(target_val_.get(), models::Domain::kTarget, "target_val", &signals);
    comm_.all_reduce(signals.sums());
    for (const auto& [key, value] : signals.scores(source_labels)) metrics[key] = value;
  }
  return metrics;
}

callbacks::Metrics Trainer::reestimate_target_batch_norm() {
  if (!target_bn_loader_) return {};
  const auto start = std::chrono::steady_clock::now();
  io::TileLoader& loader = *target_bn_loader_;
  const std::int64_t limit = target_bn_batches_;
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
  std::unique_ptr<RankSum> sum;
  if (world_.size > 1) sum = std::make_unique<RankSum>(comm_);
  const models::BatchNormReestimate done =
      models::reestimate_batch_norm(*model_, models::Domain::kTarget, for_each_batch, probe, sum.get());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("adabn: target statistics of {} BatchNorm layers re-estimated on {} target tiles in {:.1f} s",
               done.layers, static_cast<std::int64_t>(done.tiles), seconds);
  return {{"adabn/layers", static_cast<double>(done.layers)}, {"adabn/tiles", done.tiles}};
}

void Trainer::normalize_on_device(io::PairedBatch& pair) {
  if (normalize_source_) (*normalize_source_)(pair.source);
  if (normalize_target_) (*normalize_target_)(pair.target);
}

double Trainer::optimizer_step(std::int64_t epoch, std::int64_t step_in_epoch) {
  const auto wait_start = std::chrono::steady_clock::now();
  if (reducer_) reducer_->finalize();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
  bool finite = true;
  if (scaler_) finite = scaler_->unscale(parameters());
  // Without clipping, clip_gradients would still compute the gradient norm (a
  // pass over every gradient) that nothing here uses.
  if (config_.optimizer.grad_clip_norm > 0) optimizer_->clip_gradients(config_.optimizer.grad_clip_norm);
  const std::int64_t k = config_.run.accumulate_grad_batches;
  const std::int64_t per_epoch = (train_loader_->steps_per_epoch() + k - 1) / k;
  optimizer_->apply_schedule(lr_schedule_, epoch * per_epoch + step_in_epoch / k);
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
  const std::int64_t steps = train_loader_->steps_per_epoch();
  const std::int64_t k = config_.run.accumulate_grad_batches;
  const bool first_micro = step_in_epoch % k == 0;
  const bool last_micro = (step_in_epoch + 1) % k == 0 || step_in_epoch + 1 == steps;
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
  if (wait_at_phases_) wait_for_device(compute_.device);
}

StepTimeSplit Trainer::train_on_fixed_pair(const io::PairedBatch& batch, std::int64_t steps, bool wait_at_phases) {
  if (world_.size != 1) throw std::logic_error("train_on_fixed_pair: one process only (no communication)");
  const auto& da = config_.domain_adaptation;
  const std::int64_t per_epoch = train_loader_->steps_per_epoch();
  const std::int64_t total_steps = per_epoch * config_.run.max_epochs;
  StepTimeSplit split;
  set_train_mode(true);
  // Onto the training device and normalised there once, as the loop does
  // with each pair.
  feed_->push(batch);
  io::PairedBatch on_device = feed_->take();
  normalize_on_device(on_device);
  wait_at_phases_ = wait_at_phases;
  end_phase();  // the copy and normalisation are no step's phase
  for (std::int64_t i = 0; i < steps; ++i) {
    const std::int64_t epoch = (i / per_epoch) % config_.run.max_epochs;
    const bool da_active = epoch >= da.warmup_epochs;
    const double progress = methods::schedule_progress(da.step_mode, epoch, config_.run.max_epochs,
                                                       progress_.global_step, total_steps, da.warmup_epochs,
                                                       per_epoch);
    train_step(on_device, epoch, i % per_epoch, da_active ? lambda_schedule_.at(progress) : 0.0, da_active, split);
    progress_.global_step = (progress_.global_step + 1) % total_steps;
  }
  wait_at_phases_ = false;
  return split;
}

bool Trainer::train_epoch(std::int64_t epoch, callbacks::Metrics& epoch_means) {
  const std::int64_t steps = train_loader_->steps_per_epoch();
  const std::int64_t total_steps = steps * config_.run.max_epochs;
  const std::int64_t k = config_.run.accumulate_grad_batches;
  const auto& da = config_.domain_adaptation;
  const bool da_active = epoch >= da.warmup_epochs;
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
  // step must hold.
  std::deque<io::PairedPosition> fed;
  const auto feed_next = [&] {
    auto pair = train_loader_->next();
    if (!pair) return;
    feed_->push(std::move(*pair));
    fed.push_back(train_loader_->position());
  };
  feed_next();
  for (;;) {
    const auto data_start = std::chrono::steady_clock::now();
    if (fed.empty()) break;
    io::PairedBatch batch = feed_->take();
    const io::PairedPosition position = fed.front();
    fed.pop_front();
    feed_next();
    normalize_on_device(batch);
    split.data_wait += seconds_since(data_start);
    const std::int64_t step_in_epoch = position.step - 1;
    const double progress = methods::schedule_progress(da.step_mode, epoch, config_.run.max_epochs,
                                                       progress_.global_step, total_steps, da.warmup_epochs, steps);
    const double lambda = da_active ? lambda_schedule_.at(progress) : 0.0;
    const bool last_micro = (step_in_epoch + 1) % k == 0 || step_in_epoch + 1 == steps;
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
      state.epochs = config_.run.max_epochs;
      state.step = step_in_epoch + 1;
      state.steps = steps;
      state.logs = logged;
      progress_line_->step(state, static_cast<double>(config_.data.batch_size * world_.size),
                           total_steps - progress_.global_step, log_step);
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
  // Throughput of this epoch (loading included): source images of all ranks
  // per second, and the share of the time spent waiting for gradient
  // all-reduces after backward (communication not hidden behind backward).
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
  epoch_means["time/step_s"] = seconds / static_cast<double>(std::max<std::int64_t>(counted, 1));
  epoch_means["time/images_per_s"] =
      static_cast<double>(counted * config_.data.batch_size * world_.size) / std::max(seconds, 1e-9);
  epoch_means["time/comm_wait_share"] = split.comm_wait / std::max(seconds, 1e-9);
  // Per-step means of where the time went. Only on the CPU, where work is
  // done when the call returns: on CUDA, host timers would measure kernel
  // launches, and syncing to measure would slow training down.
  if (compute_.device.is_cpu()) {
    const double steps_done = static_cast<double>(std::max<std::int64_t>(counted, 1));
    epoch_means["time/data_wait_s"] = split.data_wait / steps_done;
    epoch_means["time/forward_backward_s"] = split.forward_backward / steps_done;
    epoch_means["time/comm_wait_s"] = (split.comm_wait + control_wait) / steps_done;
    epoch_means["time/optimizer_s"] = split.optimizer / steps_done;
  }
  // Peak resident memory of the most demanding rank.
  at::Tensor peak = at::full({1}, peak_rss_mib(), at::kDouble);
  control_.all_reduce(peak, dist::ReduceOp::kMax);
  epoch_means["time/peak_rss_mb"] = peak.item<double>();
  if (compute_.device.is_cuda()) {  // of the most demanding rank's GPU
    at::Tensor gpu_peak = at::full({1}, peak_device_memory_mib(compute_.device), at::kDouble);
    control_.all_reduce(gpu_peak, dist::ReduceOp::kMax);
    epoch_means["time/gpu_peak_mb"] = gpu_peak.item<double>();
  }
  return true;
}

int Trainer::fit(const std::string& resume) {
  install_preemption_handlers();
  std::string resume_path = resume;
  if (resume == "auto") {
    resume_path = run_dir_ + "/checkpoints/last.pt";
    if (!fs::exists(resume_path)) {
      spdlog::info("--resume auto: no {} yet, starting afresh", resume_path);
      resume_path.clear();
    }
  }
  const bool resumed = !resume_path.empty();
  if (resumed) {
    resume_from(resume_path);
  } else if (!config_.domain_adaptation.pretrained_checkpoint.empty()) {
    warm_start(config_.domain_adaptation.pretrained_checkpoint);
  }
  start_replicas();
  if (!resumed && !config_.domain_adaptation.pretrained_checkpoint.empty() && source_val_) {
    // The warm-start model's source score is the DA monitor's forgetting baseline.
    const callbacks::Metrics before = validate();
    if (auto it = before.find("iou/source_val"); it != before.end()) {
      spdlog::info("warm-start model: iou/source_val {:.4f}", it->second);
      for (auto& callback : callbacks_) {
        if (auto* monitor = dynamic_cast<callbacks::DaMonitor*>(callback.get())) monitor->set_baseline(it->second);
      }
    }
  }
  for (auto& wm : methods_) wm.method->on_fit_start();

  bool first = true;
  for (std::int64_t epoch = progress_.epoch; epoch < config_.run.max_epochs; ++epoch, first = false) {
    for (auto& wm : methods_) wm.method->on_epoch_start(epoch);
    if (first && resumed) {
      train_loader_->resume(progress_.position);
    } else {
      train_loader_->start_epoch(epoch);
    }
    progress_.epoch = epoch;
    callbacks::Metrics metrics;
    if (!train_epoch(epoch, metrics)) {
      spdlog::warn("preemption requested: stopping at global step {}; writing last.pt to resume from",
                   progress_.global_step);
      save(run_dir_ + "/checkpoints/last.pt");
      comm_.barrier();
      return kExitResumable;
    }
    for (auto& wm : methods_) wm.method->on_epoch_end(epoch);
    if (reducer_) {
      for (const auto& name : reducer_->take_unused_parameters()) {
        if (std::find(reported_unused_.begin(), reported_unused_.end(), name) != reported_unused_.end()) continue;
        reported_unused_.push_back(name);
        spdlog::info("parameter {} received no gradient in epoch {}", name, epoch);
      }
    }
    if (world_.size > 1 && !config_.dist.sync_bn) {
      // Running statistics drift apart per rank; rank 0's are the model's.
      torch::NoGradGuard no_grad;
      std::vector<at::Tensor> buffers;
      for (const auto& b : model_->buffers()) buffers.push_back(b);
      dist::broadcast_tensors(comm_, buffers, 0);
    }
    const std::int64_t every = config_.run.val_every_n_epochs;
    callbacks::EpochContext context;
    context.epoch = epoch;
    context.global_step = progress_.global_step;
    context.validated = every > 0 && ((epoch + 1) % every == 0 || epoch + 1 == config_.run.max_epochs);
    context.is_rank0 = world_.rank == 0;
    context.save_checkpoint = [this](const std::string& path) { save(path); };
    // AdaBN before validating, and after the last epoch so the final model carries target statistics.
    if (context.validated || epoch + 1 == config_.run.max_epochs) {
      for (const auto& [key, value] : reestimate_target_batch_norm()) metrics[key] = value;
    }
    if (context.validated) {
      for (const auto& [key, value] : validate()) metrics[key] = value;
      for (auto& callback : callbacks_) callback->on_validation_end(context, metrics);
    }
    if (metrics_log_) {
      metrics_log_->write("epoch", epoch, progress_.global_step, metrics);
      std::string line;
      for (const char* key : {"train/loss/total", "iou/source_val", "iou/target_val", "train/da/dann/domain_acc"}) {
        if (auto it = metrics.find(key); it != metrics.end()) line += fmt::format(" {} {:.4f}", key, it->second);
      }
      spdlog::info("epoch {} done:{}", epoch, line);
    }
    last_metrics_ = metrics;
    progress_.epoch = epoch + 1;
    progress_.position = train_loader_->position();
    progress_.position.epoch = epoch + 1;
    progress_.position.step = 0;
    for (auto& callback : callbacks_) callback->on_epoch_end(context, metrics);
    comm_.barrier();  // nobody runs ahead of rank 0's checkpoint writing
    bool stop = false;
    for (const auto& callback : callbacks_) stop = stop || callback->should_stop();
    if (stop) break;
  }
  return 0;
}

}  // namespace da::trainer
