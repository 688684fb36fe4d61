// da_tiles inspect: counts, shape and the class histogram of an archive;
// inspect --verify reports every bad mask value with its tile index and
// exits with status 1, as inspect does at the first problem.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <array>
#include <cstdint>
#include <string>

#include "io/tile_archive.h"
#include "support/process.h"
#include "tools/tiles_fixture.h"

namespace {

using da::io::TileArchive;
using da::test::all_masks;
using da::test::da_tiles;
using da::test::ProcessResult;
using da::test::synth;
using da::test::TempDir;

TEST(DaTilesInspect, PrintsCountsShapeAndHistogram) {
  TempDir dir;
  synth(dir.path(), 2);
  const TileArchive archive(dir / "source_val.h5");
  std::array<int64_t, 4> histogram{};
  for (uint8_t value : all_masks(archive)) ++histogram[value];
  const ProcessResult result = da_tiles({"inspect", dir / "source_val.h5"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("tiles: 12  shape: [12, 3, 32, 32]  dtype: uint8"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("bands: red, green, blue"), std::string::npos) << result.out;
  const char* names[] = {"background", "building", "road", "water"};
  for (int k = 0; k < 4; ++k) {
    const std::string line = std::to_string(k) + " " + names[k] + ": " + std::to_string(histogram[k]) + " pixels";
    EXPECT_NE(result.out.find(line), std::string::npos) << line << "\n" << result.out;
  }
  EXPECT_NE(result.out.find("ignore: 0 pixels (0.00%)"), std::string::npos) << result.out;
}

// Overwrites one mask pixel of tile `tile` with `value`, behind the writer's back.
void corrupt_mask(const std::string& path, hsize_t tile, uint8_t value) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hid_t dataset = H5Dopen2(file, "/masks", H5P_DEFAULT);
  const hid_t space = H5Dget_space(dataset);
  const hsize_t start[3] = {tile, 5, 5}, count[3] = {1, 1, 1};
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
  const hid_t memory = H5Screate_simple(3, count, nullptr);
  EXPECT_GE(H5Dwrite(dataset, H5T_NATIVE_UINT8, memory, space, H5P_DEFAULT, &value), 0);
  H5Sclose(memory);
  H5Sclose(space);
  H5Dclose(dataset);
  H5Fclose(file);
}

TEST(DaTilesInspect, VerifyReportsEveryBadMaskWithTileIndex) {
  TempDir dir;
  synth(dir.path(), 4);
  const std::string bad = dir / "source_val.h5";
  corrupt_mask(bad, 3, 9);
  corrupt_mask(bad, 7, 200);
  ProcessResult result = da_tiles({"inspect", "--verify", dir / "source_train.h5", bad});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.out.find("/masks tile 3: value 9"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("/masks tile 7: value 200"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("verify: 2 problems in 2 files"), std::string::npos) << result.out;
  // Without --verify the first problem stops the run, also with status 1.
  result = da_tiles({"inspect", bad});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("/masks tile 3"), std::string::npos) << result.err;
  result = da_tiles({"inspect", "--verify", dir / "target_val.h5"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("verify: 0 problems in 1 file"), std::string::npos) << result.out;
}

}  // namespace
