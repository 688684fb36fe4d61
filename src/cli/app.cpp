#include "cli/app.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>

#include "cli/arguments.h"
#include "cli/version.h"
#include "config/errors.h"
#include "config/loader.h"
#include "dist/communicator.h"
#include "inference/evaluate.h"
#include "inference/export.h"
#include "inference/predict.h"
#ifdef DA_WITH_GDAL
#include "inference/scene_predict.h"
#endif
#include "io/atomic_file.h"
#include "log/logging.h"
#include "setup/host_allocator.h"
#include "setup/method_parameters.h"
#include "setup/method_setup.h"

namespace da::cli {
namespace {

void print_config_keys() {
  for (const auto& entry : config::describe_keys()) {
    std::printf("%-45s %-30s %s\n", entry.path.c_str(), entry.kind.c_str(), entry.doc.c_str());
  }
  std::printf("\nmethod parameters (domain_adaptation.method: {name: <method>, <parameter>: <value>, ...}): "
              "kind, default, what it does [where the default comes from]\n");
  for (const auto& line : setup::method_parameter_lines()) {
    std::string text = line.doc;
    if (!line.source.empty()) text += " [" + line.source + "]";
    std::printf("%-45s %-30s %-12s %s\n", line.path.c_str(), line.kind.c_str(), line.fallback.c_str(), text.c_str());
  }
}

// predict / evaluate: rank 0 does the whole job; other ranks of an mpirun
// have nothing to do and exit 0.
int run_inference(const Arguments& args, const dist::WorldInfo& world) {
  setup::configure_host_allocator(args.host_allocator);
  if (!args.scenes.empty()) {  // every rank maps its share of the scenes
#ifndef DA_WITH_GDAL
    throw std::runtime_error("--scene reads and writes GeoTIFFs with GDAL: this da_dist was built without it "
                             "(DA_WITH_GDAL=OFF)");
#else
    log::init(world.rank, args.log_level.empty() ? "info" : args.log_level);
    inference::ScenePredictOptions options;
    options.checkpoint = args.checkpoint_path;
    options.scenes = args.scenes;
    options.output_dir = args.output_dir;
    options.confidence = args.confidence;
    options.domain = inference::parse_domain(args.domain);
    options.window.window = args.window;
    options.window.overlap = args.overlap;
    if (args.batch_size > 0) options.window.batch = args.batch_size;
    options.tta = inference::parse_tta(args.tta);
    options.strip_rows = args.strip_rows;
    // Split scenes move output rows between ranks: CPU tensors over MPI.
    const auto comm = dist::make_communicator(dist::CommunicatorOptions{});
    inference::predict_scenes(options, *comm);
    dist::barrier();
    return 0;
#endif
  }
  if (world.rank != 0) return 0;
  log::init(world.rank, args.log_level.empty() ? "info" : args.log_level);
  const models::Domain domain = inference::parse_domain(args.domain);
  if (args.command == "predict") {
    inference::PredictOptions options;
    options.checkpoint = args.checkpoint_path;
    options.inputs = args.inputs;
    options.output = args.output_path;
    options.probabilities = args.probabilities;
    options.geotiff_dir = args.geotiff_dir;
    options.domain = domain;
    options.batch_size = args.batch_size;
    inference::predict(options);
  } else {
    inference::EvaluateOptions options;
    options.checkpoint = args.checkpoint_path;
    options.inputs = args.inputs;
    options.domain = domain;
    options.batch_size = args.batch_size;
    const inference::Evaluation evaluation = inference::evaluate(options);
    std::cout << inference::scores_table(evaluation) << std::flush;
    if (!args.json_path.empty()) io::write_file_atomically(args.json_path, inference::scores_json(evaluation));
  }
  log::flush();
  return 0;
}

// export: rank 0 writes the files; other ranks of an mpirun exit 0.
int run_export(const Arguments& args, const dist::WorldInfo& world) {
  if (world.rank != 0) return 0;
  log::init(world.rank, args.log_level.empty() ? "info" : args.log_level);
  inference::ExportOptions options;
  options.checkpoint = args.checkpoint_path;
  options.output = args.output_path;
  options.domain = inference::parse_domain(args.domain);
  options.tile = args.tile;
  const inference::ExportResult result = inference::export_model(options);
  spdlog::info("exported {} ({} branch, traced at {}x{}) to {} and {}", args.checkpoint_path, args.domain,
               result.tile, result.tile, result.model_path, result.json_path);
  log::flush();
  return 0;
}

}  // namespace

int run_app(int argc, char** argv, const dist::WorldInfo& world, const TrainCommand& train) {
  const bool speaks = world.rank == 0;
  try {
    const Arguments args = parse_arguments(argc, argv);
    if (args.help) {
      if (speaks) std::cout << args.help_text;
      return 0;
    }
    if (args.version) {
      if (speaks) std::cout << version_text();
      return 0;
    }
    if (args.help_config) {
      // With --config, its plug-ins are loaded first: their methods are listed too.
      if (!args.config_path.empty()) setup::load_plugins(config::load_config(args.config_path, args.overrides));
      if (speaks) print_config_keys();
      return 0;
    }
    if (args.command == "predict" || args.command == "evaluate") return run_inference(args, world);
    if (args.command == "export") return run_export(args, world);
    config::Config config = config::load_config(args.config_path, args.overrides);
    if (!args.log_level.empty()) config.logging.level = args.log_level;
    if (args.print_config) {
      if (speaks) std::cout << config::to_yaml(config);
      return 0;
    }
    return train(config, args.resume_path, world);
  } catch (const config::UsageError& e) {
    if (speaks) std::fprintf(stderr, "da_dist: usage error: %s\n", e.what());
    return 2;
  } catch (const config::ConfigError& e) {
    if (speaks) std::fprintf(stderr, "da_dist: config error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "da_dist: error on rank %d: %s\n", world.rank, e.what());
    if (spdlog::default_logger()) log::flush();
    return 1;
  } catch (...) {
    std::fprintf(stderr, "da_dist: error on rank %d: unknown exception\n", world.rank);
    return 1;
  }
}

}  // namespace da::cli
