// da_tiles: prepares and checks tile archives (spec/tile-archive.md).
// Exit status: 0 success, 1 runtime error (bad file, failed check), 2 usage error.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string>

#include "command_line/parse.h"
#include "config/errors.h"
#include "inspect.h"
#include "synth.h"
#ifdef DA_WITH_GDAL
#include "make_tiles.h"
#endif

int main(int argc, char** argv) {
  using namespace da::tiles;
  const auto app = da::command_line::make_app("da_tiles", "Prepares and checks tile archives (spec/tile-archive.md).");
  app->footer("exit status: 0 success, 1 runtime error (bad file, failed check), 2 usage error");
  app->require_subcommand(1);
  SynthOptions synth;
  const CLI::App* synth_command = add_synth_command(*app, synth);
  InspectOptions inspect;
  const CLI::App* inspect_command = add_inspect_command(*app, inspect);
#ifdef DA_WITH_GDAL
  MakeOptions make;
  add_make_command(*app, make);
#else
  // Still a command, so that using it says why it is missing.
  app->add_subcommand("make", "Cuts rasters into a tile archive (needs GDAL: not in this build)")->allow_extras();
#endif
  std::string command = "da_tiles";
  try {
    const std::string help = da::command_line::parse(*app, argc, argv);
    if (!help.empty()) {
      std::cout << help;
      return 0;
    }
    command += " " + app->get_subcommands().front()->get_name();
    if (synth_command->parsed()) return run_synth(synth);
    if (inspect_command->parsed()) return run_inspect(inspect);
#ifdef DA_WITH_GDAL
    return run_make(make);  // CLI11 requires one command: what is left is make

#else
    throw da::config::UsageError(
        "'make' reads rasters with GDAL: this da_tiles was built without it (DA_WITH_GDAL=OFF)");
#endif
  } catch (const da::config::UsageError& error) {
    std::cerr << command << ": " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << command << ": error: " << error.what() << "\n";
    return 1;
  }
}
