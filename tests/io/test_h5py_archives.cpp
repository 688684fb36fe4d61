// Interoperability with h5py, both ways: archives written by h5py
// (tests/io/make_h5py_archives.py), the way outside tools write them, load
// with their values and each broken one is refused with its exact message;
// archives written by TileArchiveWriter read naturally in h5py
// (tests/io/h5py_summary.py).
#include <gtest/gtest.h>

#include <filesystem>

#include "io/archive_fixtures.h"
#include "io/tile_archive.h"
#include "io/tile_archive_writer.h"
#include "support/process.h"

namespace da::io {
namespace {

namespace fs = std::filesystem;
using test::archive_error_of;

const std::string kPython = da::test::python_path();

class H5pyArchiveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (da::test::run_process(kPython, {"-c", "import h5py, numpy"}).exit_code != 0) return;
    dir_ = da::test::make_temp_dir("da_io_h5py");
    const da::test::ProcessResult result =
        da::test::run_process(kPython, {da::test::source_path("tests/io/make_h5py_archives.py"), dir_});
    ASSERT_EQ(result.exit_code, 0) << result.err;
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (dir_.empty()) GTEST_SKIP() << kPython << " has no h5py/numpy (bash tools/setup.sh)";
  }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static std::string error_opening(const std::string& name) {
    return archive_error_of([&] { TileArchive archive(path(name)); });
  }

  static inline std::string dir_;
};

// The generator's tile shape: N=3, C=4, H=8, W=6, K=5.
TileArchiveLayout generator_layout(PixelType type) {
  TileArchiveLayout layout;
  layout.bands = {"red", "green", "blue", "nir"};
  layout.pixel_type = type;
  layout.height = 8;
  layout.width = 6;
  return layout;
}

TEST_F(H5pyArchiveTest, VariableLengthStringsAndMixedIntegerWidths) {
  const std::string file = path("h5py_uint8.h5");
  const std::string bytes_before = test::file_bytes(file);
  const auto mtime_before = fs::last_write_time(file);
  {
    const TileArchive archive(file);
    const ArchiveInfo& info = archive.info();
    EXPECT_EQ(info.domain, "potsdam");
    EXPECT_EQ(info.bands, (std::vector<std::string>{"red", "green", "blue", "nir"}));
    EXPECT_EQ(info.classes, (std::vector<std::string>{"road", "building", "grass", "tree", "car"}));
    EXPECT_EQ(info.ignore_index, 255);
    EXPECT_EQ(info.pixel_type, PixelType::kUint8);
    EXPECT_EQ(*info.band_mean, (std::vector<double>{1.5, 2.5, 3.5, 4.5}));
    EXPECT_EQ(*info.band_std, (std::vector<double>{0.5, 1.0, 2.0, 4.0}));
    EXPECT_EQ(info.crs, "EPSG:32632");
    EXPECT_EQ(info.sources, (std::vector<std::string>{"a.tif", "b.tif"}));
    ASSERT_EQ(archive.size(), 3);
    const TileArchiveLayout layout = generator_layout(PixelType::kUint8);
    for (int64_t n = 0; n < 3; ++n) {
      std::vector<char> image(archive.image_bytes());
      archive.read_image(n, image.data());
      EXPECT_EQ(image, test::expected_image(layout, n)) << "tile " << n;
      std::vector<uint8_t> mask(archive.mask_bytes());
      archive.read_mask(n, mask.data());
      EXPECT_EQ(mask, test::expected_mask(8, 6, n, 5)) << "tile " << n;
      EXPECT_EQ(archive.read_geotransform(n)[1], 6.0 * n + 1);
    }
    EXPECT_EQ(archive.read_origin(1), (std::array<int64_t, 2>{0, 6}));
    EXPECT_EQ(archive.read_source_id(2), 1);
  }
  EXPECT_EQ(test::file_bytes(file), bytes_before);
  EXPECT_EQ(fs::last_write_time(file), mtime_before);
}

TEST_F(H5pyArchiveTest, FixedLengthStringsCompressedFloat32) {
  const TileArchive archive(path("h5py_fixed_float.h5"));
  EXPECT_EQ(archive.info().domain, "rural");
  EXPECT_EQ(archive.info().bands, (std::vector<std::string>{"red", "green", "blue", "nir"}));
  EXPECT_EQ(archive.info().pixel_type, PixelType::kFloat32);
  EXPECT_FALSE(archive.info().has_masks);
  std::vector<char> image(archive.image_bytes());
  archive.read_image(2, image.data());
  EXPECT_EQ(image, test::expected_image(generator_layout(PixelType::kFloat32), 2, 0.25));
}

TEST_F(H5pyArchiveTest, CompressedUint16) {
  const TileArchive archive(path("h5py_uint16.h5"));
  EXPECT_EQ(archive.info().pixel_type, PixelType::kUint16);
  std::vector<char> image(archive.image_bytes());
  archive.read_image(1, image.data());
  EXPECT_EQ(image, test::expected_image(generator_layout(PixelType::kUint16), 1, 200));
}

TEST_F(H5pyArchiveTest, WrongFormat) {
  EXPECT_EQ(error_opening("wrong_format.h5"),
            path("wrong_format.h5") + ": attribute 'format': expected \"da-tiles\", found \"geo-tiles\"");
}

TEST_F(H5pyArchiveTest, NewerVersion) {
  EXPECT_EQ(error_opening("version2.h5"), path("version2.h5") +
                                              ": attribute 'version': version 2 is newer than this reader "
                                              "supports (1); upgrade da_dist");
}

TEST_F(H5pyArchiveTest, MissingImages) {
  EXPECT_EQ(error_opening("no_images.h5"), path("no_images.h5") + ": /images: missing");
}

TEST_F(H5pyArchiveTest, WrongRank) {
  EXPECT_EQ(error_opening("wrong_rank.h5"),
            path("wrong_rank.h5") + ": /images: rank 3 (shape [3, 8, 6]), expected 4: [N, C, H, W]");
}

TEST_F(H5pyArchiveTest, WrongDtype) {
  EXPECT_EQ(error_opening("int32_images.h5"),
            path("int32_images.h5") + ": /images: dtype int32, expected uint8, uint16 or float32");
}

TEST_F(H5pyArchiveTest, MasksWithoutClasses) {
  EXPECT_EQ(error_opening("masks_without_classes.h5"),
            path("masks_without_classes.h5") + ": attribute 'classes': missing (required when /masks exists)");
}

TEST_F(H5pyArchiveTest, EmptyArchive) {
  EXPECT_EQ(error_opening("empty.h5"), path("empty.h5") + ": /images: empty archive (0 tiles)");
}

TEST_F(H5pyArchiveTest, MaskValueOutOfRange) {
  const TileArchive archive(path("mask_out_of_range.h5"));
  std::vector<uint8_t> mask(archive.mask_bytes());
  archive.read_mask(0, mask.data());
  EXPECT_EQ(archive_error_of([&] { archive.read_mask(1, mask.data()); }),
            path("mask_out_of_range.h5") + ": /masks tile 1: value 9 outside [0, 5) and not ignore_index 255");
}

TEST_F(H5pyArchiveTest, NonFiniteFloatsRefusedOrReported) {
  const TileArchive archive(path("nan.h5"));
  std::vector<char> image(archive.image_bytes());
  EXPECT_EQ(archive.read_image(1, image.data()), 0);
  EXPECT_EQ(archive_error_of([&] { archive.read_image(2, image.data()); }),
            path("nan.h5") + ": /images tile 2: 2 NaN or infinite value(s), first at channel 1, row 3, column 4");
  EXPECT_EQ(archive.read_image(2, image.data(), NonFinite::kReport), 2);
}

TEST_F(H5pyArchiveTest, UnreadableChunk) {
  const TileArchive archive(path("corrupt_chunk.h5"));
  std::vector<char> image(archive.image_bytes());
  EXPECT_EQ(archive.read_image(0, image.data()), 0);
  EXPECT_EQ(archive_error_of([&] { archive.read_image(1, image.data()); }),
            path("corrupt_chunk.h5") + ": /images tile 1: cannot read (HDF5: inflate() failed)");
  archive.read_image(2, image.data());
  EXPECT_EQ(image, test::expected_image(generator_layout(PixelType::kUint8), 2));
}

// Direct chunk reads (H5Dread_chunk + our own inflate and unshuffle of
// compressed chunks, pread of unfiltered ones) of archives h5py wrote: byte
// for byte what H5Dread gives, and the values written, also behind a user
// block; what they do not handle (fletcher32, an unwritten chunk, a corrupt
// chunk) goes through H5Dread.
TEST_F(H5pyArchiveTest, DirectChunkReadsEqualH5Dread) {
  struct Expect {
    std::string name;
    PixelType type;
    double scale;
    bool masks;
    bool direct;  // every read takes the direct path
  };
  for (const Expect& e : {Expect{"h5py_uint8_gzip.h5", PixelType::kUint8, 1, true, true},
                          Expect{"h5py_uint8_gzip_shuffle.h5", PixelType::kUint8, 1, true, true},
                          Expect{"h5py_uint16_gzip_shuffle.h5", PixelType::kUint16, 200, true, true},
                          Expect{"h5py_uint16.h5", PixelType::kUint16, 200, false, true},
                          Expect{"h5py_fixed_float.h5", PixelType::kFloat32, 0.25, false, true},
                          Expect{"h5py_uint16_fletcher32.h5", PixelType::kUint16, 200, false, false},
                          Expect{"h5py_uint8.h5", PixelType::kUint8, 1, true, true},
                          Expect{"h5py_uint8_userblock.h5", PixelType::kUint8, 1, true, true}}) {
    const TileArchive direct(path(e.name));
    TileArchive plain(path(e.name));
    plain.set_direct_chunk_reads(false);
    EXPECT_EQ(direct.direct_chunk_reads_possible(), e.direct) << e.name;
    std::vector<char> a(direct.image_bytes()), b(direct.image_bytes());
    std::vector<uint8_t> ma(direct.mask_bytes()), mb(direct.mask_bytes());
    for (int64_t n = 0; n < 3; ++n) {
      direct.read_image(n, a.data());
      plain.read_image(n, b.data());
      EXPECT_EQ(a, b) << e.name << " tile " << n;
      EXPECT_EQ(a, test::expected_image(generator_layout(e.type), n, e.scale)) << e.name << " tile " << n;
      if (e.masks) {
        direct.read_mask(n, ma.data());
        plain.read_mask(n, mb.data());
        EXPECT_EQ(ma, mb) << e.name << " mask " << n;
        EXPECT_EQ(ma, test::expected_mask(8, 6, n, 5)) << e.name << " mask " << n;
      }
    }
    const int64_t reads = e.masks ? 6 : 3;
    EXPECT_EQ(direct.read_counts().direct, e.direct ? reads : 0) << e.name;
    EXPECT_EQ(plain.read_counts().direct, 0) << e.name;
  }
}

TEST_F(H5pyArchiveTest, UnwrittenChunkFallsBackToFillValue) {
  const TileArchive archive(path("h5py_uint16_unwritten.h5"));
  EXPECT_TRUE(archive.direct_chunk_reads_possible());
  std::vector<char> image(archive.image_bytes());
  for (const int64_t n : {0, 2}) {
    archive.read_image(n, image.data());
    EXPECT_EQ(image, test::expected_image(generator_layout(PixelType::kUint16), n, 200)) << "tile " << n;
  }
  archive.read_image(1, image.data());
  EXPECT_EQ(image, std::vector<char>(image.size(), 0));
  EXPECT_EQ(archive.read_counts().direct, 2);
  EXPECT_EQ(archive.read_counts().h5dread, 1);
}

TEST_F(H5pyArchiveTest, CorruptChunkFallsBackToH5DreadAndItsError) {
  const TileArchive archive(path("corrupt_chunk.h5"));
  std::vector<char> image(archive.image_bytes());
  archive_error_of([&] { archive.read_image(1, image.data()); });
  EXPECT_EQ(archive.read_counts().direct, 0);
  EXPECT_EQ(archive.read_counts().h5dread, 1);
  archive.read_image(2, image.data());
  EXPECT_EQ(archive.read_counts().direct, 1);
}

// The other direction of the contract: what TileArchiveWriter writes, h5py
// reads as plain str, lists of str and numbers, with one tile per chunk.
TEST_F(H5pyArchiveTest, WriterOutputReadsNaturallyInH5py) {
  TileArchiveLayout layout = test::small_layout(PixelType::kUint16);
  layout.deflate_level = 4;
  layout.shuffle = true;
  layout.with_origin = layout.with_source_id = layout.with_geotransform = true;
  layout.sources = {"a.tif", "b.tif"};
  layout.crs = "EPSG:25832";
  const std::string file = path("from_cpp.h5");
  {
    TileArchiveWriter writer(file, layout);
    for (int64_t n = 0; n < 2; ++n) {
      const std::vector<char> image = test::expected_image(layout, n);
      const std::vector<uint8_t> mask = test::expected_mask(5, 7, n, 4);
      TileMeta meta;
      meta.origin = {n, 2 * n};
      meta.source_id = static_cast<int32_t>(n);
      meta.geotransform = {0.5, 1, 0, 0, 0, -1};
      writer.append(image.data(), mask.data(), meta);
    }
    writer.set_band_stats({1.0, 2.0, 3.0}, {0.5, 0.25, 0.125});
    writer.close();
  }
  int64_t image_sum = 0, mask_sum = 0;
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t i = 0; i < 35; ++i) image_sum += test::image_value(n, c, i / 7, i % 7);
    }
    for (const uint8_t value : test::expected_mask(5, 7, n, 4)) mask_sum += value;
  }
  const da::test::ProcessResult result =
      da::test::run_process(kPython, {da::test::source_path("tests/io/h5py_summary.py"), file});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "attr band_mean: float64 [1.0, 2.0, 3.0]\n"
            "attr band_std: float64 [0.5, 0.25, 0.125]\n"
            "attr bands: object ['red', 'green', 'blue']\n"
            "attr classes: object ['road', 'building', 'grass', 'tree']\n"
            "attr crs: str EPSG:25832\n"
            "attr domain: str potsdam\n"
            "attr format: str da-tiles\n"
            "attr ignore_index: int64 255\n"
            "attr sources: object ['a.tif', 'b.tif']\n"
            "attr version: int64 1\n"
            "images: uint16 [2, 3, 5, 7] chunks [1, 3, 5, 7] compression gzip shuffle True sum " +
                std::to_string(image_sum) +
                "\n"
                "masks: uint8 [2, 5, 7] chunks [1, 5, 7] compression gzip shuffle True sum " +
                std::to_string(mask_sum) +
                "\n"
                "meta/origin: int64 [2, 2] chunks [4096, 2] compression gzip shuffle True sum 3\n"
                "meta/source_id: int32 [2] chunks [4096] compression gzip shuffle True sum 1\n"
                "meta/geotransform: float64 [2, 6] chunks [4096, 6] compression gzip shuffle True sum 1.0\n");
}

}  // namespace
}  // namespace da::io
