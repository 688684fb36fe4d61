#include "cli/arguments.h"

#include "config/errors.h"
#include "config/suggest.h"

namespace da::cli {
namespace {

const std::vector<std::string> kOptions = {"--config", "--set",      "--print-config", "--resume", "--log-level",
                                           "--version", "--help",    "--help-config"};
const std::vector<std::string> kCommands = {"train"};
const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error"};

}  // namespace

std::string usage_text() {
  return "usage: da_dist [train] --config FILE [--set KEY=VALUE]... [--print-config]\n"
         "               [--resume CHECKPOINT] [--log-level LEVEL] [--version] [--help]\n"
         "\n"
         "Trains a segmentation model with domain adaptation, data-parallel under mpirun.\n"
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
         "exit status: 0 success, 2 usage or configuration error, 1 runtime failure\n";
}

Arguments parse_arguments(int argc, char** argv) {
  using config::UsageError;
  Arguments args;
  int i = 1;
  if (i < argc && argv[i][0] != '-') {
    args.command = argv[i];
    if (args.command != "train") {
      std::string msg = "unknown command '" + args.command + "'";
      const std::string near = config::closest_match(args.command, kCommands);
      msg += near.empty() ? "; commands are " + config::quoted_list(kCommands) : ", did you mean '" + near + "'?";
      throw UsageError(msg);
    }
    ++i;
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
      bool known = false;
      for (const auto& l : kLogLevels) known = known || l == args.log_level;
      if (!known) {
        throw UsageError("--log-level: unknown level '" + args.log_level + "', valid levels are " +
                         config::quoted_list(kLogLevels));
      }
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
