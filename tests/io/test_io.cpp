// TileArchive and TileArchiveWriter: values survive a round trip for every
// pixel type, with and without compression, and every bad file is refused
// with a message that names the file, the dataset and the tile.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "io/archive_fixtures.h"
#include "io/tile_archive.h"
#include "io/tile_archive_writer.h"
#include "support/process.h"

namespace da::io {
namespace {

namespace fs = std::filesystem;
using test::archive_error_of;

class TileArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = da::test::make_temp_dir("da_io"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

struct RoundTripCase {
  PixelType type;
  int deflate_level;
  bool shuffle;
};

void PrintTo(const RoundTripCase& c, std::ostream* os) {
  *os << pixel_type_name(c.type) << " deflate " << c.deflate_level << (c.shuffle ? " shuffle" : "");
}

class RoundTripTest : public TileArchiveTest, public ::testing::WithParamInterface<RoundTripCase> {};

TEST_P(RoundTripTest, ValuesMasksAndMetaSurvive) {
  TileArchiveLayout layout = test::small_layout(GetParam().type);
  layout.deflate_level = GetParam().deflate_level;
  layout.shuffle = GetParam().shuffle;
  layout.with_origin = layout.with_source_id = layout.with_geotransform = true;
  layout.sources = {"a.tif", "b.tif"};
  layout.crs = "EPSG:25832";
  const std::string file = path("tiles.h5");
  {
    TileArchiveWriter writer(file, layout);
    for (int64_t n = 0; n < 3; ++n) {
      const std::vector<char> image = test::expected_image(layout, n);
      const std::vector<uint8_t> mask = test::expected_mask(5, 7, n, 4);
      TileMeta meta;
      meta.origin = {10 * n, 20 * n + 1};
      meta.source_id = static_cast<int32_t>(n % 2);
      for (int i = 0; i < 6; ++i) meta.geotransform[i] = n + i / 8.0;
      writer.append(image.data(), mask.data(), meta);
    }
    writer.set_band_stats({1.0, 2.0, 3.0}, {0.5, 0.25, 0.125});
    writer.close();
  }
  const std::string bytes_before = test::file_bytes(file);
  const auto mtime_before = fs::last_write_time(file);

  {
    const TileArchive archive(file);
    const ArchiveInfo& info = archive.info();
    EXPECT_EQ(info.version, 1);
    EXPECT_EQ(info.domain, "potsdam");
    EXPECT_EQ(info.bands, (std::vector<std::string>{"red", "green", "blue"}));
    EXPECT_EQ(info.classes, (std::vector<std::string>{"road", "building", "grass", "tree"}));
    EXPECT_EQ(info.ignore_index, 255);
    EXPECT_EQ(info.pixel_type, GetParam().type);
    EXPECT_EQ(archive.size(), 3);
    EXPECT_EQ(info.height, 5);
    EXPECT_EQ(info.width, 7);
    EXPECT_TRUE(info.has_masks && info.has_origin && info.has_source_id && info.has_geotransform);
    EXPECT_EQ(info.sources, (std::vector<std::string>{"a.tif", "b.tif"}));
    EXPECT_EQ(info.crs, "EPSG:25832");
    ASSERT_TRUE(info.band_mean && info.band_std);
    EXPECT_EQ(*info.band_mean, (std::vector<double>{1.0, 2.0, 3.0}));
    EXPECT_EQ(*info.band_std, (std::vector<double>{0.5, 0.25, 0.125}));
    EXPECT_EQ(archive.image_bytes(), 3 * 5 * 7 * pixel_size(GetParam().type));

    for (int64_t n = 2; n >= 0; --n) {
      std::vector<char> image(archive.image_bytes());
      EXPECT_EQ(archive.read_image(n, image.data()), 0);
      EXPECT_EQ(image, test::expected_image(layout, n)) << "tile " << n;
      std::vector<uint8_t> mask(archive.mask_bytes());
      archive.read_mask(n, mask.data());
      EXPECT_EQ(mask, test::expected_mask(5, 7, n, 4)) << "tile " << n;
      EXPECT_EQ(archive.read_origin(n), (std::array<int64_t, 2>{10 * n, 20 * n + 1}));
      EXPECT_EQ(archive.read_source_id(n), n % 2);
      EXPECT_EQ(archive.read_geotransform(n)[5], n + 5 / 8.0);
    }
    std::vector<char> image(archive.image_bytes());
    EXPECT_EQ(archive_error_of([&] { archive.read_image(3, image.data()); }),
              file + ": /images tile 3: index outside [0, 3)");
  }
  EXPECT_EQ(test::file_bytes(file), bytes_before);
  EXPECT_EQ(fs::last_write_time(file), mtime_before);
}

INSTANTIATE_TEST_SUITE_P(
    PixelTypes, RoundTripTest,
    ::testing::Values(RoundTripCase{PixelType::kUint8, 0, false}, RoundTripCase{PixelType::kUint8, 6, true},
                      RoundTripCase{PixelType::kUint16, 0, false}, RoundTripCase{PixelType::kUint16, 6, true},
                      RoundTripCase{PixelType::kFloat32, 0, false}, RoundTripCase{PixelType::kFloat32, 9, true}),
    [](const ::testing::TestParamInfo<RoundTripCase>& info) {
      return std::string(pixel_type_name(info.param.type)) + "_deflate" + std::to_string(info.param.deflate_level) +
             (info.param.shuffle ? "_shuffle" : "");
    });

TEST_F(TileArchiveTest, ArchiveWithoutMasksOrMeta) {
  TileArchiveLayout layout = test::small_layout();
  layout.with_masks = false;
  layout.classes.clear();
  test::write_archive(path("unlabelled.h5"), layout, 2);
  const TileArchive archive(path("unlabelled.h5"));
  EXPECT_FALSE(archive.info().has_masks);
  EXPECT_FALSE(archive.info().has_origin);
  EXPECT_TRUE(archive.info().classes.empty());
  EXPECT_FALSE(archive.info().band_mean.has_value());
  std::vector<uint8_t> mask(archive.mask_bytes());
  EXPECT_EQ(archive_error_of([&] { archive.read_mask(0, mask.data()); }),
            path("unlabelled.h5") + ": /masks: not in this archive");
}

TEST_F(TileArchiveTest, WriterPublishesOnlyOnClose) {
  const std::string file = path("growing.h5");
  const TileArchiveLayout layout = test::small_layout();
  {
    TileArchiveWriter writer(file, layout);
    const std::vector<char> image = test::expected_image(layout, 0);
    const std::vector<uint8_t> mask = test::expected_mask(5, 7, 0, 4);
    writer.append(image.data(), mask.data());
    EXPECT_FALSE(fs::exists(file));
  }  // abandoned without close()
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(fs::is_empty(dir_)) << "the temporary file was left behind";

  TileArchiveWriter empty(file, layout);
  EXPECT_EQ(archive_error_of([&] { empty.close(); }),
            file + ": /images: no tile appended; an empty archive is not valid");
}

TEST_F(TileArchiveTest, WriterRefusesBadTiles) {
  const TileArchiveLayout layout = test::small_layout(PixelType::kFloat32);
  TileArchiveWriter writer(path("bad.h5"), layout);
  std::vector<char> image = test::expected_image(layout, 0);
  std::vector<uint8_t> mask = test::expected_mask(5, 7, 0, 4);
  mask[3] = 4;
  EXPECT_EQ(archive_error_of([&] { writer.append(image.data(), mask.data()); }),
            path("bad.h5") + ": /masks tile 0: value 4 outside [0, 4) and not ignore_index 255");
  mask[3] = 0;
  reinterpret_cast<float*>(image.data())[10] = NAN;
  EXPECT_EQ(archive_error_of([&] { writer.append(image.data(), mask.data()); }),
            path("bad.h5") + ": /images tile 0: NaN or infinite value");
  EXPECT_EQ(archive_error_of([&] { writer.append(image.data(), nullptr); }),
            path("bad.h5") + ": /masks tile 0: no mask given");
}

TEST_F(TileArchiveTest, MissingFile) {
  EXPECT_EQ(archive_error_of([&] { TileArchive archive(path("absent.h5")); }), path("absent.h5") + ": no such file");
}

TEST_F(TileArchiveTest, NotAnHdf5File) {
  da::test::write_text(path("text.h5"), "these are not the tiles you are looking for\n");
  EXPECT_EQ(archive_error_of([&] { TileArchive archive(path("text.h5")); }), path("text.h5") + ": not an HDF5 file");
}

TEST_F(TileArchiveTest, TruncatedFile) {
  test::write_archive(path("whole.h5"), test::small_layout(), 4);
  const std::string bytes = test::file_bytes(path("whole.h5"));
  da::test::write_text(path("truncated.h5"), bytes.substr(0, bytes.size() / 2));
  const std::string message = archive_error_of([&] { TileArchive archive(path("truncated.h5")); });
  EXPECT_EQ(message.rfind(path("truncated.h5") + ": cannot open HDF5 file (HDF5: truncated file: eof = " +
                              std::to_string(bytes.size() / 2),
                          0),
            0u)
      << message;
}

}  // namespace
}  // namespace da::io
