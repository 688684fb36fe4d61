#include "tiles_command_line.h"

#include "command_line/parse.h"

namespace da::tiles {

std::unique_ptr<TilesCommandLine> make_command_line() {
  auto line = std::make_unique<TilesCommandLine>();
  line->app = da::command_line::make_app("da_tiles", "Prepares and checks tile archives (spec/tile-archive.md).");
  CLI::App& app = *line->app;
  app.footer("exit status: 0 success, 1 runtime error (bad file, failed check), 2 usage error");
  app.require_subcommand(1);
  line->synth_command = add_synth_command(app, line->synth);
  line->inspect_command = add_inspect_command(app, line->inspect);
#ifdef DA_WITH_GDAL
  add_make_command(app, line->make);
#else
  // Still a command, so that using it says why it is missing.
  app.add_subcommand("make", "Cuts rasters into a tile archive (needs GDAL: not in this build)")->allow_extras();
#endif
  return line;
}

}  // namespace da::tiles
