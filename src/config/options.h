// The typed options of da_dist, one struct per YAML section. Each option is
// declared once: its default is the member initialiser, its key, check and
// documentation are in the struct's fields() (see config/schema.h).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/schema.h"

namespace da::config {

struct RunOptions {
  std::string output_dir = "runs";
  std::string name;  // empty: the config file's stem
  std::int64_t seed = 42;
  std::int64_t max_epochs = 10;
  std::int64_t max_steps = -1;
  std::int64_t limit_train_batches = 0;
  std::int64_t log_every_n_steps = 10;
  std::int64_t val_every_n_epochs = 1;
  std::int64_t accumulate_grad_batches = 1;
  std::string device = "auto";
  std::int64_t threads = 0;
  std::string precision = "fp32";
  std::string memory_format = "auto";
  std::string host_allocator = "retain";

  template <class V>
  void fields(V& v) {
    v.text("output_dir", output_dir, "directory under which each run gets its own folder");
    v.text("name", name, "run folder name (default: the config file's name without extension)");
    v.integer("seed", seed, "seed of every random choice (shuffling, augmentation, init)", at_least(0));
    v.integer("max_epochs", max_epochs, "number of training epochs", at_least(1));
    v.integer("max_steps", max_steps,
              "stop after this many optimizer steps, mid-epoch if need be; that epoch validates and checkpoints "
              "as the last one (-1: no limit, max_epochs decides)",
              at_least(-1));
    v.integer("limit_train_batches", limit_train_batches, "training batches per epoch at most (0: the whole epoch)",
              at_least(0));
    v.integer("log_every_n_steps", log_every_n_steps, "steps between logged training metrics", at_least(1));
    v.integer("val_every_n_epochs", val_every_n_epochs, "epochs between validations (0: never)", at_least(0));
    v.integer("accumulate_grad_batches", accumulate_grad_batches,
              "micro-batches per optimizer step (gradients synchronised on the last only)", at_least(1));
    v.choice("device", device, {"auto", "cpu", "cuda"}, "compute device (auto: cuda when available)");
    v.integer("threads", threads, "intra-op threads per rank (0: cores / ranks on the node)", at_least(0));
    v.choice("precision", precision, {"fp32", "bf16", "fp16"}, "autocast precision on CUDA");
    v.choice("memory_format", memory_format, {"auto", "channels_last", "contiguous"},
             "layout of 4-D weights and batches (auto: channels_last on CUDA, contiguous on the CPU)");
    v.choice("host_allocator", host_allocator, {"retain", "system"},
             "retain: freed host memory is kept for the next step instead of being returned to the kernel and "
             "page-faulted in again (glibc mallopt); system: the C library's defaults (GLIBC_TUNABLES, LD_PRELOAD)");
  }
};

// The archives of one domain. Entries are file paths or globs.
struct DomainData {
  std::vector<std::string> train;
  std::vector<std::string> val;

  template <class V>
  void fields(V& v) {
    v.texts("train", train, "training archives (files or globs)");
    v.texts("val", val, "validation archives (files or globs)");
  }
};

struct AugmentationOptions {
  bool hflip = true;
  bool vflip = true;
  bool rot90 = true;
  std::int64_t crop_size = 0;

  template <class V>
  void fields(V& v) {
    v.flag("hflip", hflip, "random horizontal flip");
    v.flag("vflip", vflip, "random vertical flip");
    v.flag("rot90", rot90, "random rotation by a multiple of 90 degrees");
    v.integer("crop_size", crop_size, "random square crop of this size (0: no crop)", at_least(0));
  }
};

struct NormalizeOptions {
  std::string mode = "dtype";
  std::vector<double> mean;
  std::vector<double> std;
  std::string on = "auto";

  template <class V>
  void fields(V& v) {
    v.choice("mode", mode, {"dtype", "archive", "config"},
             "dtype: scale by the dtype range; archive: band_mean/band_std attributes; config: mean/std below");
    v.choice("on", on, {"auto", "loader", "device"},
             "where training batches are normalised: loader (worker threads make float32 batches), device (the "
             "stored pixels are copied to the training device and normalised there, the same values), auto: device "
             "on CUDA, loader on the CPU");
    v.numbers("mean", mean, "per-band mean of raw values (mode: config)");
    v.numbers("std", std, "per-band standard deviation of raw values (mode: config)", greater_than(0));
  }
};

struct DataOptions {
  DomainData source;
  DomainData target;
  std::int64_t batch_size = 8;
  std::int64_t val_batch_size = 0;
  std::int64_t workers = 2;
  std::int64_t prefetch = 2;
  std::int64_t max_open_shards = 64;
  std::string epoch_length = "source";
  std::string remainder = "wrap";
  std::string bad_values = "error";
  AugmentationOptions augmentation;
  NormalizeOptions normalize;

  template <class V>
  void fields(V& v) {
    v.section("source", source, "labelled source domain archives");
    v.section("target", target, "unlabelled target domain archives");
    v.integer("batch_size", batch_size, "tiles per rank and step, for each domain", at_least(1));
    v.integer("val_batch_size", val_batch_size, "tiles per rank in validation (0: batch_size)", at_least(0));
    v.integer("workers", workers, "background loader threads per rank", at_least(0));
    v.integer("prefetch", prefetch, "ready batches queued per loader", at_least(1));
    v.integer("max_open_shards", max_open_shards,
              "archive files each loader thread keeps open; the least recently read are closed and reopened when read",
              at_least(1));
    v.choice("epoch_length", epoch_length, {"source", "target", "max", "min"},
             "which domain's length defines an epoch; the other cycles");
    v.choice("remainder", remainder, {"wrap", "drop"},
             "tiles left over after an even split across ranks and batches: wrap (pad from the start) or drop");
    v.choice("bad_values", bad_values, {"error", "skip"},
             "NaN/Inf in float32 tiles: stop with an error, or skip the tile and count it");
    v.section("augmentation", augmentation, "training-time augmentation (image and mask alike)");
    v.section("normalize", normalize, "per-band normalisation");
  }
};

struct ModelOptions {
  std::string arch = "unet";
  std::string encoder = "resnet34";
  std::int64_t in_channels = 0;
  std::int64_t classes = 0;
  std::string bn_mode = "joint";
  bool freeze_bn = false;
  std::string weights;
  bool weights_strict = true;

  template <class V>
  void fields(V& v) {
    v.choice("arch", arch, {"unet"}, "segmentation architecture");
    v.choice("encoder", encoder, {"resnet18", "resnet34", "resnet50", "tiny"}, "encoder backbone");
    v.integer("in_channels", in_channels, "input bands (0: from the archives)", at_least(0));
    v.integer("classes", classes, "output classes (0: from the archives)", at_least(0));
    v.choice("bn_mode", bn_mode, {"joint", "separate", "dsbn"},
             "BatchNorm statistics across domains: one joint batch, separate forwards, or domain-specific BN");
    v.flag("freeze_bn", freeze_bn,
           "keep BatchNorm in eval mode while training: running statistics used and not updated (small batches)");
    v.text("weights", weights, "state_dict file (torch.save) to initialise the model from");
    v.flag("weights_strict", weights_strict, "fail on missing or unexpected keys in weights");
  }
};

struct LossOptions {
  std::int64_t ignore_index = 255;
  double dice_weight = 0.0;

  template <class V>
  void fields(V& v) {
    v.integer("ignore_index", ignore_index, "mask value excluded from loss and metrics", between(-1, 255));
    v.number("dice_weight", dice_weight, "weight of the Dice loss added to cross-entropy", at_least(0));
  }
};

struct OptimizerOptions {
  std::string name = "adamw";
  double lr = 1e-3;
  double weight_decay = 1e-4;
  double momentum = 0.9;
  bool nesterov = false;
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double grad_clip_norm = 0.0;

  template <class V>
  void fields(V& v) {
    v.choice("name", name, {"sgd", "adamw"}, "optimizer algorithm");
    v.number("lr", lr, "base learning rate", greater_than(0));
    v.number("weight_decay", weight_decay, "weight decay", at_least(0));
    v.number("momentum", momentum, "SGD momentum", between(0, 1));
    v.flag("nesterov", nesterov, "SGD Nesterov momentum");
    v.numbers("betas", betas, "AdamW betas", between(0, 1));
    v.number("eps", eps, "AdamW epsilon", greater_than(0));
    v.number("grad_clip_norm", grad_clip_norm, "clip the global gradient norm to this (0: off)", at_least(0));
  }
};

struct SchedulerOptions {
  std::string name = "constant";
  std::int64_t warmup_steps = 0;
  double power = 0.9;
  double min_lr = 0.0;

  template <class V>
  void fields(V& v) {
    v.choice("name", name, {"constant", "poly", "cosine"}, "learning-rate schedule");
    v.integer("warmup_steps", warmup_steps, "linear warm-up steps from 0 to the base rate", at_least(0));
    v.number("power", power, "exponent of the poly schedule", greater_than(0));
    v.number("min_lr", min_lr, "final learning rate of poly and cosine", at_least(0));
  }
};

struct LambdaScheduleOptions {
  std::string name = "dann";
  double value = 1.0;
  double gamma = 10.0;

  template <class V>
  void fields(V& v) {
    v.choice("name", name, {"constant", "dann", "linear"},
             "constant: value; dann: value*(2/(1+exp(-gamma*p))-1); linear: value*p");
    v.number("value", value, "the coefficient's final (or constant) value", at_least(0));
    v.number("gamma", gamma, "steepness of the dann schedule", greater_than(0));
  }
};

struct DomainAdaptationOptions {
  std::vector<std::string> feature_layers;
  YAML::Node method;  // {name: ..., params...} or a list of those; checked by the method registry
  LambdaScheduleOptions lambda_schedule;
  std::string step_mode = "epoch";
  std::int64_t warmup_epochs = 0;
  std::string pretrained_checkpoint;
  bool pretrained_strict = true;

  template <class V>
  void fields(V& v) {
    v.texts("feature_layers", feature_layers, "model feature taps the methods align (e.g. encoder.layer3)");
    v.raw("method", method, "the method: {name: dann, ...its parameters}, or a list of methods");
    v.section("lambda_schedule", lambda_schedule, "schedule of the gradient-reversal coefficient lambda");
    v.choice("step_mode", step_mode, {"epoch", "batch"},
             "progress p of the lambda schedule from epochs or from the global batch counter");
    v.integer("warmup_epochs", warmup_epochs, "epochs with lambda held at 0 and the DA branch not updated",
              at_least(0));
    v.text("pretrained_checkpoint", pretrained_checkpoint, "checkpoint to warm-start from (e.g. source-only)");
    v.flag("pretrained_strict", pretrained_strict, "fail on missing or unexpected keys when warm-starting");
  }
};

struct DistOptions {
  std::string backend = "auto";
  double bucket_mb = 25.0;
  double first_bucket_mb = 1.0;
  bool sync_bn = false;
  double timeout_s = 600.0;
  std::int64_t check_every_n_steps = 100;
  std::string mpi_progress = "auto";
  std::string unused_parameters_sync = "auto";
  bool gradient_as_bucket_view = true;
  std::string gradient_compression = "none";

  template <class V>
  void fields(V& v) {
    v.choice("backend", backend, {"auto", "nccl", "mpi"},
             "collectives: auto (NCCL for a model on GPUs, MPI on the CPU), nccl, or mpi (GPU tensors staged through "
             "host memory)");
    v.number("bucket_mb", bucket_mb, "gradient bucket size in MiB", greater_than(0));
    v.number("first_bucket_mb", first_bucket_mb, "size of the first bucket, so communication starts early",
             greater_than(0));
    v.flag("sync_bn", sync_bn, "synchronise BatchNorm statistics across ranks");
    v.number("timeout_s", timeout_s, "collective timeout in seconds before the job is aborted", greater_than(0));
    v.integer("check_every_n_steps", check_every_n_steps,
              "steps between the cross-rank agreement check of step, epoch and lambda", at_least(1));
    v.choice("mpi_progress", mpi_progress, {"auto", "thread", "caller"},
             "how MPI gradient all-reduces progress during backward: thread (a communication thread per rank runs "
             "them while backward computes; needs MPI_THREAD_MULTIPLE), caller (only when the main thread enters "
             "MPI), auto (thread when MPI grants MPI_THREAD_MULTIPLE); NCCL ignores it");
    v.choice("unused_parameters_sync", unused_parameters_sync, {"auto", "every_step", "on_change"},
             "how the ranks agree on which parameters got no gradient anywhere: every_step (a mask all-reduce "
             "each step), on_change (a flag in the last gradient bucket; the mask only in steps where a rank's "
             "set changed), auto (on_change on the CPU, every_step on GPUs)");
    v.flag("gradient_as_bucket_view", gradient_as_bucket_view,
           "gradients live in their all-reduce bucket's memory (DDP's option of that name): no copy into the bucket "
           "and back each step, one copy of the gradients in memory; false copies them");
    v.choice("gradient_compression", gradient_compression, {"none", "fp16", "bf16"},
             "precision float32 gradients are all-reduced in (DDP's fp16/bf16 compression hooks): half the bytes, "
             "each gradient rounded to 11 (fp16) or 8 (bf16) significant bits; none keeps float32");
  }
};

struct CheckpointOptions {
  std::string monitor = "iou/target_val";
  std::string mode = "max";
  bool save_last = true;
  std::int64_t every_n_epochs = 1;
  std::int64_t keep = 3;

  template <class V>
  void fields(V& v) {
    v.text("monitor", monitor,
           "metric that decides the best checkpoint; iou/target_val needs target labels, without them: "
           "iou/source_val or unsup/snd (max), unsup/target_entropy or unsup/class_prior_gap (min)");
    v.choice("mode", mode, {"max", "min"}, "whether larger or smaller is better");
    v.flag("save_last", save_last, "keep last.pt updated every epoch");
    v.integer("every_n_epochs", every_n_epochs, "epochs between kept checkpoints (0: only last/best)",
              at_least(0));
    v.integer("keep", keep, "how many periodic checkpoints to keep", at_least(1));
  }
};

struct EarlyStoppingOptions {
  bool enabled = false;
  std::string monitor = "iou/target_val";
  std::string mode = "max";
  std::int64_t patience = 5;
  double min_delta = 0.0;

  template <class V>
  void fields(V& v) {
    v.flag("enabled", enabled, "stop when the monitored metric stops improving");
    v.text("monitor", monitor, "metric to watch (those callbacks.checkpoint.monitor takes)");
    v.choice("mode", mode, {"max", "min"}, "whether larger or smaller is better");
    v.integer("patience", patience, "validations without improvement before stopping", at_least(1));
    v.number("min_delta", min_delta, "smallest change that counts as improvement", at_least(0));
  }
};

struct DaMonitorOptions {
  bool enabled = true;
  double forgetting_threshold = 0.05;

  template <class V>
  void fields(V& v) {
    v.flag("enabled", enabled, "log source/target IoU, their gap and the source IoU drop");
    v.number("forgetting_threshold", forgetting_threshold,
             "warn when source IoU falls this much below the warm-start baseline", at_least(0));
  }
};

struct CallbackOptions {
  CheckpointOptions checkpoint;
  EarlyStoppingOptions early_stopping;
  DaMonitorOptions da_monitor;

  template <class V>
  void fields(V& v) {
    v.section("checkpoint", checkpoint, "checkpoint writing (rank 0)");
    v.section("early_stopping", early_stopping, "early stopping");
    v.section("da_monitor", da_monitor, "domain-adaptation monitor");
  }
};

struct LoggingOptions {
  std::string level = "info";
  bool tensorboard = true;
  bool progress = true;

  template <class V>
  void fields(V& v) {
    v.choice("level", level, {"trace", "debug", "info", "warn", "error"}, "console and file log level");
    v.flag("tensorboard", tensorboard, "write TensorBoard event files (rank 0)");
    v.flag("progress", progress, "progress line per epoch on rank 0");
  }
};

// The whole configuration: the root of the YAML document.
struct Config {
  RunOptions run;
  DataOptions data;
  ModelOptions model;
  LossOptions loss;
  OptimizerOptions optimizer;
  SchedulerOptions scheduler;
  DomainAdaptationOptions domain_adaptation;
  DistOptions dist;
  CallbackOptions callbacks;
  LoggingOptions logging;
  std::vector<std::string> plugins;

  template <class V>
  void fields(V& v) {
    v.section("run", run, "output, seed and length of the run");
    v.section("data", data, "tile archives and the loader");
    v.section("model", model, "segmentation model");
    v.section("loss", loss, "segmentation loss");
    v.section("optimizer", optimizer, "optimizer");
    v.section("scheduler", scheduler, "learning-rate schedule");
    v.section("domain_adaptation", domain_adaptation, "adaptation methods and their schedule");
    v.section("dist", dist, "data-parallel training");
    v.section("callbacks", callbacks, "checkpointing, early stopping, monitors");
    v.section("logging", logging, "logging");
    v.texts("plugins", plugins, "shared libraries with user methods, loaded at start");
  }
};

}  // namespace da::config
