// da_bench_loader: generates benchmark archives and times raw reads, direct
// chunk reads and io::TileLoader on them. tools/bench/loader_bench.sh runs
// the whole comparison (with h5py) and prints the table of README.md's
// "Performance / Loader" section.
#include <cstdio>
#include <exception>
#include <string>

#include "tools/bench/bench_common.h"

namespace {

const char* kUsage =
    "usage: da_bench_loader SUBCOMMAND ...\n"
    "  generate --out FILE [--bands 3] [--dtype uint8|uint16] [--size 512] [--tiles 64] [--deflate 0-9] [--seed 0]\n"
    "      one archive of image-like tiles (shuffle filter with deflate for uint16, as `da_tiles make`)\n"
    "  raw FILE... [--repeat 3] [--buffer-kib N]\n"
    "      read() of the whole file into one reused buffer (fastest of 64 KiB, 256 KiB, 1 MiB), page cache warmed by "
    "an untimed first pass\n"
    "  loader FILE [--workers 1] [--batch 16] [--prefetch 4] [--threads 1] [--repeat 3]\n"
    "         [--output normalized|stored]   stored: pixels as stored, normalised later on the device\n"
    "      io::TileLoader epochs (shuffled, dtype normalisation, no augmentation, no masks);\n"
    "      --threads sets at::set_num_threads; prints band 0's raw-value sum from an extra epoch\n"
    "  chunks FILE [--threads 2] [--repeat 3]\n"
    "      H5Dread vs H5Dread_chunk + own inflate (zlib, libdeflate) with 1..threads threads\n"
    "  breakdown FILE [--batch 16] [--threads 1] [--repeat 3]\n"
    "      one thread: TileArchive::read_image of every tile, the loader's conversion and\n"
    "      normalisation of in-memory tiles, and the same fused into one pass\n"
    "Results are lines 'RESULT kind=... key=value ...'; MB are MiB of decoded tile bytes\n"
    "(raw: file bytes).\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace da::bench;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    const Args args(argc, argv, 2);
    if (command == "generate") return run_generate(args);
    if (command == "raw") return run_raw(args);
    if (command == "loader") return run_loader(args);
    if (command == "chunks") return run_chunks(args);
    if (command == "breakdown") return run_breakdown(args);
    throw UsageError("unknown subcommand '" + command + "'");
  } catch (const UsageError& error) {
    std::fprintf(stderr, "da_bench_loader: %s\n%s", error.what(), kUsage);
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "da_bench_loader %s: %s\n", command.c_str(), error.what());
    return 1;
  }
}
