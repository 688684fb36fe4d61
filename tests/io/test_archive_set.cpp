// ArchiveSet: shards named by path or glob read as one archive; shards that
// disagree and patterns that match nothing are refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "io/archive_fixtures.h"
#include "io/archive_set.h"
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
  EXPECT_EQ(set.shard(0).path(), path("shard_0.h5"));
  EXPECT_EQ(set.shard(1).path(), path("shard_1.h5"));
  EXPECT_EQ(set.shard(2).path(), path("extra.h5"));
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

// Writes a one-band archive of `tiles` tiles whose band statistics are (mean, std).
void write_with_stats(const std::string& path, int64_t tiles, double mean, double std) {
  TileArchiveLayout layout = test::small_layout();
  layout.bands = {"gray"};
  TileArchiveWriter writer(path, layout);
  const std::vector<uint8_t> image(5 * 7, 1), mask(5 * 7, 0);
  for (int64_t n = 0; n < tiles; ++n) writer.append(image.data(), mask.data());
  writer.set_band_stats({mean}, {std});
  writer.close();
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
