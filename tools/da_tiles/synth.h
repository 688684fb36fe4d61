// `da_tiles synth`: a small labelled two-domain data set for demos and tests.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace da::tiles {

struct SynthOptions {
  std::string out;
  int tiles = 320;
  int val_tiles = 64;
  int size = 64;
  std::uint64_t seed = 0;
};

// Declares the subcommand and its options (stored in `options`) on `app`.
CLI::App* add_synth_command(CLI::App& app, SynthOptions& options);

// Writes the four archives; returns the exit status.
int run_synth(const SynthOptions& options);

}  // namespace da::tiles
