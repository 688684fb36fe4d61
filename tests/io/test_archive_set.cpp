// ArchiveSet: shards named by path or glob read as one archive; shards that
// disagree and patterns that match nothing are refused by name; at most
// max_open shards stay open.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "io/archive_fixtures.h"
#include "io/archive_set.h"
#include "io/pixel_type.h"
#include "support/process.h"

namespace da::io {
namespace {

namespace fs = std::filesystem;
using test::archive_error_of;

class ArchiveSetTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = da::test::make_temp_dir("da_io_set"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(ArchiveSetTest, GlobalIndexSpansShardsInSortedOrder) {
  const TileArchiveLayout layout = test::small_layout();
  test::write_archive(path("shard_1.h5"), layout, 2);
  test::write_archive(path("shard_0.h5"), layout, 3);
  test::write_archive(path("extra.h5"), layout, 1);
  const ArchiveSet set({path("shard_*.h5"), path("extra.h5")});
  ASSERT_EQ(set.num_shards(), 3u);
  EXPECT_EQ(set.shard_path(0), path("shard_0.h5"));
  EXPECT_EQ(set.shard_path(1), path("shard_1.h5"));
  EXPECT_EQ(set.shard_path(2), path("extra.h5"));
  EXPECT_EQ(set.size(), 6);
  const std::vector<std::pair<size_t, int64_t>> expected{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {2, 0}};
  for (int64_t i = 0; i < set.size(); ++i) {
    const ArchiveSet::Location at = set.locate(i);
    EXPECT_EQ(std::make_pair(at.shard, at.index), expected[i]) << "tile " << i;
    std::vector<char> image(set.shard(0).image_bytes());
    set.read_image(i, image.data());
    EXPECT_EQ(image, test::expected_image(layout, at.index)) << "tile " << i;
    std::vector<uint8_t> mask(set.shard(0).mask_bytes());
    set.read_mask(i, mask.data());
    EXPECT_EQ(mask, test::expected_mask(5, 7, at.index, 4)) << "tile " << i;
  }
  EXPECT_EQ(archive_error_of([&] { set.locate(6); }), "archive set: tile 6 outside [0, 6)");
}

TEST_F(ArchiveSetTest, GlobMatchingNothing) {
  EXPECT_EQ(archive_error_of([&] { ArchiveSet set({path("*.h5")}); }),
            "archive pattern '" + path("*.h5") + "' matches no file");
}

TEST_F(ArchiveSetTest, FileListedTwice) {
  test::write_archive(path("a.h5"), test::small_layout(), 1);
  EXPECT_EQ(archive_error_of([&] {
              ArchiveSet set({path("a.h5"), path("?.h5")});
            }),
            path("a.h5") + ": listed twice in the archive list");
}

TEST_F(ArchiveSetTest, MissingShardIsNamed) {
  test::write_archive(path("a.h5"), test::small_layout(), 1);
  EXPECT_EQ(archive_error_of([&] { ArchiveSet set({path("a.h5"), path("b.h5")}); }), path("b.h5") + ": no such file");
}

TEST_F(ArchiveSetTest, ShardsThatDisagree) {
  TileArchiveLayout layout = test::small_layout();
  test::write_archive(path("a.h5"), layout, 1);
  layout.bands = {"red", "green", "nir"};
  test::write_archive(path("b.h5"), layout, 1);
  EXPECT_EQ(archive_error_of([&] {
              ArchiveSet set({path("a.h5"), path("b.h5")});
            }),
            "shards disagree on bands: " + path("a.h5") + " has [red, green, blue], " + path("b.h5") +
                " has [red, green, nir]");

  layout = test::small_layout(PixelType::kUint16);
  test::write_archive(path("c.h5"), layout, 1);
  EXPECT_EQ(archive_error_of([&] {
              ArchiveSet set({path("a.h5"), path("c.h5")});
            }),
            "shards disagree on dtype: " + path("a.h5") + " has uint8, " + path("c.h5") + " has uint16");

  layout = test::small_layout();
  layout.width = 8;
  test::write_archive(path("d.h5"), layout, 1);
  EXPECT_EQ(archive_error_of([&] {
              ArchiveSet set({path("a.h5"), path("d.h5")});
            }),
            "shards disagree on tile size: " + path("a.h5") + " has 5x7, " + path("d.h5") + " has 5x8");

  layout = test::small_layout();
  layout.classes.push_back("car");
  test::write_archive(path("e.h5"), layout, 1);
  EXPECT_EQ(archive_error_of([&] {
              ArchiveSet set({path("a.h5"), path("e.h5")});
            }),
            "shards disagree on classes: " + path("a.h5") + " has [road, building, grass, tree], " + path("e.h5") +
                " has [road, building, grass, tree, car]");
}

// Writes a one-band archive of `tiles` tiles of 5x7 pixels, all `value`,
// with band statistics (mean, std) when given.
void write_gray(const std::string& path, int64_t tiles, uint8_t value,
                std::optional<std::pair<double, double>> stats = std::nullopt) {
  TileArchiveLayout layout = test::small_layout();
  layout.bands = {"gray"};
  TileArchiveWriter writer(path, layout);
  const std::vector<uint8_t> image(5 * 7, value), mask(5 * 7, 0);
  for (int64_t n = 0; n < tiles; ++n) writer.append(image.data(), mask.data());
  if (stats) writer.set_band_stats({stats->first}, {stats->second});
  writer.close();
}

void write_with_stats(const std::string& path, int64_t tiles, double mean, double std) {
  write_gray(path, tiles, 1, std::make_pair(mean, std));
}

// Five shards of two tiles, tile t holding the value 10 + t / 2, read
// through HDF5 with at most two open: every tile reads right, the bound
// holds, and the shard closed to make room is the least recently read.
TEST_F(ArchiveSetTest, AtMostMaxOpenShardsStayOpenLeastRecentlyReadClosedFirst) {
  for (int s = 0; s < 5; ++s) write_gray(path("shard_" + std::to_string(s) + ".h5"), 2, static_cast<uint8_t>(10 + s));
  const ArchiveSet set({path("shard_*.h5")}, /*max_open=*/2, /*indexed=*/false);
  EXPECT_EQ(set.opens(), 5);  // each validated once
  EXPECT_EQ(set.open_shards(), 2u);
  std::vector<uint8_t> image(5 * 7);
  const auto read = [&](int64_t tile) {
    set.read_image(tile, image.data());
    EXPECT_EQ(image, std::vector<uint8_t>(5 * 7, static_cast<uint8_t>(10 + tile / 2))) << "tile " << tile;
    EXPECT_LE(set.open_shards(), 2u);
  };
  read(9);  // shard 4: open since the set was made (with shard 3)
  EXPECT_EQ(set.opens(), 5);
  read(0);  // shard 0: closes shard 3, the least recently used
  EXPECT_EQ(set.opens(), 6);
  read(8);  // shard 4 still open
  read(1);  // shard 0 still open
  EXPECT_EQ(set.opens(), 6);
  read(2);  // shard 1: closes shard 4 (read before shard 0)
  read(1);  // shard 0 still open
  EXPECT_EQ(set.opens(), 7);
  read(9);  // shard 4 again
  EXPECT_EQ(set.opens(), 8);
  for (int64_t tile = 0; tile < set.size(); ++tile) read(tile);
  EXPECT_EQ(set.shard_info(3).num_tiles, 2);
  // A copy (another thread's) opens its own files, none at first.
  const ArchiveSet copy(set);
  EXPECT_EQ(copy.open_shards(), 0u);
  copy.read_image(5, image.data());
  EXPECT_EQ(image, std::vector<uint8_t>(5 * 7, 12));
  EXPECT_EQ(copy.opens(), 1);
  EXPECT_EQ(copy.size(), 10);
  EXPECT_EQ(archive_error_of([&] { ArchiveSet({path("shard_0.h5")}, 0); }),
            "archive set: at most 0 open shards allowed; at least 1 is needed");
}

// Indexed reads: uncompressed uint8 and shuffle + deflate uint16 shards, each
// tile and mask read with at most two descriptors, byte for byte what HDF5
// reads; after each shard's first read (which indexes it) no HDF5 file is
// open or opened.
TEST_F(ArchiveSetTest, IndexedReadsNeedNoHdf5FileAndMatchHdf5) {
  for (const bool deflate : {false, true}) {
    TileArchiveLayout layout = test::small_layout(deflate ? PixelType::kUint16 : PixelType::kUint8);
    layout.deflate_level = deflate ? 6 : 0;
    layout.shuffle = deflate;
    const std::string prefix = path(deflate ? "z_" : "u_");
    for (int s = 0; s < 5; ++s) test::write_archive(prefix + std::to_string(s) + ".h5", layout, 3);
    const ArchiveSet first({prefix + "*.h5"}, /*max_open=*/2);
    const ArchiveSet indexed(first);  // another thread's: shares the indices
    const ArchiveSet hdf5({prefix + "*.h5"}, /*max_open=*/2, /*indexed=*/false);
    EXPECT_EQ(first.opens(), 5);
    std::vector<char> image(layout.bands.size() * 5 * 7 * pixel_size(layout.pixel_type)), expected(image.size());
    std::vector<uint8_t> mask(5 * 7), expected_mask(mask.size());
    for (int64_t tile = 0; tile < first.size(); tile += 3) first.read_image(tile, image.data());
    EXPECT_EQ(first.open_shards(), 0u);
    for (const int64_t tile : {14, 0, 7, 3, 12, 1, 9, 4, 13, 2, 8, 6, 11, 5, 10, 0, 14}) {
      indexed.read_image(tile, image.data());
      hdf5.read_image(tile, expected.data());
      EXPECT_EQ(image, expected) << "tile " << tile << (deflate ? " deflate" : "");
      EXPECT_EQ(image, test::expected_image(layout, tile % 3)) << "tile " << tile;
      indexed.read_mask(tile, mask.data());
      hdf5.read_mask(tile, expected_mask.data());
      EXPECT_EQ(mask, expected_mask) << "tile " << tile;
      EXPECT_LE(indexed.open_descriptors(), 2u);
    }
    EXPECT_EQ(indexed.opens(), 0);
    EXPECT_EQ(indexed.open_shards(), 0u);
    EXPECT_EQ(indexed.indexed_reads(), 2 * 17);
    EXPECT_EQ(hdf5.indexed_reads(), 0);
  }
}

// HDF5 1.10's chunk address lookup costs O(rows) a row (see
// io/direct_chunk_reader.cpp): shards of at most 256 tiles are indexed, up
// to 4,096 looked up tile by tile on first read, larger ones read with
// H5Dread; each reads right.
TEST_F(ArchiveSetTest, HowAShardIsReadDependsOnItsTileCount) {
  write_gray(path("a.h5"), 256, 3);
  write_gray(path("b.h5"), 257, 4);
  write_gray(path("c.h5"), 4097, 5);
  const ArchiveSet set({path("a.h5"), path("b.h5"), path("c.h5")});
  std::vector<uint8_t> image(5 * 7);
  for (const int64_t tile : {255, 256, 512, 513, 4609}) {
    set.read_image(tile, image.data());
    EXPECT_EQ(image, std::vector<uint8_t>(5 * 7, tile < 256 ? 3 : tile < 513 ? 4 : 5)) << "tile " << tile;
  }
  EXPECT_EQ(set.indexed_reads(), 1);
  EXPECT_EQ(set.shard(1).read_counts().direct, 2);
  EXPECT_EQ(set.shard(2).read_counts().direct, 0);
  EXPECT_EQ(set.shard(2).read_counts().h5dread, 2);
}

// A shard read again after it was closed must still be the file the global
// index was built from: its identity (indexed reads) or tile count (HDF5).
TEST_F(ArchiveSetTest, AShardThatChangedDuringTheRunIsNamed) {
  for (const bool indexed : {true, false}) {
    write_gray(path("a.h5"), 2, 1);
    write_gray(path("b.h5"), 2, 2);
    const ArchiveSet set({path("a.h5"), path("b.h5")}, /*max_open=*/1, indexed);
    std::vector<uint8_t> image(5 * 7);
    set.read_image(0, image.data());
    set.read_image(2, image.data());  // b.h5 open, a.h5 closed
    write_gray(path("a.h5"), 3, 1);
    EXPECT_EQ(archive_error_of([&] { set.read_image(0, image.data()); }),
              indexed ? path("a.h5") + ": replaced or modified since the run opened it (the file changed during the run)"
                      : path("a.h5") + ": has 3 tiles now, 2 when first opened (the file changed during the run)");
  }
}

TEST_F(ArchiveSetTest, BandStatsPoolShardsByTileCount) {
  write_with_stats(path("a.h5"), 3, 1.0, 0.0);
  write_with_stats(path("b.h5"), 1, 5.0, 0.0);
  const std::optional<BandStats> stats = ArchiveSet({path("*.h5")}).band_stats();
  ASSERT_TRUE(stats.has_value());
  // Values {1, 1, 1, 5}: mean 2, variance (3 * 1 + 25) / 4 - 4 = 3.
  EXPECT_DOUBLE_EQ(stats->mean[0], 2.0);
  EXPECT_DOUBLE_EQ(stats->std[0], std::sqrt(3.0));
}

TEST_F(ArchiveSetTest, BandStatsNeedEveryShard) {
  write_with_stats(path("a.h5"), 1, 1.0, 0.5);
  TileArchiveLayout layout = test::small_layout();
  layout.bands = {"gray"};
  test::write_archive(path("b.h5"), layout, 1);
  EXPECT_FALSE(ArchiveSet({path("*.h5")}).band_stats().has_value());
}

}  // namespace
}  // namespace da::io
