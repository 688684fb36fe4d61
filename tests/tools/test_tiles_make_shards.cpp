// da_tiles make --shard-tiles: shards hold exactly the tiles of the single
// archive, in order, whether written by several threads or by two ranks
// under mpirun; a rerun keeps complete shards untouched, rewrites a broken
// one, writes a missing one and removes what an interrupted writer left; a
// rerun with other options is refused, naming the option.
#include <gdal.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/tile_archive.h"
#include "support/process.h"
#include "tools/geotiff_fixture.h"
#include "tools/tiles_fixture.h"

namespace {

namespace fs = std::filesystem;
using da::io::TileArchive;
using da::test::da_tiles;
using da::test::ProcessResult;
using da::test::TempDir;

// Everything a run wrote, archive after archive.
struct Tiles {
  std::vector<uint8_t> images, masks;
  std::vector<std::array<int64_t, 2>> origins;
  std::vector<int32_t> sources;
  void add(const std::string& path) {
    const TileArchive archive(path);
    const std::vector<uint8_t> i = da::test::all_images(archive), m = da::test::all_masks(archive);
    images.insert(images.end(), i.begin(), i.end());
    masks.insert(masks.end(), m.begin(), m.end());
    for (int64_t t = 0; t < archive.size(); ++t) {
      origins.push_back(archive.read_origin(t));
      sources.push_back(archive.read_source_id(t));
    }
  }
};

// Two labelled uint16 rasters of 3 x 3 windows of 32 pixels; window (0, 0) of
// the first is nodata. Sharded by 4 windows: 3 shards a raster, 6 in all,
// the first holding 3 tiles.
class ShardedMake : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"a", "b"}) {
      const bool first = std::string(name) == "a";
      da::test::write_geotiff(
          dir_ / (std::string(name) + ".tif"), GDT_UInt16, 2,
          [first](int r, int c, int b) { return first && r < 32 && c < 32 ? 0.0 : 1 + (r * 131 + c * 17 + b) % 9000; },
          true);
      da::test::write_geotiff(
          dir_ / (std::string(name) + "_labels.tif"), GDT_Byte, 1, [](int r, int c, int) { return (r / 8 + c) % 3; },
          false);
    }
  }
  std::vector<std::string> make_args(const std::string& out, const std::string& max_nodata = "0.1") const {
    return {"make",          "--image",        dir_ / "a.tif", "--labels",     dir_ / "a_labels.tif",
            "--image",       dir_ / "b.tif",   "--labels",     dir_ / "b_labels.tif", "--classes",
            "x,y,z",         "--tile-size",    "32",           "--max-nodata", max_nodata,
            "--out",         out};
  }
  std::vector<std::string> sharded_args(const std::string& threads = "3", const std::string& max_nodata = "0.1") const {
    std::vector<std::string> args = make_args(dir_ / "shards/train.h5", max_nodata);
    args.insert(args.end(), {"--shard-tiles", "4", "--threads", threads});
    return args;
  }
  std::string shard(int index) const { return dir_ / ("shards/train-0000" + std::to_string(index) + ".h5"); }
  Tiles shard_tiles() const {
    Tiles tiles;
    for (int i = 0; i < 6; ++i) tiles.add(shard(i));
    return tiles;
  }
  Tiles reference() const {
    const ProcessResult result = da_tiles(make_args(dir_ / "single.h5"));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    Tiles tiles;
    tiles.add(dir_ / "single.h5");
    return tiles;
  }

  TempDir dir_;
};

void expect_same_tiles(const Tiles& a, const Tiles& b) {
  EXPECT_EQ(a.origins, b.origins);
  EXPECT_EQ(a.sources, b.sources);
  EXPECT_TRUE(a.images == b.images);
  EXPECT_TRUE(a.masks == b.masks);
}

TEST_F(ShardedMake, ThreadsWriteTheSingleArchivesTilesInOrder) {
  const Tiles expected = reference();
  ASSERT_EQ(expected.origins.size(), 17u);  // 18 windows, one of nodata
  const ProcessResult result = da_tiles(sharded_args());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("shards/train-*.h5: wrote 17 tiles of 32x32 (uint16, 2 bands) in 6 of 6 shards with 3 "
                            "threads; kept 0 complete shards (0 tiles)"),
            std::string::npos)
      << result.out;
  EXPECT_FALSE(fs::exists(shard(6)));
  EXPECT_EQ(TileArchive(shard(0)).size(), 3);
  EXPECT_EQ(TileArchive(shard(2)).size(), 1);  // the first raster's ninth window
  for (int i : {0, 5}) {  // each shard's band statistics are those of its own tiles
    const TileArchive archive(shard(i));
    const std::vector<uint8_t> bytes = da::test::all_images(archive);
    const auto* values = reinterpret_cast<const uint16_t*>(bytes.data());
    const int64_t band_pixels = 32 * 32;
    for (int b = 0; b < 2; ++b) {
      double sum = 0, squares = 0;
      for (int64_t t = 0; t < archive.size(); ++t) {
        for (int64_t p = 0; p < band_pixels; ++p) {
          const double v = values[(t * 2 + b) * band_pixels + p];
          sum += v;
          squares += v * v;
        }
      }
      const double n = static_cast<double>(archive.size() * band_pixels), mean = sum / n;
      ASSERT_TRUE(archive.info().band_mean && archive.info().band_std);
      EXPECT_NEAR((*archive.info().band_mean)[b], mean, 1e-9 * mean) << "shard " << i << " band " << b;
      EXPECT_NEAR((*archive.info().band_std)[b], std::sqrt(squares / n - mean * mean), 1e-6) << "shard " << i;
    }
  }
  EXPECT_TRUE(fs::exists(dir_ / "shards/train.tiling.json"));
  expect_same_tiles(shard_tiles(), expected);
}

TEST_F(ShardedMake, TwoRanksUnderMpirunWriteEveryOtherShard) {
  const Tiles expected = reference();
  std::vector<std::string> args{"--allow-run-as-root", "--oversubscribe", "-np", "2",
                                da::test::binary_path("tools/da_tiles/da_tiles")};
  for (const std::string& arg : sharded_args("1")) args.push_back(arg);
  const ProcessResult result = da::test::run_process("mpirun", args, da::test::mpirun_env(), 240);
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("rank 0 of 2: "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("rank 1 of 2: "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("in 3 of 6 shards with 1 threads"), std::string::npos) << result.out;
  expect_same_tiles(shard_tiles(), expected);
}

TEST_F(ShardedMake, RerunKeepsCompleteShardsAndRepairsTheRest) {
  const Tiles expected = reference();
  ASSERT_EQ(da_tiles(sharded_args()).exit_code, 0);
  // What an interrupted run and a damaged disk leave: a missing shard, a
  // truncated one, a writer's temporary file.
  fs::remove(shard(2));
  fs::resize_file(shard(4), fs::file_size(shard(4)) / 2);
  da::test::write_text(shard(1) + ".tmp.99999", "partial");
  std::vector<fs::file_time_type> times;
  for (int i : {0, 1, 3, 5}) times.push_back(fs::last_write_time(shard(i)));

  const ProcessResult result = da_tiles(sharded_args("2"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("in 2 of 6 shards with 2 threads; kept 4 complete shards (12 tiles) from an earlier run"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.err.find(shard(4) + ": not a complete shard of this run ("), std::string::npos) << result.err;
  EXPECT_FALSE(fs::exists(shard(1) + ".tmp.99999"));
  std::vector<fs::file_time_type> after;
  for (int i : {0, 1, 3, 5}) after.push_back(fs::last_write_time(shard(i)));
  EXPECT_EQ(after, times);
  expect_same_tiles(shard_tiles(), expected);
}

TEST_F(ShardedMake, RerunWithOtherOptionsIsRefused) {
  ASSERT_EQ(da_tiles(sharded_args()).exit_code, 0);
  const auto before = fs::last_write_time(shard(0));
  const ProcessResult result = da_tiles(sharded_args("3", "0.2"));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(dir_ / "shards/train.tiling.json" +
                            ": the shards there were made with max_nodata = 0.1, this run has 0.2; rerun with the "
                            "same options and rasters, or remove the shards and this file to start over"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(fs::last_write_time(shard(0)), before);
  std::vector<std::string> no_shards = make_args(dir_ / "x.h5");
  no_shards.insert(no_shards.end(), {"--threads", "2"});
  const ProcessResult usage = da_tiles(no_shards);
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("--threads needs --shard-tiles"), std::string::npos) << usage.err;
}

}  // namespace
