// da_bench_loader: generates benchmark archives and times raw reads, direct
// chunk reads and io::TileLoader on them. tools/bench/loader_bench.sh runs
// the whole comparison (with h5py) and prints the table of README.md's
// "Performance / Loader" section.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string>

#include "command_line/checks.h"
#include "command_line/parse.h"
#include "config/errors.h"
#include "tools/bench/bench_common.h"

namespace {

using namespace da::bench;
using da::command_line::integer_at_least;
using da::command_line::integer_in;
using da::command_line::one_of;

// Repetitions and threads, the same for every subcommand that has them.
void add_repeat(CLI::App& command, int& repeat) {
  command.add_option("--repeat", repeat, "timed passes")->check(integer_in(1, 100))->capture_default_str();
}

void add_threads(CLI::App& command, int& threads, const std::string& help) {
  command.add_option("--threads", threads, help)->check(integer_in(1, 64))->capture_default_str();
}

CLI::App* add_generate(CLI::App& app, GenerateOptions& o) {
  CLI::App* c = app.add_subcommand("generate",
                                   "One archive of image-like tiles (shuffle filter with deflate for "
                                   "uint16, as `da_tiles make`)");
  c->add_option("--out", o.out, "the archive to write")->type_name("FILE")->required();
  c->add_option("--bands", o.bands, "bands per tile")->check(integer_in(1, 16))->capture_default_str();
  c->add_option("--dtype", o.dtype, "pixel type")->check(one_of("dtype", {"uint8", "uint16"}))->capture_default_str();
  c->add_option("--size", o.size, "tile size in pixels")->check(integer_in(8, 4096))->capture_default_str();
  c->add_option("--tiles", o.tiles, "tiles")->check(integer_in(1, 100000000))->capture_default_str();
  c->add_option("--deflate", o.deflate, "deflate level (0: none)")->check(integer_in(0, 9))->capture_default_str();
  c->add_option("--seed", o.seed, "random seed")->check(integer_at_least(0))->capture_default_str();
  return c;
}

CLI::App* add_raw(CLI::App& app, RawOptions& o) {
  CLI::App* c = app.add_subcommand("raw",
                                   "read() of the whole file into one reused buffer (fastest of 64 KiB, "
                                   "256 KiB, 1 MiB), page cache warmed by an untimed first pass");
  c->add_option("FILE", o.files, "files to read")->required();
  add_repeat(*c, o.repeat);
  c->add_option("--buffer-kib", o.buffer_kib, "only this buffer size")->check(integer_in(4, 1 << 20));
  return c;
}

CLI::App* add_loader(CLI::App& app, LoaderPassOptions& o) {
  CLI::App* c = app.add_subcommand("loader",
                                   "io::TileLoader epochs (shuffled, dtype normalisation, no augmentation, no masks);\n"
                                   "prints band 0's raw-value sum from an extra epoch");
  c->add_option("FILE", o.file, "tile archive")->required();
  c->add_option("--workers", o.workers, "loader threads")->check(integer_in(0, 64))->capture_default_str();
  c->add_option("--batch", o.batch, "tiles per batch")->check(integer_in(1, 4096))->capture_default_str();
  c->add_option("--prefetch", o.prefetch, "batches in flight")->check(integer_in(1, 1024))->capture_default_str();
  add_threads(*c, o.threads, "at::set_num_threads");
  add_repeat(*c, o.repeat);
  c->add_option("--output", o.output, "stored: pixels as stored, normalised later on the device")
      ->check(one_of("output", {"normalized", "stored"}))
      ->capture_default_str();
  c->add_option("--world", o.world, "ranks the tiles are split across (DistributedSampler)")
      ->check(integer_in(1, 4096))
      ->capture_default_str();
  c->add_option("--rank", o.rank, "this process's rank, below --world")->check(integer_in(0, 4095))->capture_default_str();
  c->add_option("--max-open", o.max_open, "archive files each loader thread keeps open")
      ->check(integer_in(1, 1000000))
      ->capture_default_str();
  c->add_option("--max-batches", o.max_batches,
                "time only this many batches of each epoch (archives larger than an epoch's patience); "
                "0: whole epochs. Skips the checksum epoch")
      ->check(integer_in(0, 1000000000))
      ->capture_default_str();
  return c;
}

CLI::App* add_chunks(CLI::App& app, ChunksOptions& o) {
  CLI::App* c = app.add_subcommand("chunks",
                                   "H5Dread vs H5Dread_chunk + own inflate (zlib, libdeflate) with "
                                   "1..threads threads");
  c->add_option("FILE", o.file, "tile archive")->required();
  add_threads(*c, o.threads, "most threads");
  add_repeat(*c, o.repeat);
  return c;
}

CLI::App* add_breakdown(CLI::App& app, BreakdownOptions& o) {
  CLI::App* c = app.add_subcommand("breakdown",
                                   "One thread: TileArchive::read_image of every tile, the loader's conversion and\n"
                                   "normalisation of in-memory tiles, and the same fused into one pass");
  c->add_option("FILE", o.file, "tile archive (uint8 or uint16)")->required();
  c->add_option("--batch", o.batch, "tiles per batch")->check(integer_in(1, 4096))->capture_default_str();
  add_threads(*c, o.threads, "at::set_num_threads");
  add_repeat(*c, o.repeat);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const auto app = da::command_line::make_app("da_bench_loader", "Tile archive read benchmarks.");
  app->footer(
      "Results are lines 'RESULT kind=... key=value ...'; MB are MiB of decoded tile bytes\n"
      "(raw: file bytes).");
  app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app->require_subcommand(1);
  GenerateOptions generate;
  RawOptions raw;
  LoaderPassOptions loader;
  ChunksOptions chunks;
  BreakdownOptions breakdown;
  const CLI::App* generate_command = add_generate(*app, generate);
  const CLI::App* raw_command = add_raw(*app, raw);
  const CLI::App* loader_command = add_loader(*app, loader);
  const CLI::App* chunks_command = add_chunks(*app, chunks);
  add_breakdown(*app, breakdown);
  std::string command;
  try {
    const std::string help = da::command_line::parse(*app, argc, argv);
    if (!help.empty()) {
      std::cout << help;
      return 0;
    }
    command = app->get_subcommands().front()->get_name();
    if (generate_command->parsed()) return run_generate(generate);
    if (raw_command->parsed()) return run_raw(raw);
    if (loader_command->parsed()) return run_loader(loader);
    if (chunks_command->parsed()) return run_chunks(chunks);
    return run_breakdown(breakdown);  // CLI11 requires one command: what is left
  } catch (const da::config::UsageError& error) {
    // The help of the command that failed (or of all) after the message.
    std::cerr << "da_bench_loader: " << error.what() << "\n" << app->help();
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "da_bench_loader " << command << ": " << error.what() << "\n";
    return 1;
  }
}
