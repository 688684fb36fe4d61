// da_tiles: prepares and checks tile archives (spec/tile-archive.md).
// Exit status: 0 success, 1 runtime error (bad file, failed check), 2 usage error.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "inspect.h"
#include "options.h"
#include "synth.h"
#ifdef DA_WITH_GDAL
#include "make_tiles.h"
#endif

namespace {

constexpr const char* kUsage =
    "usage: da_tiles synth --out DIR [--tiles N=320] [--val-tiles M=64] [--size S=64] [--seed K=0]\n"
    "       da_tiles inspect FILE... [--verify]\n"
    "       da_tiles make --image RASTER [--labels RASTER] --out FILE --tile-size T [--stride S=T]\n"
    "                     [--max-nodata F=0] [--max-ignore F=1] [--deflate L=4] [--domain NAME=out file stem]\n"
    "                     [--classes a,b,c] [--bands a,b,c] [--ignore-index I=255]\n"
    "         --image/--labels may repeat, in pairs; --classes is required with --labels\n";

int dispatch(const std::string& command, const std::vector<std::string>& args) {
  if (command == "synth") return da::tiles::run_synth(args);
  if (command == "inspect") return da::tiles::run_inspect(args);
#ifdef DA_WITH_GDAL
  if (command == "make") return da::tiles::run_make(args);
#else
  if (command == "make") {
    throw da::tiles::UsageError(
        "'make' reads rasters with GDAL: this da_tiles was built without it (DA_WITH_GDAL=OFF)");
  }
#endif
  throw da::tiles::UsageError("unknown subcommand '" + command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  try {
    return dispatch(command, std::vector<std::string>(argv + 2, argv + argc));
  } catch (const da::tiles::UsageError& error) {
    std::cerr << "da_tiles " << command << ": " << error.what() << " (see da_tiles --help)\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "da_tiles " << command << ": error: " << error.what() << "\n";
    return 1;
  }
}
