// The fuzz targets: what each feeds its input to, and what counts as a
// finding. An input may be accepted or refused; it is refused well when the
// error is our own clear kind (ArchiveError naming the file, ConfigError,
// UsageError, a checkpoint error naming the file) in one line. A crash, a
// leak, a hang, another exception or an unclear message is a finding:
// libFuzzer stops on it (fuzz_main.cpp), the regression test fails on it
// (test_fuzz_regressions.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace da::fuzz {

struct FuzzOutcome {
  bool refused = false;
  std::string error;  // the refusal's message
};

// Thrown for an error that is not clear: its kind, or a message that does
// not name what it must.
class UnclearError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Tile archives (archive_description.h), read as da_tiles inspect --verify
// and the loader read them.
FuzzOutcome fuzz_tile_archive(const uint8_t* data, size_t size);
// Configs: the main YAML, then after NUL bytes the included file's text and
// `--set` overrides.
FuzzOutcome fuzz_config(const uint8_t* data, size_t size);
// Checkpoint files, read as resume, predict and the elastic resume read them.
FuzzOutcome fuzz_checkpoint(const uint8_t* data, size_t size);
// Command lines: the first byte picks da_dist or da_tiles, the arguments
// follow separated by NUL bytes.
FuzzOutcome fuzz_command_line(const uint8_t* data, size_t size);
#ifdef DA_WITH_GDAL
// GeoTIFF files, read as `da_tiles make` and `da_dist predict --scene` read rasters.
FuzzOutcome fuzz_raster(const uint8_t* data, size_t size);
#endif

using FuzzTarget = FuzzOutcome (*)(const uint8_t*, size_t);

// A directory of this process for the files a target writes, removed at exit.
const std::string& scratch_dir();

// Refusal of `error` when it is one line containing `must_name`; UnclearError otherwise.
FuzzOutcome refusal(const std::exception& error, const std::string& must_name);

}  // namespace da::fuzz
