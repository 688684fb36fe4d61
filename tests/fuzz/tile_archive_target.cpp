// Fuzz target: tile archives, read the three ways we read them (da_tiles
// inspect --verify, TileArchive with and without direct chunk reads, and the
// loader's ArchiveSet). Both TileArchive paths must read the same bytes.
#include <cstring>
#include <iostream>
#include <vector>

#include "archive_description.h"
#include "fuzz_targets.h"
#include "inspect.h"
#include "io/archive_set.h"
#include "io/tile_archive.h"

namespace da::fuzz {
namespace {

// Larger tiles (up to io::kMaxTileBytes) are opened but not read: read in
// every way, under coverage instrumentation, they take tens of seconds
// (libFuzzer's hang limit is 10). Real tiles (512^2 x 4 uint16: 2 MiB) are read.
constexpr size_t kReadTileBytesAtMost = size_t{4} << 20;
// inspect --verify reads every tile: it runs on archives of at most this many bytes of tiles.
constexpr double kInspectedBytesAtMost = 16.0 * (1 << 20);

// The tiles a target reads itself: the first two and the last.
std::vector<int64_t> sampled_tiles(int64_t size) {
  std::vector<int64_t> tiles;
  for (int64_t i : {int64_t{0}, int64_t{1}, size - 1}) {
    if (i >= 0 && i < size && (tiles.empty() || tiles.back() != i)) tiles.push_back(i);
  }
  return tiles;
}

struct TileBytes {
  std::vector<uint8_t> image, mask;
  int64_t non_finite = 0;
};

TileBytes read_tile(const io::TileArchive& archive, int64_t index) {
  TileBytes tile;
  tile.image.resize(archive.image_bytes());
  tile.non_finite = archive.read_image(index, tile.image.data(), io::NonFinite::kReport);
  if (archive.info().has_masks) {
    tile.mask.resize(archive.mask_bytes());
    archive.read_mask(index, tile.mask.data());
  }
  if (archive.info().has_origin) archive.read_origin(index);
  if (archive.info().has_source_id) archive.read_source_id(index);
  if (archive.info().has_geotransform) archive.read_geotransform(index);
  return tile;
}

void read_archive(const std::string& path) {
  io::TileArchive direct(path);
  if (direct.image_bytes() > kReadTileBytesAtMost) return;
  io::TileArchive h5dread(path);
  h5dread.set_direct_chunk_reads(false);
  for (int64_t index : sampled_tiles(direct.size())) {
    const TileBytes a = read_tile(direct, index);
    const TileBytes b = read_tile(h5dread, index);
    if (a.image != b.image || a.mask != b.mask || a.non_finite != b.non_finite) {
      throw UnclearError("tile " + std::to_string(index) + " reads differently with and without direct chunk reads");
    }
  }
  const io::ArchiveSet set({path});
  std::vector<uint8_t> image(direct.image_bytes()), mask(direct.mask_bytes());
  for (int64_t index : sampled_tiles(set.size())) {
    set.read_image(index, image.data(), io::NonFinite::kReport);
    if (set.info().has_masks) set.read_mask(index, mask.data());
  }
  set.band_stats();
  if (static_cast<double>(direct.size()) * static_cast<double>(direct.image_bytes()) <= kInspectedBytesAtMost) {
    tiles::InspectOptions options;
    options.files = {path};
    options.verify = true;
    tiles::run_inspect(options);  // prints; its problems are ArchiveErrors it catches itself
  }
}

}  // namespace

FuzzOutcome fuzz_tile_archive(const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/archive.h5";
  build_archive(data, size, path);
  try {
    read_archive(path);
    return FuzzOutcome{};
  } catch (const io::ArchiveError& error) {
    return refusal(error, path);
  }
}

}  // namespace da::fuzz
