#include "cli/arguments.h"

#include <CLI/CLI.hpp>

#include "command_line/checks.h"
#include "command_line/parse.h"
#include "config/errors.h"
#include "inference/tta.h"

namespace da::cli {
namespace {

using command_line::integer_at_least;
using command_line::one_of;
using config::UsageError;

const std::vector<std::string> kDomains = {"source", "target"};
const std::vector<std::string> kHostAllocators = {"retain", "system"};
const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error"};

// Options that several commands share, with the same meaning.

void add_log_level(CLI::App& command, Arguments& args, const std::string& note) {
  command.add_option("--log-level", args.log_level, "log level" + note)
      ->type_name("LEVEL")
      ->check(one_of("level", kLogLevels));
}

void add_checkpoint(CLI::App& command, Arguments& args) {
  command
      .add_option("--checkpoint", args.checkpoint_path,
                  "a training checkpoint (model weights and the configuration it was trained with)")
      ->type_name("CKPT");
}

void add_inputs(CLI::App& command, Arguments& args) {
  command.add_option("--input", args.inputs, "tile archives (files or globs, shards of one set)")->type_name("ARCHIVE");
}

void add_domain(CLI::App& command, Arguments& args, const std::string& help) {
  command.add_option("--domain", args.domain, help)->check(one_of("domain", kDomains))->capture_default_str();
}

void add_batch_size(CLI::App& command, Arguments& args) {
  command
      .add_option("--batch-size", args.batch_size,
                  "tiles per forward pass (default: the checkpoint's validation batch size)")
      ->type_name("N")
      ->check(integer_at_least(1));
}

void add_host_allocator(CLI::App& command, Arguments& args) {
  command
      .add_option("--host-allocator", args.host_allocator,
                  "retain: freed host memory is kept for the next batch instead of being page-faulted\n"
                  "in again; system: the C library's defaults (as run.host_allocator for training)")
      ->check(one_of("mode", kHostAllocators))
      ->capture_default_str();
}

void add_train(CLI::App& app, Arguments& args) {
  CLI::App& train =
      *app.add_subcommand("train",
                          "Trains a segmentation model with domain adaptation, data-parallel under mpirun.\n"
                          "The default command: `da_dist --config FILE` is `da_dist train --config FILE`.");
  train.add_option("--config", args.config_path, "YAML configuration (may `include:` a base file); required")
      ->type_name("FILE");
  train
      .add_option("--set", args.overrides,
                  "override one option by its dotted path, e.g. --set optimizer.lr=3e-4\n"
                  "(repeatable; VALUE is parsed as YAML, so lists work: --set a.b=[1,2])")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);  // one override per --set
  train.add_flag("--print-config", args.print_config, "print the resolved configuration and exit");
  train.add_option("--resume", args.resume_path, "continue a run exactly from a checkpoint")->type_name("CHECKPOINT");
  add_log_level(train, args, " (overrides logging.level)");
  train.add_flag("--help-config", args.help_config,
                 "list every configuration key with its type and meaning, then every method's parameters with "
                 "their defaults and sources (with --config, its plug-ins' too)");
  train.add_flag("--version", args.version, "print the versions of da_dist and its libraries");
}

void add_predict(CLI::App& app, Arguments& args) {
  CLI::App& predict = *app.add_subcommand(
      "predict",
      "Predicts class masks for a tile archive (--input, --output) or for whole rasters\n"
      "(--scene, --output-dir). Rank 0 does the work on archives; other ranks of an mpirun exit 0.");
  add_checkpoint(predict, args);
  add_inputs(predict, args);
  predict.add_option("--output", args.output_path, "archive with the predicted classes as /masks (written atomically)")
      ->type_name("OUT.h5");
  predict.add_flag("--probabilities", args.probabilities, "also /probabilities [N,K,H,W] float32 (softmax)");
  predict.add_option("--geotiff", args.geotiff_dir, "one LZW GeoTIFF of classes per tile that has a geotransform")
      ->type_name("DIR");
  predict
      .add_option("--scene", args.scenes,
                  "predict whole rasters (GeoTIFF, VRT, ...) with a sliding window into --output-dir:\n"
                  "<name>_classes.tif (uint8, nodata 255); under mpirun the scenes are shared across\n"
                  "the ranks, whole or (those left over from whole rounds, all when there are fewer\n"
                  "scenes than ranks) in strips of at most --strip-rows rows over all ranks")
      ->type_name("RASTER");
  predict.add_option("--output-dir", args.output_dir, "where --scene writes its GeoTIFFs")->type_name("DIR");
  predict.add_option("--window", args.window, "--scene: window size in pixels")
      ->type_name("N")
      ->check(integer_at_least(1))
      ->capture_default_str();
  predict.add_option("--overlap", args.overlap, "--scene: overlap of neighbouring windows in pixels (< --window)")
      ->type_name("N")
      ->check(integer_at_least(0))
      ->capture_default_str();
  predict.add_flag("--confidence", args.confidence, "--scene: also <name>_confidence.tif");
  predict
      .add_option("--tta", args.tta,
                  "--scene: flips or d4 average the softmax over 4 flips or the 8 flips and rotations\n"
                  "of each window")
      ->check(one_of("mode", inference::tta_names()))
      ->capture_default_str();
  predict.add_option("--strip-rows", args.strip_rows, "--scene: rows of a strip (default about 32 Mpixels a strip)")
      ->type_name("N")
      ->check(integer_at_least(1));
  add_domain(predict, args, "BatchNorm branch of a bn_mode: dsbn model (no effect otherwise)");
  add_batch_size(predict, args);
  add_log_level(predict, args, "");
  add_host_allocator(predict, args);
}

void add_evaluate(CLI::App& app, Arguments& args) {
  CLI::App& evaluate = *app.add_subcommand(
      "evaluate", "Evaluates a checkpoint on a labelled tile archive. Rank 0 does the work; other ranks exit 0.");
  add_checkpoint(evaluate, args);
  add_inputs(evaluate, args);
  add_domain(evaluate, args, "BatchNorm branch of a bn_mode: dsbn model (no effect otherwise)");
  evaluate.add_option("--json", args.json_path, "also write the metrics as JSON")->type_name("FILE");
  add_batch_size(evaluate, args);
  add_log_level(evaluate, args, "");
  add_host_allocator(evaluate, args);
}

void add_export(CLI::App& app, Arguments& args) {
  CLI::App& exporting =
      *app.add_subcommand("export", "Exports a checkpoint's model as TorchScript for PyTorch. Rank 0 does the work.");
  add_checkpoint(exporting, args);
  exporting
      .add_option("--output", args.output_path,
                  "the model as TorchScript for torch.jit.load (DIR: DIR/model.pt), plus FILE.json:\n"
                  "bands, classes, normalisation, tile size (written atomically)")
      ->type_name("FILE.pt|DIR");
  add_domain(exporting, args, "BatchNorm branch and training data (normalisation) of a dsbn model");
  exporting
      .add_option("--tile", args.tile,
                  "the tile size to trace with and record (default: training's); the model runs on\n"
                  "any multiple of 32")
      ->type_name("N")
      ->check(integer_at_least(1))
      ->check(CLI::Validator(
          [](std::string& text) {
            return std::stoll(text) % 32 == 0 ? std::string()
                                              : "expected a multiple of 32 (the model's stride), got '" + text + "'";
          },
          ""));
  add_log_level(exporting, args, "");
}

// What each command needs beyond single options.
void check_combination(const Arguments& args) {
  if (args.command == "train") {
    if (!args.version && !args.help_config && args.config_path.empty()) {
      throw UsageError("--config FILE is required (see --help)");
    }
    return;
  }
  if (args.checkpoint_path.empty()) throw UsageError(args.command + ": --checkpoint CKPT is required (see --help)");
  if (args.command == "export") {
    if (args.output_path.empty()) throw UsageError("export: --output FILE.pt or DIR is required (see --help)");
    return;
  }
  const bool predict = args.command == "predict";
  if (predict && !args.scenes.empty()) {
    if (!args.inputs.empty()) throw UsageError("predict: give --scene RASTER... or --input ARCHIVE..., not both");
    if (args.output_dir.empty()) throw UsageError("predict: --scene needs --output-dir DIR (see --help)");
    if (args.overlap >= args.window) {
      throw UsageError("--overlap " + std::to_string(args.overlap) + " must be smaller than --window " +
                       std::to_string(args.window));
    }
    return;
  }
  if (predict && (args.tta != "none" || args.strip_rows > 0)) {
    throw UsageError("predict: --tta and --strip-rows apply to --scene RASTER... only");
  }
  if (args.inputs.empty()) throw UsageError(args.command + ": --input ARCHIVE... is required (see --help)");
  if (predict && args.output_path.empty()) throw UsageError("predict: --output OUT.h5 is required (see --help)");
}

}  // namespace

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  const auto app = command_line::make_app(
      "da_dist",
      "Trains a segmentation model with domain adaptation, data-parallel under mpirun;\n"
      "predicts class masks for a tile archive, or evaluates a checkpoint on a labelled one;\n"
      "exports a checkpoint's model as TorchScript for PyTorch. `da_dist COMMAND --help` for one command.");
  app->footer("exit status: 0 success, 2 usage or configuration error, 1 runtime failure");
  // As ever, the last of a repeated option wins (--set and --input collect).
  app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app->require_subcommand(1);
  add_train(*app, args);
  add_predict(*app, args);
  add_evaluate(*app, args);
  add_export(*app, args);
  args.help_text = command_line::parse(*app, argc, argv, "train");
  args.help = !args.help_text.empty();
  if (args.help) return args;
  args.command = app->get_subcommands().front()->get_name();
  check_combination(args);
  return args;
}

}  // namespace da::cli
