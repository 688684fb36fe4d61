// The da_tiles command line: its commands and their options, apart from
// running them, so that main.cpp and the command-line tests and fuzzing
// parse exactly what users type.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

#include "inspect.h"
#include "synth.h"
#ifdef DA_WITH_GDAL
#include "make_tiles.h"
#endif

namespace da::tiles {

struct TilesCommandLine {
  std::unique_ptr<CLI::App> app;
  SynthOptions synth;
  InspectOptions inspect;
  const CLI::App* synth_command = nullptr;
  const CLI::App* inspect_command = nullptr;
#ifdef DA_WITH_GDAL
  MakeOptions make;
#endif
};

// Heap-allocated: CLI11 keeps pointers to the options it fills.
std::unique_ptr<TilesCommandLine> make_command_line();

}  // namespace da::tiles
