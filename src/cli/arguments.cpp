#include "cli/arguments.h"

#include <algorithm>
#include <exception>

#include "config/errors.h"
#include "config/suggest.h"
#include "inference/tta.h"

namespace da::cli {
namespace {

const std::vector<std::string> kOptions = {"--config",    "--set",     "--print-config", "--resume",
                                           "--log-level", "--version", "--help",         "--help-config"};
const std::vector<std::string> kCommands = {"train", "predict", "evaluate", "export"};
const std::vector<std::string> kPredictOptions = {"--checkpoint", "--input",      "--output",     "--probabilities",
                                                  "--geotiff",    "--domain",     "--batch-size", "--log-level",
                                                  "--scene",      "--output-dir", "--window",     "--overlap",
                                                  "--confidence", "--tta",        "--strip-rows", "--host-allocator",
                                                  "--help"};
const std::vector<std::string> kEvaluateOptions = {"--checkpoint", "--input",     "--domain",         "--json",
                                                   "--batch-size", "--log-level", "--host-allocator", "--help"};
const std::vector<std::string> kExportOptions = {"--checkpoint", "--output", "--domain", "--tile", "--log-level",
                                                 "--help"};
const std::vector<std::string> kDomains = {"source", "target"};
const std::vector<std::string> kHostAllocators = {"retain", "system"};
const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error"};

void check_log_level(const std::string& level) {
  bool known = false;
  for (const auto& l : kLogLevels) known = known || l == level;
  if (!known) {
    throw config::UsageError("--log-level: unknown level '" + level + "', valid levels are " +
                             config::quoted_list(kLogLevels));
  }
}

// A whole number >= `min` given to `option`.
std::int64_t parse_count(const std::string& option, const std::string& text, long long min) {
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || n < min) {
    throw config::UsageError(option + ": expected " + (min > 0 ? "a positive" : "a non-negative") +
                             " integer, got '" + text + "'");
  }
  return n;
}

// predict / evaluate / export: argv[i..] are options of `args.command`.
void parse_inference_arguments(Arguments& args, int argc, char** argv, int i) {
  using config::UsageError;
  const bool predict = args.command == "predict";
  const bool exporting = args.command == "export";
  const std::vector<std::string>& known = predict ? kPredictOptions : exporting ? kExportOptions : kEvaluateOptions;
  for (; i < argc; ++i) {
    std::string option = argv[i];
    std::string value;
    bool inline_value = false;
    if (const auto eq = option.find('='); option.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = option.substr(eq + 1);
      option = option.substr(0, eq);
      inline_value = true;
    }
    const bool allowed = std::find(known.begin(), known.end(), option) != known.end() || option == "-h";
    if (!allowed) {
      std::string msg = "unknown option '" + option + "' for " + args.command;
      const std::string near = config::closest_match(option, known);
      if (!near.empty()) msg += ", did you mean '" + near + "'?";
      throw UsageError(msg + " (see --help)");
    }
    auto take_value = [&]() {
      if (inline_value) return value;
      if (i + 1 >= argc) throw UsageError(option + " needs a value");
      return std::string(argv[++i]);
    };
    if (option == "--checkpoint") {
      args.checkpoint_path = take_value();
    } else if (option == "--input") {
      // One or more archives: every following argument up to the next option.
      const std::size_t before = args.inputs.size();
      if (inline_value) {
        args.inputs.push_back(value);
      } else {
        while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) args.inputs.emplace_back(argv[++i]);
      }
      if (args.inputs.size() == before || args.inputs.back().empty()) {
        throw UsageError("--input needs at least one archive");
      }
    } else if (option == "--scene") {
      const std::size_t before = args.scenes.size();
      if (inline_value) {
        args.scenes.push_back(value);
      } else {
        while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) args.scenes.emplace_back(argv[++i]);
      }
      if (args.scenes.size() == before || args.scenes.back().empty()) throw UsageError("--scene needs at least one raster");
    } else if (option == "--output-dir") {
      args.output_dir = take_value();
    } else if (option == "--window" || option == "--overlap") {
      const std::int64_t n = parse_count(option, take_value(), option == "--window" ? 1 : 0);
      (option == "--window" ? args.window : args.overlap) = n;
    } else if (option == "--confidence") {
      if (inline_value) throw UsageError("--confidence takes no value");
      args.confidence = true;
    } else if (option == "--tta") {
      args.tta = take_value();
      const auto& modes = inference::tta_names();
      if (std::find(modes.begin(), modes.end(), args.tta) == modes.end()) {
        throw UsageError("--tta: unknown mode '" + args.tta + "', valid modes are " + config::quoted_list(modes));
      }
    } else if (option == "--strip-rows") {
      args.strip_rows = parse_count(option, take_value(), 1);
    } else if (option == "--output") {
      args.output_path = take_value();
    } else if (option == "--probabilities") {
      if (inline_value) throw UsageError("--probabilities takes no value");
      args.probabilities = true;
    } else if (option == "--geotiff") {
      args.geotiff_dir = take_value();
    } else if (option == "--json") {
      args.json_path = take_value();
    } else if (option == "--domain") {
      args.domain = take_value();
      if (std::find(kDomains.begin(), kDomains.end(), args.domain) == kDomains.end()) {
        throw UsageError("--domain: unknown domain '" + args.domain + "', valid domains are " +
                         config::quoted_list(kDomains));
      }
    } else if (option == "--host-allocator") {
      args.host_allocator = take_value();
      if (std::find(kHostAllocators.begin(), kHostAllocators.end(), args.host_allocator) == kHostAllocators.end()) {
        throw UsageError("--host-allocator: unknown mode '" + args.host_allocator + "', valid modes are " +
                         config::quoted_list(kHostAllocators));
      }
    } else if (option == "--tile") {
      const std::string text = take_value();
      args.tile = parse_count(option, text, 1);
      if (args.tile % 32 != 0) {
        throw UsageError("--tile: expected a multiple of 32 (the model's stride), got '" + text + "'");
      }
    } else if (option == "--batch-size") {
      args.batch_size = parse_count(option, take_value(), 1);
    } else if (option == "--log-level") {
      args.log_level = take_value();
      check_log_level(args.log_level);
    } else {  // --help, -h
      args.help = true;
    }
  }
  if (args.help) return;
  if (args.checkpoint_path.empty()) throw UsageError(args.command + ": --checkpoint CKPT is required (see --help)");
  if (exporting) {
    if (args.output_path.empty()) throw UsageError("export: --output FILE.pt or DIR is required (see --help)");
    return;
  }
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

std::string usage_text() {
  return "usage: da_dist [train] --config FILE [--set KEY=VALUE]... [--print-config]\n"
         "               [--resume CHECKPOINT] [--log-level LEVEL] [--version] [--help]\n"
         "       da_dist predict --checkpoint CKPT --input ARCHIVE... --output OUT.h5 [--probabilities]\n"
         "               [--geotiff DIR] [--domain source|target] [--batch-size N] [--log-level LEVEL]\n"
         "       da_dist predict --checkpoint CKPT --scene RASTER... --output-dir DIR [--window 256]\n"
         "               [--overlap 32] [--confidence] [--tta none|flips|d4] [--strip-rows N]\n"
         "               [--domain source|target] [--batch-size N] [--host-allocator retain|system]\n"
         "       da_dist evaluate --checkpoint CKPT --input ARCHIVE... [--domain source|target] [--json FILE]\n"
         "               [--batch-size N] [--log-level LEVEL] [--host-allocator retain|system]\n"
         "       da_dist export --checkpoint CKPT --output FILE.pt|DIR [--domain source|target] [--tile N]\n"
         "\n"
         "Trains a segmentation model with domain adaptation, data-parallel under mpirun;\n"
         "predicts class masks for a tile archive, or evaluates a checkpoint on a labelled one;\n"
         "exports a checkpoint's model as TorchScript for PyTorch.\n"
         "\n"
         "options:\n"
         "  --config FILE        YAML configuration (may `include:` a base file)\n"
         "  --set KEY=VALUE      override one option by its dotted path, e.g. --set optimizer.lr=3e-4\n"
         "                       (repeatable; VALUE is parsed as YAML, so lists work: --set a.b=[1,2])\n"
         "  --print-config       print the resolved configuration and exit\n"
         "  --resume CHECKPOINT  continue a run exactly from a checkpoint\n"
         "  --log-level LEVEL    trace, debug, info, warn or error (overrides logging.level)\n"
         "  --help-config        list every configuration key with its type and meaning\n"
         "  --version            print the versions of da_dist and its libraries\n"
         "  --help               this text\n"
         "\n"
         "predict / evaluate (rank 0 does the work; other ranks of an mpirun exit 0):\n"
         "  --checkpoint CKPT    a training checkpoint (model weights and the configuration it was trained with)\n"
         "  --input ARCHIVE...   tile archives (files or globs, shards of one set)\n"
         "  --output OUT.h5      predict: archive with the predicted classes as /masks (written atomically)\n"
         "  --probabilities      predict: also /probabilities [N,K,H,W] float32 (softmax)\n"
         "  --geotiff DIR        predict: one LZW GeoTIFF of classes per tile that has a geotransform\n"
         "  --scene RASTER...    predict whole rasters (GeoTIFF, VRT, ...) with a sliding window into\n"
         "                       --output-dir DIR: <name>_classes.tif (uint8, nodata 255), with --confidence\n"
         "                       also <name>_confidence.tif; --window N and --overlap N in pixels;\n"
         "                       --tta flips|d4 averages the softmax over 4 flips or the 8 flips and\n"
         "                       rotations of each window (default none); under mpirun the scenes are\n"
         "                       shared across the ranks, whole or (those left over from whole rounds,\n"
         "                       all when there are fewer scenes than ranks) in strips of at most\n"
         "                       --strip-rows N rows over all ranks (default about 32 Mpixels a strip)\n"
         "  --domain D           BatchNorm branch of a bn_mode: dsbn model (default target; no effect otherwise)\n"
         "  --batch-size N       tiles per forward pass (default: the checkpoint's validation batch size)\n"
         "  --json FILE          evaluate: also write the metrics as JSON\n"
         "  --host-allocator M   retain (default): freed host memory is kept for the next batch instead of\n"
         "                       being page-faulted in again; system: the C library's defaults\n"
         "                       (as run.host_allocator for training)\n"
         "\n"
         "export (rank 0 does the work):\n"
         "  --output FILE.pt|DIR the model as TorchScript for torch.jit.load (DIR: DIR/model.pt), plus\n"
         "                       FILE.json: bands, classes, normalisation, tile size (written atomically)\n"
         "  --domain D           BatchNorm branch and training data (normalisation) of a dsbn model\n"
         "  --tile N             the tile size (a multiple of 32) to trace with and record (default: training's);\n"
         "                       the model runs on any multiple of 32\n"
         "\n"
         "exit status: 0 success, 2 usage or configuration error, 1 runtime failure\n";
}

Arguments parse_arguments(int argc, char** argv) {
  using config::UsageError;
  Arguments args;
  int i = 1;
  if (i < argc && argv[i][0] != '-') {
    args.command = argv[i];
    if (std::find(kCommands.begin(), kCommands.end(), args.command) == kCommands.end()) {
      std::string msg = "unknown command '" + args.command + "'";
      const std::string near = config::closest_match(args.command, kCommands);
      msg += near.empty() ? "; commands are " + config::quoted_list(kCommands) : ", did you mean '" + near + "'?";
      throw UsageError(msg);
    }
    ++i;
  }
  if (args.command != "train") {
    parse_inference_arguments(args, argc, argv, i);
    return args;
  }
  for (; i < argc; ++i) {
    std::string option = argv[i];
    std::string value;
    bool inline_value = false;
    if (const auto eq = option.find('='); option.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = option.substr(eq + 1);  // --config=x.yaml form
      option = option.substr(0, eq);
      inline_value = true;
    }
    auto take_value = [&](const char* name) {
      if (inline_value) return value;
      if (i + 1 >= argc) throw UsageError(std::string(name) + " needs a value");
      return std::string(argv[++i]);
    };
    if (option == "--config") {
      args.config_path = take_value("--config");
    } else if (option == "--set") {
      args.overrides.push_back(take_value("--set"));
    } else if (option == "--resume") {
      args.resume_path = take_value("--resume");
    } else if (option == "--log-level") {
      args.log_level = take_value("--log-level");
      check_log_level(args.log_level);
    } else if (option == "--print-config") {
      args.print_config = true;
    } else if (option == "--help" || option == "-h") {
      args.help = true;
    } else if (option == "--help-config") {
      args.help_config = true;
    } else if (option == "--version") {
      args.version = true;
    } else {
      std::string msg = "unknown option '" + option + "'";
      const std::string near = config::closest_match(option, kOptions);
      if (!near.empty()) msg += ", did you mean '" + near + "'?";
      throw UsageError(msg + " (see --help)");
    }
  }
  if (!args.help && !args.version && !args.help_config && args.config_path.empty()) {
    throw UsageError("--config FILE is required (see --help)");
  }
  return args;
}

}  // namespace da::cli
