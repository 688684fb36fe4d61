// da_tiles: prepares and checks tile archives (spec/tile-archive.md).
// Exit status: 0 success, 1 runtime error (bad file, failed check), 2 usage error.
#include <exception>
#include <iostream>
#include <string>

#include "command_line/parse.h"
#include "config/errors.h"
#include "tiles_command_line.h"

int main(int argc, char** argv) {
  using namespace da::tiles;
  const std::unique_ptr<TilesCommandLine> line = make_command_line();
  std::string command = "da_tiles";
  try {
    const std::string help = da::command_line::parse(*line->app, argc, argv);
    if (!help.empty()) {
      std::cout << help;
      return 0;
    }
    command += " " + line->app->get_subcommands().front()->get_name();
    if (line->synth_command->parsed()) return run_synth(line->synth);
    if (line->inspect_command->parsed()) return run_inspect(line->inspect);
#ifdef DA_WITH_GDAL
    return run_make(line->make);  // CLI11 requires one command: what is left is make
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
