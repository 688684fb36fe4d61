// da_bench_step: the compute-only limit of a da_dist training step, for
// tools/bench_train/end_to_end.sh. Builds the trainer from a da_dist
// configuration (one process, no communication), takes the first source and
// target batch of the training archives once, and runs --warmup then --steps
// training steps on that fixed pair through Trainer::train_on_fixed_pair (the
// same step as training: zero grads, forward, backward, optimizer step).
//
//   da_bench_step --config bench.yaml [--set key=value ...] [--steps 10] [--warmup 2]
//   da_bench_step --config bench.yaml --dump-state init.pt
//
// Prints one line:
//   RESULT steps=N batch=B step_s=S images_per_s=X forward_backward_s=F optimizer_s=O peak_rss_mb=M gpu_peak_mb=G
// (per-step means; images/s counts source images, as da_dist's time/images_per_s).
// On a GPU the split comes from a second --steps pass that waits for the
// device at each phase's end (a step's work is queued, so host timers alone
// would time the queueing); step_s and images_per_s from the first, unwaited.
// --dump-state writes the initial tensors (the weights da_dist starts from
// with the same configuration) as a dict readable by Python's torch.load:
// "model.<name>" for the model's parameters and buffers, "method<i>.<name>"
// for method i's module; and exits without training.
#include <ATen/ATen.h>
#include <ATen/core/Dict.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/cuda.h>

#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "command_line/checks.h"
#include "command_line/parse.h"
#include "config/errors.h"
#include "config/loader.h"
#include "dist/local_communicator.h"
#include "io/tile_loader.h"
#include "log/logging.h"
#include "setup/loader_setup.h"
#include "trainer/trainer.h"

namespace {

namespace fs = std::filesystem;
using namespace da;

struct Args {
  std::string config;
  std::vector<std::string> sets;
  std::int64_t steps = 10;
  std::int64_t warmup = 2;
  std::string dump_state;
};

void add_options(CLI::App& app, Args& a) {
  using command_line::integer_at_least;
  app.add_option("--config", a.config, "da_dist configuration")->type_name("FILE")->required();
  app.add_option("--set", a.sets, "override one option by its dotted path, as da_dist's --set (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  app.add_option("--steps", a.steps, "timed training steps")->check(integer_at_least(1))->capture_default_str();
  app.add_option("--warmup", a.warmup, "untimed steps before them")->check(integer_at_least(0))->capture_default_str();
  app.add_option("--dump-state", a.dump_state, "write the initial tensors to FILE and exit without training")
      ->type_name("FILE");
}

// The first batch of one domain's training loader, copied out of the
// loader's pool, as the trainer's training loader delivers it (normalised,
// or stored pixels that the trainer normalises on the GPU).
io::Batch first_batch(const config::Config& config, bool source, bool on_gpu) {
  const auto& data = config.data;
  const auto seed = config.run.seed + (source ? 0 : 1);
  io::LoaderOptions options =
      setup::loader_options(data, seed, setup::LoaderRole::kTraining, source, 0, 1);
  options.normalize = setup::training_loader_normalizes(data, on_gpu);
  io::TileLoader loader(options, source ? data.source.train : data.target.train);
  loader.start_epoch(0);
  std::optional<io::Batch> batch = loader.next();
  if (!batch) throw std::runtime_error(std::string(source ? "source" : "target") + " training archives: no batch");
  // Copies, as the loader reuses its buffers; page-locked for the GPU, as
  // the loader's own batches are there.
  const auto own = [on_gpu](const at::Tensor& t) { return on_gpu ? t.clone().pin_memory() : t.clone(); };
  io::Batch copy = *batch;
  copy.image = own(batch->image);
  if (batch->mask.defined()) copy.mask = own(batch->mask);
  return copy;
}

void dump_state(trainer::Trainer& trainer, const std::string& path) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& item : trainer.model()->named_parameters()) dict.insert("model." + item.key(), item.value().detach());
  for (const auto& item : trainer.model()->named_buffers()) dict.insert("model." + item.key(), item.value());
  for (std::size_t i = 0; i < trainer.methods().size(); ++i) {
    if (auto module = trainer.methods()[i].method->module()) {
      const std::string prefix = "method" + std::to_string(i) + ".";
      for (const auto& item : module->named_parameters()) dict.insert(prefix + item.key(), item.value().detach());
      for (const auto& item : module->named_buffers()) dict.insert(prefix + item.key(), item.value());
    }
  }
  const std::vector<char> bytes = torch::jit::pickle_save(dict);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("--dump-state: cannot write " + path);
  std::printf("wrote %zu tensors to %s\n", static_cast<std::size_t>(dict.size()), path.c_str());
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

int run(const Args& args) {
  config::Config config = config::load_config(args.config, args.sets);
  log::init(0, "warn");
  // The trainer's run directory (its metrics log) lives only as long as the tool.
  const fs::path run_dir = fs::temp_directory_path() / ("da_bench_step." + std::to_string(::getpid()));
  fs::create_directories(run_dir);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{run_dir};

  dist::LocalCommunicator comm;
  trainer::Trainer trainer(config, config::to_yaml(config), comm, dist::WorldInfo{}, run_dir.string());
  if (!args.dump_state.empty()) {
    dump_state(trainer, args.dump_state);
    return 0;
  }
  const bool on_gpu = trainer.parameters().front().is_cuda();
  const io::PairedBatch pair{first_batch(config, true, on_gpu), first_batch(config, false, on_gpu)};
  // On CUDA the steps are queued: time them to the end of their GPU work.
  const auto finish = [on_gpu] {
    if (on_gpu) torch::cuda::synchronize();
  };
  if (args.warmup > 0) trainer.train_on_fixed_pair(pair, args.warmup);
  finish();
  const auto start = std::chrono::steady_clock::now();
  trainer::StepTimeSplit split = trainer.train_on_fixed_pair(pair, args.steps);
  finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (on_gpu) split = trainer.train_on_fixed_pair(pair, args.steps, /*wait_at_phases=*/true);
  const double n = static_cast<double>(args.steps);
  const std::int64_t batch = pair.source.image.size(0);
  std::printf("RESULT steps=%lld batch=%lld step_s=%.6f images_per_s=%.4f forward_backward_s=%.6f optimizer_s=%.6f "
              "peak_rss_mb=%.1f gpu_peak_mb=%.1f\n",
              static_cast<long long>(args.steps), static_cast<long long>(batch), seconds / n,
              static_cast<double>(batch) * n / seconds, split.forward_backward / n, split.optimizer / n,
              peak_rss_mib(), setup::peak_device_memory_mib(trainer.parameters().front().device()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  const auto app =
      da::command_line::make_app("da_bench_step", "Compute-only training steps on one fixed batch (tools/bench_train).");
  app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  add_options(*app, args);
  try {
    const std::string help = da::command_line::parse(*app, argc, argv);
    if (!help.empty()) {
      std::cout << help;
      return 0;
    }
  } catch (const da::config::UsageError& e) {
    std::cerr << "da_bench_step: " << e.what() << "\n" << app->help();
    return 2;
  }
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::cerr << "da_bench_step: " << e.what() << "\n";
    return 1;
  }
}
