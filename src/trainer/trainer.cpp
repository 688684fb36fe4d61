#include "trainer/trainer.h"

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/utils.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "callbacks/da_monitor.h"
#include "callbacks/early_stopping.h"
#include "callbacks/model_checkpoint.h"
#include "config/errors.h"
#include "dist/bootstrap.h"
#include "dist/replica_check.h"
#include "io/archive_set.h"
#include "models/domain_batch_norm.h"
#include "models/weights.h"
#include "setup/communicator_rank_sum.h"
#include "setup/elastic_resume.h"
#include "setup/model_setup.h"
#include "trainer/preemption.h"

namespace da::trainer {
namespace {

namespace fs = std::filesystem;

std::string describe(const at::Tensor& t) {
  std::string shape;
  for (const auto d : t.sizes()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  return std::string(c10::toString(t.scalar_type())) + " [" + shape + "]";
}

// " key value" for each of `keys` that `metrics` holds: the one-line summaries.
std::string summary(const callbacks::Metrics& metrics, const std::vector<std::string>& keys) {
  std::string line;
  for (const auto& key : keys) {
    if (auto it = metrics.find(key); it != metrics.end()) line += fmt::format(" {} {:.4f}", key, it->second);
  }
  return line;
}

// dist.unused_parameters_sync as the reducer takes it.
dist::UsedMask used_mask_sync(const std::string& setting) {
  if (setting == "every_step") return dist::UsedMask::kEveryStep;
  if (setting == "on_change") return dist::UsedMask::kOnChange;
  return dist::UsedMask::kAuto;
}

// dist.gradient_compression as the reducer takes it.
dist::GradCompression gradient_compression(const std::string& setting) {
  if (setting == "fp16") return dist::GradCompression::kFp16;
  if (setting == "bf16") return dist::GradCompression::kBf16;
  return dist::GradCompression::kNone;
}

// dist.mpi_progress as the reducer's communicator takes it.
dist::Progress gradient_progress(const std::string& setting) {
  if (setting == "thread") return dist::Progress::kThread;
  if (setting == "caller") return dist::Progress::kCaller;
  return dist::world().thread_multiple ? dist::Progress::kThread : dist::Progress::kCaller;  // auto
}

}  // namespace

Trainer::Trainer(const config::Config& config, std::string config_yaml, dist::Communicator& comm,
                 const dist::WorldInfo& world, std::string run_dir, dist::Communicator* control)
    : config_(config),
      config_yaml_(std::move(config_yaml)),
      comm_(comm),
      control_(control != nullptr ? *control : comm),
      world_(world),
      run_dir_(std::move(run_dir)),
      rank_sum_(std::make_shared<setup::CommunicatorRankSum>(comm)) {
  compute_ = setup::setup_compute(config_.run, world_);
  feed_ = make_device_feed(compute_.device);
  torch::manual_seed(static_cast<std::uint64_t>(config_.run.seed));
  const config::DataOptions& data = config_.data;
  if (data.source.train.empty()) throw config::ConfigError("data.source.train: no source training archives given");
  if (data.target.train.empty()) throw config::ConfigError("data.target.train: no target training archives given");

  // The archives decide bands and classes before the model and methods exist.
  const io::ArchiveSet source_set(data.source.train);
  const io::ArchiveSet target_set(data.target.train);
  models::ModelSpec spec = setup::model_spec(config_, source_set.info(), target_set.info());
  if (config_.dist.sync_bn && world_.size > 1) spec.batch_stats_sync = rank_sum_;
  classes_ = spec.classes;
  class_names_ = source_set.info().classes;
  model_ = setup::build_model(config_, spec);
  model_->to(compute_.device);
  if (compute_.channels_last) setup::to_channels_last(*model_);

  methods::ModelInfo info;
  info.classes = spec.classes;
  info.feature_layers = config_.domain_adaptation.feature_layers;
  auto* model_ptr = model_.get();
  info.channels = [model_ptr](const std::string& name) { return model_ptr->feature_channels(name); };
  methods_ = setup::create_methods(config_, info);
  setup::place_methods(methods_, compute_.device, compute_.channels_last, rank_sum_);
  const bool target_labels = setup::require_target_labels(methods_);
  if (target_labels && !target_set.info().has_masks) {
    throw config::ConfigError("data.target.train: a method needs target labels but the target archives have no masks");
  }
  data_ = make_training_data(data, config_.run.seed, world_, compute_.device,
                             {target_labels, setup::target_batch_norm_batches(methods_)});
  length_.emplace(data_.train->steps_per_epoch(), config_.run);

  step_ = std::make_unique<TrainingStep>(model_, methods_, SegmentationLoss{config_.loss.ignore_index, config_.loss.dice_weight},
                                         config_.model.bn_mode);

  optimizer_ = std::make_unique<OptimizerSetup>(config_.optimizer, model_->parameters(),
                                              setup::method_parameter_groups(methods_));

  lr_schedule_.name = config_.scheduler.name;
  lr_schedule_.warmup_steps = config_.scheduler.warmup_steps;
  lr_schedule_.power = config_.scheduler.power;
  lr_schedule_.min_ratio = config_.scheduler.min_lr / config_.optimizer.lr;
  lr_schedule_.total_steps = length_->total_optimizer_steps();
  const auto& ls = config_.domain_adaptation.lambda_schedule;
  lambda_schedule_ = methods::LambdaSchedule{ls.name, ls.value, ls.gamma};
  if (compute_.loss_scaling) scaler_ = std::make_unique<LossScaler>();

  if (world_.size > 1) {
    // Gradients on a communicator of their own: a bucket's launch may move
    // with a rank's unused parameters, and must never pair up with another
    // rank's SyncBN or method collective (dist/grad_reducer.h).
    const dist::Progress progress = gradient_progress(config_.dist.mpi_progress);
    grad_comm_ = comm_.duplicate(progress);
    dist::ReducerOptions reducer_options{config_.dist.bucket_mb, config_.dist.first_bucket_mb, &control_};
    reducer_options.used_mask = used_mask_sync(config_.dist.unused_parameters_sync);
    reducer_options.gradient_as_bucket_view = config_.dist.gradient_as_bucket_view;
    reducer_options.compression = gradient_compression(config_.dist.gradient_compression);
    reducer_ = std::make_unique<dist::GradReducer>(*grad_comm_, named_parameters(), reducer_options);
    if (world_.rank == 0) {
      spdlog::info("gradients: {} buckets over {}{}{}", reducer_->num_buckets(), grad_comm_->backend(),
                   grad_comm_->backend() == "mpi"
                       ? (progress == dist::Progress::kThread ? ", progressed by a communication thread"
                                                              : ", progressed by the main thread's MPI calls")
                       : "",
                   config_.dist.gradient_compression == "none"
                       ? ""
                       : ", all-reduced in " + config_.dist.gradient_compression);
    }
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
  spdlog::info("{} steps per epoch ({} source, {} target tiles), batch {} per rank x {} ranks; {} epochs, {} steps",
               length_->batches_per_epoch(), data_.train->source().num_tiles(), data_.train->target().num_tiles(),
               data.batch_size, world_.size, length_->epochs(), length_->total_batches());
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

setup::CheckpointParts Trainer::checkpoint_parts() { return setup::CheckpointParts{*model_, methods_, &optimizer_->optimizer()}; }

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
  setup::TrainingProgress progress = progress_;
  for (const auto& callback : callbacks_) callback->save_state(progress.scalars);
  progress.scalars[setup::kWorldSizeScalar] = static_cast<double>(world_.size);
  progress.scalars[setup::kBatchSizeScalar] = static_cast<double>(config_.data.batch_size);
  if (scaler_) {
    progress.scalars["loss_scaler/scale"] = scaler_->scale();
    progress.scalars["loss_scaler/good_steps"] = static_cast<double>(scaler_->good_steps());
  }
  fs::create_directories(fs::path(path).parent_path());
  setup::save_checkpoint(path, checkpoint_parts(), progress, config_yaml_);
  spdlog::debug("checkpoint {} written", path);
}

void Trainer::resume_from(const std::string& path) {
  progress_ = setup::load_checkpoint(path, checkpoint_parts());
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
  const models::LoadReport report = models::load_state_dict(*model_, setup::read_checkpoint_model(path), options);
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

int Trainer::fit(const std::string& resume) {
  install_preemption_handlers();
  const std::string resume_path = setup::resume_checkpoint_path(resume, run_dir_);
  if (resume == "auto" && resume_path.empty()) {
    spdlog::info("--resume auto: no {}/checkpoints/last.pt yet, starting afresh", run_dir_);
  }
  const bool resumed = !resume_path.empty();
  if (resumed) {
    resume_from(resume_path);
  } else if (!config_.domain_adaptation.pretrained_checkpoint.empty()) {
    warm_start(config_.domain_adaptation.pretrained_checkpoint);
  }
  start_replicas();
  if (!resumed && !config_.domain_adaptation.pretrained_checkpoint.empty() && (data_.source_val || data_.target_val)) {
    // The model before adaptation, for the callbacks that compare with it.
    const callbacks::Metrics before = validate();
    spdlog::info("warm-start model:{}", summary(before, {"iou/source_val", "iou/target_val"}));
    for (auto& callback : callbacks_) callback->on_warm_start_validated(before);
  }
  for (auto& wm : methods_) wm.method->on_fit_start();

  bool first = true;
  for (std::int64_t epoch = progress_.epoch; epoch < length_->epochs(); ++epoch, first = false) {
    for (auto& wm : methods_) wm.method->on_epoch_start(epoch);
    if (first && resumed) {
      data_.train->resume(progress_.position);
    } else {
      data_.train->start_epoch(epoch);
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
    const bool last = length_->is_last_epoch(epoch);
    context.validated = every > 0 && ((epoch + 1) % every == 0 || last);
    context.is_rank0 = world_.rank == 0;
    context.save_checkpoint = [this](const std::string& path) { save(path); };
    // AdaBN before validating, and after the last epoch so the final model carries target statistics.
    if (context.validated || last) {
      for (const auto& [key, value] : reestimate_target_batch_norm()) metrics[key] = value;
    }
    if (context.validated) {
      for (const auto& [key, value] : validate()) metrics[key] = value;
      for (auto& callback : callbacks_) callback->on_validation_end(context, metrics);
    }
    if (metrics_log_) {
      metrics_log_->write("epoch", epoch, progress_.global_step, metrics);
      std::vector<std::string> keys{"train/loss/total", "iou/source_val", "iou/target_val"};
      for (const auto& wm : methods_) {
        for (const auto& log : wm.method->summary_logs()) keys.push_back("train/da/" + wm.method->name() + "/" + log);
      }
      spdlog::info("epoch {} done:{}", epoch, summary(metrics, keys));
    }
    last_metrics_ = metrics;
    progress_.epoch = epoch + 1;
    progress_.position = data_.train->position();
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
