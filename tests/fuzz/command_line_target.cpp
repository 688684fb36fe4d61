// Fuzz target: the command lines of da_dist and da_tiles, parsed as the
// programs parse them (nothing is run). The first byte picks the program,
// the arguments follow separated by NUL bytes.
#include <CLI/CLI.hpp>

#include <vector>

#include "cli/arguments.h"
#include "command_line/parse.h"
#include "config/errors.h"
#include "fuzz_bytes.h"
#include "fuzz_targets.h"
#include "tiles_command_line.h"

namespace da::fuzz {

FuzzOutcome fuzz_command_line(const uint8_t* data, size_t size) {
  FuzzBytes in(data, size);
  const bool tiles = in.value<uint8_t>() % 2 == 1;
  std::vector<std::string> args = {tiles ? "da_tiles" : "da_dist"};
  while (!in.empty()) args.push_back(in.until('\0'));
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int argc = static_cast<int>(args.size());
  try {
    if (tiles) {
      const auto line = tiles::make_command_line();
      command_line::parse(*line->app, argc, argv.data());
    } else {
      cli::parse_arguments(argc, argv.data());
    }
    return FuzzOutcome{};
  } catch (const config::UsageError& error) {
    return refusal(error, "");
  }
}

}  // namespace da::fuzz
